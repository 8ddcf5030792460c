"""The serving configuration, read once from the environment (the function's configuration)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TRUE = frozenset({"1", "true", "yes", "on"})
RUNTIMES = ("auto", "onnxruntime", "scikit-learn")


class SettingsError(ValueError):
    """An environment variable has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    model_data_url: str = ""  # s3://bucket/key/model.tar.gz
    model_sha256: str = ""  # from the registry entry, never from the bucket
    model_dir: str = ""  # an unpacked artifact directory (development)
    model_name: str = ""
    model_version: str = ""
    model_package_arn: str = ""
    capture_stream: str = ""  # Firehose delivery stream; empty = capture off
    capture_sample_rate: float = 1.0
    max_batch: int = 1000
    # Unseen categories are accepted (the one-hot encoder ignores them) unless strict.
    strict_categories: bool = False
    # "auto": model.onnx when the artifact has it, else model.joblib.
    runtime: str = "auto"
    work_dir: str = "/tmp"  # the only writable place on Lambda

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read the settings; raises SettingsError naming the variable with a bad value."""
        env = os.environ if env is None else env
        runtime = env.get("SERVING_RUNTIME", "auto").strip() or "auto"
        if runtime not in RUNTIMES:
            raise SettingsError(f"SERVING_RUNTIME={runtime!r}: expected one of {', '.join(RUNTIMES)}")
        return cls(
            model_data_url=env.get("MODEL_DATA_URL", "").strip(),
            model_sha256=env.get("MODEL_SHA256", "").strip().lower(),
            model_dir=env.get("MODEL_DIR", "").strip(),
            model_name=env.get("MODEL_NAME", "").strip(),
            model_version=env.get("MODEL_VERSION", "").strip(),
            model_package_arn=env.get("MODEL_PACKAGE_ARN", "").strip(),
            capture_stream=env.get("CAPTURE_STREAM", "").strip(),
            capture_sample_rate=_rate(env.get("CAPTURE_SAMPLE_RATE", "1.0")),
            max_batch=_positive_int("MAX_BATCH", env.get("MAX_BATCH", "1000")),
            strict_categories=env.get("STRICT_CATEGORIES", "").strip().lower() in TRUE,
            runtime=runtime,
            work_dir=env.get("MODEL_WORK_DIR", "").strip() or str(Path("/tmp")),
        )


def _rate(raw: str) -> float:
    try:
        rate = float(raw)
    except ValueError:
        raise SettingsError(f"CAPTURE_SAMPLE_RATE={raw!r}: expected a number between 0 and 1") from None
    if not 0.0 <= rate <= 1.0:
        raise SettingsError(f"CAPTURE_SAMPLE_RATE={raw!r}: expected a number between 0 and 1")
    return rate


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a positive integer") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r}: expected a positive integer")
    return value
