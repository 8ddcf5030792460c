"""Training in SageMaker script mode: validate, fit, score on held-out rows, write the artifact.

    mlops train --train data.csv --model-dir out/ --target label [--test test.csv]
        [--task binary|multiclass|regression] [--categorical a,b] [--algorithm linear] [--seed 42] ...

Defaults come from SageMaker's variables (SM_CHANNEL_TRAIN, SM_CHANNEL_TEST, SM_MODEL_DIR,
SM_OUTPUT_DATA_DIR); hyperparameters arrive as `--name value` arguments. In SageMaker the image's
entry runs it (`train`); `python training/train.py …` (script mode) runs the same code.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from contracts import artifact
from contracts.schema import FeatureSchema, Task
from drift_check.stats import build_baseline
from training.dataset import DataError, feature_matrix, read_csv, typed_columns
from training.evaluate import score
from training.onnx_export import to_onnx
from training.pipeline_model import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    ModelParams,
    build_pipeline,
)
from training.validate import (
    DEFAULT_MAX_MISSING,
    DEFAULT_MIN_ROWS,
    add_data_arguments,
    data_options,
    require_columns,
    require_valid,
    target_array,
    validate_table,
)

REPORT_FILE = "training-report.json"
DEFAULT_SEED = 42
DEFAULT_TEST_SIZE = 0.2


@dataclass
class TrainConfig:
    """Everything that decides the model besides the data (recorded as metadata.hyperparameters)."""

    target: str
    model_name: str = "model"
    task: Task | None = None
    categorical: list[str] = field(default_factory=list)
    algorithm: str = DEFAULT_ALGORITHM
    seed: int = DEFAULT_SEED
    test_size: float = DEFAULT_TEST_SIZE
    model_version: str | None = None  # default: <UTC time>-<first 8 of the data sha256>
    run_id: str | None = None
    min_rows: int = DEFAULT_MIN_ROWS
    max_missing: float = DEFAULT_MAX_MISSING
    params: ModelParams = field(default_factory=ModelParams)


@dataclass
class TrainResult:
    model_dir: Path
    metadata: artifact.Metadata
    seconds: float


def resolve_channel(path: str | os.PathLike, channel: str) -> Path:
    """A channel is a CSV file or a directory holding exactly one (SageMaker downloads S3 prefixes as dirs)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{channel} channel {path}: no such file or directory")
    found = sorted(p for p in path.rglob("*.csv") if p.is_file())
    if len(found) != 1:
        raise DataError(f"{channel} channel {path}: expected one .csv file, found {len(found)}")
    return found[0]


def split_indices(y: np.ndarray, task: Task, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test row indices, stratified by class for classifiers."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"test-size must be between 0 and 1, got {test_size}")
    rows = np.arange(len(y))
    try:
        train, test = train_test_split(rows, test_size=test_size, random_state=seed,
                                       stratify=y if task != "regression" else None)
    except ValueError as exc:  # e.g. fewer test rows than classes
        raise DataError(f"cannot split {len(y)} rows into train and test (test-size {test_size}): {exc}") from exc
    return np.sort(train), np.sort(test)


def default_model_version(data_sha256: str) -> str:
    """A sortable version id: UTC time, then the data hash prefix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{data_sha256[:8]}"


def _held_out_table(test_path: Path, schema: FeatureSchema, task: Task) -> tuple[np.ndarray, np.ndarray]:
    table = read_csv(test_path)
    require_columns(table, [schema.target, *schema.names], f"test channel {test_path.name}")
    return feature_matrix(schema, typed_columns(table, schema)), target_array(table, schema.target, task)


def train(train_path: str | os.PathLike, model_dir: str | os.PathLike, config: TrainConfig, *,
          test_path: str | os.PathLike | None = None, output_data_dir: str | os.PathLike | None = None) -> TrainResult:
    """Validate the data, fit, score on held-out rows, write the artifact (and the report, when asked)."""
    started = time.perf_counter()
    train_file = resolve_channel(train_path, "train")
    table = read_csv(train_file)
    report = require_valid(validate_table(
        table, config.target, task=config.task, categorical=set(config.categorical),
        min_rows=config.min_rows, max_missing=config.max_missing, file=train_file.name,
    ))
    schema, task, classes = report.feature_schema, report.task, report.classes
    columns = typed_columns(table, schema)
    X, y = feature_matrix(schema, columns), target_array(table, schema.target, task)
    if test_path is not None:
        X_test, y_test = _held_out_table(resolve_channel(test_path, "test"), schema, task)
        X_fit, y_fit = X, y
    else:
        fit_rows, test_rows = split_indices(y, task, config.test_size, config.seed)
        X_fit, y_fit, X_test, y_test = X[fit_rows], y[fit_rows], X[test_rows], y[test_rows]

    pipeline = build_pipeline(schema, task, algorithm=config.algorithm, seed=config.seed, params=config.params)
    pipeline.fit(X_fit, y_fit)
    if classes is not None and list(pipeline.classes_) != classes:
        raise RuntimeError(f"fitted classes {list(pipeline.classes_)} differ from the validated {classes}")
    metrics = score(pipeline, task, classes, X_test, y_test)
    onnx_model, onnx_status = to_onnx(pipeline, schema, X_test, task)

    predictions = pipeline.predict(X)
    baseline = build_baseline(schema, columns, task=task, classes=classes, predictions=predictions)
    metadata = artifact.Metadata(
        model_name=config.model_name,
        model_version=config.model_version or config.run_id or default_model_version(table.sha256),
        task=task, feature_schema=schema, classes=classes, metrics=metrics,
        hyperparameters=asdict(config) | {"task": task},
        training_data_sha256=table.sha256, library_versions=artifact.library_versions(),
        created_at=artifact.utc_now(), onnx=onnx_status, rows={"train": len(y_fit), "test": len(y_test)},
    )
    out = artifact.write_model_dir(model_dir, estimator=pipeline, metadata=metadata, baseline=baseline, onnx_model=onnx_model)
    seconds = time.perf_counter() - started
    if output_data_dir is not None:
        write_report(Path(output_data_dir), metadata, report.model_dump(mode="json"), seconds)
    return TrainResult(model_dir=out, metadata=metadata, seconds=seconds)


def write_report(output_dir: Path, metadata: artifact.Metadata, validation: dict, seconds: float) -> Path:
    """The training report (metrics JSON) SageMaker uploads from SM_OUTPUT_DATA_DIR."""
    output_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "model_name": metadata.model_name, "model_version": metadata.model_version, "task": metadata.task,
        "metrics": metadata.metrics, "rows": metadata.rows, "onnx": metadata.onnx.model_dump(),
        "hyperparameters": metadata.hyperparameters, "training_seconds": round(seconds, 3), "validation": validation,
    }
    path = output_dir / REPORT_FILE
    path.write_text(json.dumps(body, indent=2))
    return path


def _optional_int(text: str) -> int | None:
    return None if text.strip().lower() in ("", "none") else int(text)


EXAMPLES = """examples:
  mlops train --train wine.csv --model-dir out/ --target quality
  mlops train --train diamonds.csv --model-dir out/ --target price --categorical cut,color,clarity \\
      --algorithm hist_gradient_boosting --max-iter 300"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=env("SM_CHANNEL_TRAIN"), help="CSV file or directory with one CSV")
    parser.add_argument("--test", default=env("SM_CHANNEL_TEST"), help="held-out CSV (default: split --train)")
    parser.add_argument("--model-dir", default=env("SM_MODEL_DIR"))
    parser.add_argument("--output-data-dir", default=env("SM_OUTPUT_DATA_DIR"))
    add_data_arguments(parser)
    parser.add_argument("--model-name", default="model")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default=DEFAULT_ALGORITHM)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--test-size", type=float, default=DEFAULT_TEST_SIZE)
    parser.add_argument("--model-version", default=None)
    parser.add_argument("--run-id", default=None)
    defaults = ModelParams()
    parser.add_argument("--l2", type=float, default=defaults.l2, help="L2 penalty (Ridge alpha, 1/C for logistic)")
    parser.add_argument("--n-estimators", type=int, default=defaults.n_estimators)
    parser.add_argument("--max-depth", type=_optional_int, default=defaults.max_depth)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--max-iter", type=_optional_int, default=defaults.max_iter)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    options = data_options(args)
    return TrainConfig(
        target=args.target, model_name=args.model_name, task=options["task"],
        categorical=sorted(options["categorical"]), algorithm=args.algorithm, seed=args.seed,
        test_size=args.test_size, model_version=args.model_version or None, run_id=args.run_id or None,
        min_rows=args.min_rows, max_missing=args.max_missing,
        params=ModelParams(l2=args.l2, n_estimators=args.n_estimators, max_depth=args.max_depth,
                           learning_rate=args.learning_rate, max_iter=args.max_iter),
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run training from arguments; data problems print to stderr and return 1, usage errors exit 2."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    for name in ("train", "model_dir"):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} is required (or set SM_{'CHANNEL_TRAIN' if name == 'train' else 'MODEL_DIR'})")
    try:
        config = config_from_args(args)
        result = train(args.train, args.model_dir, config, test_path=args.test, output_data_dir=args.output_data_dir)
    except ValueError as exc:  # DataError, DataValidationError and bad hyperparameters
        print(f"train: {exc}", file=sys.stderr)
        return 1
    meta = result.metadata
    print(json.dumps({"model_dir": str(result.model_dir), "model_version": meta.model_version, "task": meta.task,
                      "metrics": meta.metrics, "onnx": meta.onnx.model_dump(), "seconds": round(result.seconds, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
