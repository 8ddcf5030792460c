"""SageMaker training container entry: map /opt/ml files onto the SM_* contract and run train.py.

Without SageMaker's training toolkit the container gets only files: hyperparameters in
input/config/hyperparameters.json (all strings), channels under input/data/<channel>, the model
goes to model/, a failure message to output/failure. The root (/opt/ml) can be moved with
--root or SM_ROOT, so tests run it against a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from contracts import names

DEFAULT_ROOT = "/opt/ml"
MAX_FAILURE = 1024


def sm_environment(root: Path) -> dict[str, str]:
    """The SM_* variables the training toolkit would set for this layout."""
    env = {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
    }
    for channel in names.SPLIT_PARTS:  # the validate step's split parts are the job's channels
        path = root / "input" / "data" / channel
        if path.exists():
            env[f"SM_CHANNEL_{channel.upper()}"] = str(path)
    return env


def hyperparameter_args(root: Path) -> list[str]:
    """hyperparameters.json as `--name value` arguments (SageMaker sends every value as a string)."""
    path = root / "input" / "config" / "hyperparameters.json"
    if not path.exists():
        return []
    try:
        values = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise TypeError(f"{path} must hold a JSON object of name: value")
    args: list[str] = []
    for name, value in values.items():
        args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    return args


def write_failure(root: Path, message: str) -> None:
    """SageMaker shows output/failure (its first 1024 characters) as the job's FailureReason."""
    failure = root / "output" / "failure"
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(message[:MAX_FAILURE])


def run(root: Path) -> int:
    """Train from the /opt/ml layout under root; any failure goes to output/failure and a non-zero code."""
    from contextlib import redirect_stderr
    from io import StringIO

    from training import train

    os.environ.update(sm_environment(root))
    (root / "output" / "failure").unlink(missing_ok=True)  # a rerun must not report an old failure
    errors = StringIO()
    try:
        with redirect_stderr(_Tee(errors, sys.stderr)):
            code = train.main(hyperparameter_args(root))
    except SystemExit as exc:  # argparse: unknown or malformed hyperparameters
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:
        traceback.print_exc()
        errors.write(f"{type(exc).__name__}: {exc}")
        code = 1
    if code:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        write_failure(root, lines[-1] if lines else f"training failed with exit code {code}")
    return code


class _Tee:
    """Write to a buffer (for the failure file) and to the real stream (for CloudWatch)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["train"], help="SageMaker passes 'train'")
    parser.add_argument("--root", default=os.environ.get("SM_ROOT", DEFAULT_ROOT), help="the /opt/ml directory")
    args = parser.parse_args(argv)
    return run(Path(args.root))


if __name__ == "__main__":
    sys.exit(main())
