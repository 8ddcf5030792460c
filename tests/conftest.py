"""Fixtures every test folder shares: fake AWS credentials, so no test can reach a real account."""
from __future__ import annotations

import pytest

from demo.emulator import FAKE_ENV


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region; no endpoint or profile leaks in from the shell; X-Ray off."""
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
