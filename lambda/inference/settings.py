"""The serving configuration, read once from the environment (the function's configuration)."""
from __future__ import annotations

from dataclasses import dataclass

from contracts import env
from contracts.env import SERVING_RUNTIMES, SettingsError, Var

__all__ = ["Settings", "SettingsError"]


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
    labels_stream: str = ""  # Firehose delivery stream of POST /feedback; empty = the route answers 503
    feedback_max_labels: int = 1000
    max_batch: int = 1000
    # Unseen categories are accepted (the one-hot encoder ignores them) unless strict.
    strict_categories: bool = False
    # "auto": model.onnx when the artifact has it, else model.joblib.
    runtime: str = "auto"
    work_dir: str = "/tmp"  # the only writable place on Lambda
    # After a passing S3 failure, a request tries to load the model again at most this often.
    retry_seconds: float = 30.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read the settings; raises SettingsError naming the variable with a bad value."""
        return cls(
            model_data_url=env.text(Var.MODEL_DATA_URL, env=environ),
            model_sha256=env.text(Var.MODEL_SHA256, env=environ).lower(),
            model_dir=env.text(Var.MODEL_DIR, env=environ),
            model_name=env.text(Var.MODEL_NAME, env=environ),
            model_version=env.text(Var.MODEL_VERSION, env=environ),
            model_package_arn=env.text(Var.MODEL_PACKAGE_ARN, env=environ),
            capture_stream=env.text(Var.CAPTURE_STREAM, env=environ),
            capture_sample_rate=env.number(Var.CAPTURE_SAMPLE_RATE, 1.0, minimum=0.0, maximum=1.0, env=environ),
            labels_stream=env.text(Var.LABELS_STREAM, env=environ),
            feedback_max_labels=env.integer(Var.FEEDBACK_MAX_LABELS, 1000, minimum=1, env=environ),
            max_batch=env.integer(Var.MAX_BATCH, 1000, minimum=1, env=environ),
            strict_categories=env.flag(Var.STRICT_CATEGORIES, env=environ),
            runtime=env.choice(Var.SERVING_RUNTIME, "auto", SERVING_RUNTIMES, env=environ),
            work_dir=env.text(Var.MODEL_WORK_DIR, "/tmp", env=environ),
            retry_seconds=env.number(Var.MODEL_RETRY_SECONDS, 30.0, minimum=1.0, env=environ),
        )
