"""The model-quality check's settings from its environment: defaults, and a clear error naming a bad variable."""
from __future__ import annotations

import pytest

from contracts.env import SettingsError


def settings_from_env():
    from drift_check import quality_check  # after the fake region: the module creates its clients on import

    return quality_check.settings_from_env()


@pytest.fixture(autouse=True)
def required(monkeypatch):
    for name, value in {"CAPTURE_BUCKET": "capture", "REPORTS_BUCKET": "reports", "MODEL_NAME": "churn"}.items():
        monkeypatch.setenv(name, value)
    for name in ("MODEL_QUALITY_WINDOW_HOURS", "MODEL_QUALITY_HORIZON_DAYS", "MODEL_QUALITY_MIN_LABELS",
                 "MODEL_QUALITY_TOLERANCE", "MODEL_QUALITY_FLOORS", "MODEL_VERSION", "MODEL_DATA_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_configuration_defaults():
    settings = settings_from_env()
    assert (settings.window_hours, settings.horizon_days) == (24, 14)
    assert settings.judge.min_labels == 100 and settings.judge.tolerance == 0.05 and settings.judge.floors == {}
    assert settings.model_data_url == "" and settings.model_version == ""


def test_every_setting_is_read(monkeypatch):
    for name, value in {"MODEL_QUALITY_WINDOW_HOURS": "12", "MODEL_QUALITY_HORIZON_DAYS": "30",
                        "MODEL_QUALITY_MIN_LABELS": "250", "MODEL_QUALITY_TOLERANCE": "0.02",
                        "MODEL_QUALITY_FLOORS": '{"accuracy": 0.8, "roc_auc": 0.9}', "MODEL_VERSION": "3"}.items():
        monkeypatch.setenv(name, value)
    settings = settings_from_env()
    assert (settings.window_hours, settings.horizon_days, settings.model_version) == (12, 30, "3")
    assert settings.judge.min_labels == 250 and settings.judge.tolerance == 0.02
    assert settings.judge.floors == {"accuracy": 0.8, "roc_auc": 0.9}


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MODEL_QUALITY_FLOORS", "[0.7]", "expected a JSON object of metric floors"),
    ("MODEL_QUALITY_FLOORS", "accuracy=0.7", "expected a JSON object of metric floors"),
    ("MODEL_QUALITY_FLOORS", '{"accuracy": "high"}', "expected a JSON object of metric floors"),
    ("MODEL_QUALITY_FLOORS", '{"rmse": 3}', "no floor for rmse"),
    ("MODEL_QUALITY_WINDOW_HOURS", "0", "MODEL_QUALITY_WINDOW_HOURS='0'"),
    ("MODEL_QUALITY_WINDOW_HOURS", "169", "expected at most 168"),
    ("MODEL_QUALITY_HORIZON_DAYS", "91", "expected at most 90"),
    ("MODEL_QUALITY_MIN_LABELS", "0", "MODEL_QUALITY_MIN_LABELS"),
    ("MODEL_QUALITY_TOLERANCE", "1", "MODEL_QUALITY_TOLERANCE"),
    ("MODEL_QUALITY_TOLERANCE", "-0.1", "MODEL_QUALITY_TOLERANCE"),
    ("CAPTURE_BUCKET", "", "CAPTURE_BUCKET is not set"),
])
def test_a_bad_value_names_its_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("(", r"\(")):
        settings_from_env()
