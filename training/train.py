"""Training in SageMaker script mode: validate, fit, score on held-out rows, write the artifact.

    mlops train --train data.csv --model-dir out/ --target label [--test test.csv]
        [--task binary|multiclass|regression] [--categorical a,b] [--algorithm linear] [--seed 42]
        [--hyperparameters JSON | --max-iter 300 ...] [--search N [--search-seconds S]] [--lineage JSON]

Without --test, the held-out split is written for `mlops evaluate --test`: out.test.csv beside
--model-dir out/ (or test.csv in --output-data-dir), never inside the packed model directory.

Defaults come from SageMaker's variables (SM_CHANNEL_TRAIN, SM_CHANNEL_TEST, SM_MODEL_DIR,
SM_OUTPUT_DATA_DIR); hyperparameters arrive as `--name value` arguments. In SageMaker the image's
entry runs it (`train`); `python training/train.py …` (script mode) runs the same code.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from contracts import artifact
from contracts.schema import FeatureSchema, Task
from drift_check.stats import build_baseline
from training import model_space
from training.calibration import measure as measure_calibration
from training.dataset import DataError, Table, csv_bytes, feature_matrix, read_csv, typed_columns
from training.evaluate import score
from training.model_space import DEFAULT_SEARCH_SECONDS, HyperparameterError, check, check_search
from training.onnx_export import to_onnx
from training.pipeline_model import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    ModelParams,
    build_pipeline,
)
from training.search import run_search
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
HELD_OUT_SUFFIX = ".test.csv"  # out/ → out.test.csv, beside the model directory
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
    # The hyperparameters set explicitly (checked against the algorithm's space): a search holds
    # these fixed and draws the others. params is the point trained without a search.
    hyperparameters: dict[str, int | float | None] = field(default_factory=dict)
    search_candidates: int = 0  # 0: no search, train params as they are
    search_seconds: float = DEFAULT_SEARCH_SECONDS


@dataclass
class TrainResult:
    model_dir: Path
    metadata: artifact.Metadata
    seconds: float
    test_csv: Path | None = None  # the held-out rows, when training split them off itself


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


def held_out_by_content(cells: Sequence[str], test_size: float) -> bool:
    """Whether an appended (production) row belongs to the hold-out: the first 8 bytes of the sha256 of its
    CSV line (as csv_bytes writes it), read as a fraction of 2**64, fall below test_size.

    It depends on the row's values only (not its position, the other rows or the seed), so the same row
    lands on the same side in every run that holds it.
    """
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(cells)
    digest = hashlib.sha256(line.getvalue().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_size


def split_with_appended(y: np.ndarray, task: Task, test_size: float, seed: int, *, configured: int,
                        appended: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Train/test row indices of a data set whose first `configured` rows are the configured data and
    whose rest (`appended`: their cells, in order) are production rows appended after them.

    Why not split_indices over all rows: its permutation depends on the row count, which changes with
    every run's production rows, so configured rows the live model trained on would land in the
    candidate's hold-out and inflate the live model's score there. Instead the configured rows are split
    exactly as split_indices splits them on their own (as in a run without production rows, and as the
    first model was trained), and each appended row by held_out_by_content: stable across runs, so a row
    a retrained live model trained on never lands in a later hold-out. The appended rows are not
    stratified; a corrected label changes the row and may move it (the live model never trained on it).
    """
    if len(appended) != len(y) - configured or configured < 0:
        raise ValueError(f"{len(y)} rows cannot be {configured} configured and {len(appended)} appended ones")
    if configured:
        train, test = split_indices(y[:configured], task, test_size, seed)
    else:
        train, test = np.array([], dtype=np.intp), np.array([], dtype=np.intp)
    in_test = np.array([held_out_by_content(cells, test_size) for cells in appended], dtype=bool)
    extra = np.arange(configured, len(y))
    train, test = np.concatenate([train, extra[~in_test]]), np.concatenate([test, extra[in_test]])
    if not len(train) or not len(test):
        raise DataError(f"cannot split {len(y)} rows into train and test (test-size {test_size}): "
                        f"{len(train)} train and {len(test)} test rows")
    return train, test


def default_model_version(data_sha256: str) -> str:
    """A sortable version id: UTC time, then the data hash prefix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{data_sha256[:8]}"


def _held_out_table(test_path: Path, schema: FeatureSchema, task: Task) -> tuple[np.ndarray, np.ndarray]:
    table = read_csv(test_path)
    require_columns(table, [schema.target, *schema.names], f"test channel {test_path.name}")
    return feature_matrix(schema, typed_columns(table, schema)), target_array(table, schema.target, task)


def train(train_path: str | os.PathLike, model_dir: str | os.PathLike, config: TrainConfig, *,
          test_path: str | os.PathLike | None = None, output_data_dir: str | os.PathLike | None = None,
          lineage: artifact.DatasetLineage | None = None) -> TrainResult:
    """Validate the data, fit, score on held-out rows, write the artifact (and the report, when asked).

    lineage: where the pipeline's data set came from, kept in the metadata as it is.
    """
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
        test_csv = None  # the caller's own file
    else:
        fit_rows, test_rows = split_indices(y, task, config.test_size, config.seed)
        X_fit, y_fit, X_test, y_test = X[fit_rows], y[fit_rows], X[test_rows], y[test_rows]
        test_csv = write_held_out(table, test_rows, model_dir, output_data_dir)

    search = None
    if config.search_candidates:
        search = run_search(X_fit, y_fit, schema=schema, task=task, algorithm=config.algorithm,
                            candidates=config.search_candidates, seed=config.seed,
                            budget_seconds=config.search_seconds, fixed=config.hyperparameters)
        # The best candidate is refit on all training rows; its values are the recorded hyperparameters.
        best = search.candidates[search.best].params
        config = replace(config, params=replace(config.params, **best), hyperparameters=dict(best))
    pipeline = build_pipeline(schema, task, algorithm=config.algorithm, seed=config.seed, params=config.params)
    pipeline.fit(X_fit, y_fit)
    if classes is not None and list(pipeline.classes_) != classes:
        raise RuntimeError(f"fitted classes {list(pipeline.classes_)} differ from the validated {classes}")
    metrics = score(pipeline, task, classes, X_test, y_test)
    calibration = None if task == "regression" else measure_calibration(task, classes, pipeline.predict_proba(X_test), y_test)
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
        search=search, calibration=calibration, lineage=lineage,
    )
    out = artifact.write_model_dir(model_dir, estimator=pipeline, metadata=metadata, baseline=baseline, onnx_model=onnx_model)
    seconds = time.perf_counter() - started
    if output_data_dir is not None:
        write_report(Path(output_data_dir), metadata, report.model_dump(mode="json"), seconds)
    return TrainResult(model_dir=out, metadata=metadata, seconds=seconds, test_csv=test_csv)


def write_held_out(table: Table, rows: np.ndarray, model_dir: str | os.PathLike,
                   output_data_dir: str | os.PathLike | None) -> Path:
    """The held-out rows as read, for `mlops evaluate --test`: never inside the model directory, which is
    packed into model.tar.gz whole. In SageMaker the output data directory (uploaded as output.tar.gz
    beside model.tar.gz); locally the file beside the model directory (out/ → out.test.csv)."""
    model_dir = Path(model_dir).resolve()
    path = Path(output_data_dir) / "test.csv" if output_data_dir else model_dir.with_name(model_dir.name + HELD_OUT_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_bytes(table, rows))
    return path


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


# Every algorithm's hyperparameter names, one flag each (--max-depth); model_space says which apply.
HYPERPARAMETER_NAMES = sorted({h.name for algorithm in ALGORITHMS for h in model_space.space(algorithm)})

EXAMPLES = f"""examples:
  mlops train --train wine.csv --model-dir out/ --target quality
  mlops train --train diamonds.csv --model-dir out/ --target price --categorical cut,color,clarity \\
      --algorithm hist_gradient_boosting --max-iter 300
  mlops train --train diamonds.csv --model-dir out/ --target price --categorical cut,color,clarity \\
      --algorithm hist_gradient_boosting --search 8 --search-seconds 300

hyperparameters by algorithm:
{model_space.describe()}"""


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
    parser.add_argument("--lineage", default=None, metavar="JSON",
                        help="the data set's lineage as the pipeline's BuildDataset step summarises it (kept in the "
                             "metadata)")
    model = parser.add_argument_group("hyperparameters", "each algorithm takes its own (below); one it does not take "
                                      "is an error. Unset ones keep the estimator's default.")
    model.add_argument("--hyperparameters", default=None, metavar="JSON",
                       help='a JSON object of name: value, e.g. \'{"max_iter": 300}\' (what the pipeline passes)')
    for name in HYPERPARAMETER_NAMES:
        model.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, metavar="VALUE")
    model.add_argument("--search", type=int, default=0, metavar="N",
                       help="try N hyperparameter sets by cross-validation on the training rows, refit the best (0: off)")
    model.add_argument("--search-seconds", type=float, default=DEFAULT_SEARCH_SECONDS, metavar="S",
                       help="time budget of the search; no candidate starts after it (default %(default)s)")
    return parser


def given_hyperparameters(args: argparse.Namespace) -> dict[str, object]:
    """--hyperparameters JSON and the single flags together; a name given both ways is an error."""
    given: dict[str, object] = {}
    if args.hyperparameters:
        try:
            given = json.loads(args.hyperparameters)
        except ValueError as exc:
            raise HyperparameterError(f"--hyperparameters is not valid JSON: {exc}") from None
        if not isinstance(given, dict):
            raise HyperparameterError(f"--hyperparameters must be a JSON object, got {args.hyperparameters!r}")
    for name in HYPERPARAMETER_NAMES:
        value = getattr(args, name)
        if value is None:
            continue
        if name in given:
            raise HyperparameterError(f"hyperparameter {name!r} is given twice: in --hyperparameters and as "
                                      f"--{name.replace('_', '-')}")
        given[name] = value
    return given


def parse_lineage(text: str | None) -> artifact.DatasetLineage | None:
    """--lineage's JSON; None when absent or "{}" (a run whose data set has no lineage)."""
    if not text or not text.strip() or text.strip() == "{}":
        return None
    try:
        return artifact.DatasetLineage.model_validate_json(text)
    except ValidationError as exc:  # one line: SageMaker shows the last line of the failure
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'JSON'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"--lineage is not a data set lineage: {problems}") from None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    options = data_options(args)
    hyperparameters = check(args.algorithm, given_hyperparameters(args))
    search_candidates, search_seconds = check_search(args.search, args.search_seconds)
    return TrainConfig(
        target=args.target, model_name=args.model_name, task=options["task"],
        categorical=sorted(options["categorical"]), algorithm=args.algorithm, seed=args.seed,
        test_size=args.test_size, model_version=args.model_version or None, run_id=args.run_id or None,
        min_rows=args.min_rows, max_missing=args.max_missing,
        params=ModelParams(**hyperparameters), hyperparameters=hyperparameters,
        search_candidates=search_candidates, search_seconds=search_seconds,
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
        result = train(args.train, args.model_dir, config, test_path=args.test, output_data_dir=args.output_data_dir,
                       lineage=parse_lineage(args.lineage))
    except ValueError as exc:  # DataError, DataValidationError and bad hyperparameters
        print(f"train: {exc}", file=sys.stderr)
        return 1
    meta = result.metadata
    print(json.dumps({"model_dir": str(result.model_dir), "test_csv": result.test_csv and str(result.test_csv),
                      "model_version": meta.model_version, "task": meta.task,
                      "metrics": meta.metrics, "onnx": meta.onnx.model_dump(), "seconds": round(result.seconds, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
