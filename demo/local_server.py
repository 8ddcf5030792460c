"""The prediction API served by uvicorn on 127.0.0.1, configured as the function would be after a promotion."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from contracts.env import Var


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prediction_api(function_env: dict[str, str], log_path: Path, timeout: float = 60.0) -> Iterator[str]:
    """Run `uvicorn inference.app:app` with the function's environment; yield its base URL once /health answers."""
    port = free_port()
    env = os.environ | function_env | {
        Var.TRACE_DISABLED: "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "inference.app:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(proc, url, timeout, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_until_up(proc: subprocess.Popen, url: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                return
        time.sleep(0.1)
    raise TimeoutError(f"the API did not answer on {url} within {timeout:.0f} s; see {log_path}")
