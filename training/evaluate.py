"""Held-out metrics and the evaluation gate: may the candidate replace the production model? (library and CLI)

    mlops evaluate --candidate model.tar.gz|dir --test test.csv [--production model.tar.gz|dir]
                   [--recent recent.csv] [--tolerance 0.01] [--floor 0.5] [--out decision.json]

The candidate passes when its primary metric (ROC AUC for binary, macro F1 for multiclass, R² for
regression: all "higher is better" and scale-free, so one absolute floor fits every data set) is at
least the floor and at least production − tolerance on the held-out rows and, when --recent gives
the most recent labelled production rows (kept out of training), at least production − tolerance
on those too: a candidate must hold up on today's data. The floor applies to the held-out rows
only (the recent rows are few; the floor is a sanity bound, not a comparison). On recent rows where
the primary metric is undefined (one class only: no ROC AUC), accuracy is compared instead.
Exit codes: 0 pass, 1 reject, 2 error.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from contracts.artifact import (
    TARBALL,
    Artifact,
    ArtifactError,
    open_artifact,
    unpack,
    utc_now,
)
from contracts.schema import Task
from training.dataset import DataError, Table, feature_matrix, read_csv, typed_columns
from training.validate import require_columns, target_array

PRIMARY_METRIC: dict[str, str] = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "r2"}
DEFAULT_TOLERANCE = 0.01
DEFAULT_FLOOR = 0.5


def classification_metrics(y_true: np.ndarray, predicted: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, float]:
    """accuracy, F1 and ROC AUC; binary treats the last class (sorted) as positive. AUC is left out when undefined."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    y_true, predicted = y_true.astype(str), predicted.astype(str)
    metrics = {"accuracy": float(accuracy_score(y_true, predicted))}
    # Newer scikit-learn warns and returns NaN where older ones raised: either way the AUC is left out.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        try:
            if len(classes) == 2:
                metrics["f1"] = float(f1_score(y_true, predicted, pos_label=classes[1], zero_division=0))
                metrics["roc_auc"] = float(roc_auc_score(y_true == classes[1], proba[:, 1]))
            else:
                metrics["f1_macro"] = float(f1_score(y_true, predicted, average="macro", zero_division=0))
                metrics["roc_auc_ovr"] = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))
        except ValueError:
            pass  # ROC AUC needs every class in y_true; the other metrics are already in
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    metrics = {
        "rmse": float(math.sqrt(mean_squared_error(y_true, predicted))),
        "mae": float(mean_absolute_error(y_true, predicted)),
        "r2": float(r2_score(y_true, predicted)),
    }
    return {k: v for k, v in metrics.items() if math.isfinite(v)}  # R² needs two rows


def score(estimator, task: Task, classes: list[str] | None, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The task's metrics of a fitted estimator on (X, y)."""
    if task == "regression":
        return regression_metrics(y, estimator.predict(X))
    return classification_metrics(y, estimator.predict(X), estimator.predict_proba(X), classes or [])


def score_artifact(artifact: Artifact, table: Table) -> dict[str, float]:
    """Score an artifact's model on a labelled table, reading it with the model's own schema."""
    meta = artifact.metadata
    schema = meta.feature_schema
    require_columns(table, [schema.target, *schema.names], f"the test data for model {meta.model_version}")
    X = feature_matrix(schema, typed_columns(table, schema))
    return score(artifact.load_estimator(), meta.task, meta.classes, X, target_array(table, schema.target, meta.task))


def load_artifact(path: str | Path, workdir: str | Path) -> Artifact:
    """An artifact from a model.tar.gz (unpacked under workdir) or an unpacked model directory."""
    path = Path(path)
    if path.is_dir():
        return open_artifact(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model ({TARBALL} or model directory)")
    return unpack(path, Path(workdir) / path.name.replace(".", "_"))


# The metric compared on recent rows where the primary one is undefined (one class only: no ROC AUC).
RECENT_FALLBACK_METRIC = "accuracy"


class Comparison(BaseModel):
    """One data set's comparison (the hold-out, or the recent production rows): rows, both values, verdict."""

    rows: int
    sha256: str
    metric: str  # the metric compared: the primary one, or the fallback where it is undefined
    candidate: float | None = None
    production: float | None = None
    threshold: float | None = None  # what the candidate had to reach (None: nothing to compare with)
    passed: bool
    reason: str
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float] | None = None


class Decision(BaseModel):
    """The gate's verdict and the numbers behind it (the evaluation report).

    candidate/production/test_rows are the hold-out's (as before recent rows existed); holdout and
    recent hold each comparison in full. production_source: which model production is: "live" (the
    top of the promotion history), "latest_approved" (nothing promoted yet: the highest Approved
    version), "none"; None when the caller did not say (the CLI with a file).
    """

    passed: bool
    reason: str
    primary_metric: str
    threshold: float
    tolerance: float
    floor: float
    candidate: dict[str, float]
    production: dict[str, float] | None = None
    candidate_version: str
    production_version: str | None = None
    test_rows: int
    test_sha256: str
    created_at: str
    production_source: str | None = None
    holdout: Comparison | None = None
    recent: Comparison | None = None


def gate(task: Task, candidate: dict[str, float], production: dict[str, float] | None,
         *, tolerance: float, floor: float) -> tuple[bool, float, str]:
    """(passed, threshold, reason) for the candidate's and production's metrics."""
    name = PRIMARY_METRIC[task]
    threshold = floor
    basis = f"floor {floor:g}"
    if production is not None and name in production:
        if production[name] - tolerance > floor:
            threshold = production[name] - tolerance
            basis = f"production {production[name]:.4f} - tolerance {tolerance:g}"
        else:
            basis += f" (production {production[name]:.4f} - tolerance {tolerance:g} is lower)"
    if name not in candidate:
        return False, threshold, f"the candidate's {name} is undefined on this test set (a class is missing from it)"
    value = candidate[name]
    if value >= threshold:
        return True, threshold, f"candidate {name} {value:.4f} >= {basis}"
    return False, threshold, f"candidate {name} {value:.4f} < {basis} = {threshold:.4f}"


def compare_recent(task: Task, candidate: dict[str, float], production: dict[str, float] | None,
                   *, tolerance: float, note: str = "") -> tuple[str, float | None, float | None, float | None, bool, str]:
    """(metric, candidate, production, threshold, passed, reason) on the recent rows: candidate >= production -
    tolerance; with no production scores, reported and passed."""
    name = PRIMARY_METRIC[task]
    if name not in candidate or (production is not None and name not in production):
        fallback = RECENT_FALLBACK_METRIC
        if task == "regression" or fallback not in candidate or (production is not None and fallback not in production):
            return name, None, None, None, True, f"{name} is undefined on these rows: not compared{note}"
        note = f" ({name} is undefined on these rows, a class is missing: {fallback} compared){note}"
        name = fallback
    value = candidate[name]
    if production is None:
        return name, value, None, None, True, f"candidate {name} {value:.4f}, no production scores to compare with{note}"
    threshold = production[name] - tolerance
    passed = value >= threshold
    return name, value, production[name], threshold, passed, (
        f"candidate {name} {value:.4f} {'>=' if passed else '<'} production {production[name]:.4f} - tolerance "
        f"{tolerance:g} = {threshold:.4f}{note}")


def _recent_comparison(candidate: Artifact, production: Artifact | None, recent_csv: str | Path,
                       *, tolerance: float) -> Comparison | None:
    """Both models scored on the recent rows and compared; None when the file has no rows."""
    table = read_csv(recent_csv)
    if table.n_rows == 0:
        return None
    candidate_metrics = score_artifact(candidate, table)
    production_metrics, note = None, ""
    if production is not None:
        try:
            production_metrics = score_artifact(production, table)
        except (DataError, ArtifactError) as exc:
            note = f"; production cannot be scored on these rows ({exc})"
    metric, value, reference, threshold, passed, reason = compare_recent(
        candidate.metadata.task, candidate_metrics, production_metrics, tolerance=tolerance, note=note)
    return Comparison(rows=table.n_rows, sha256=table.sha256, metric=metric, candidate=value, production=reference,
                      threshold=threshold, passed=passed, reason=reason, candidate_metrics=candidate_metrics,
                      production_metrics=production_metrics)


def evaluate(candidate: Artifact, test_csv: str | Path, production: Artifact | None = None,
             *, tolerance: float = DEFAULT_TOLERANCE, floor: float = DEFAULT_FLOOR,
             production_error: str | None = None, recent_csv: str | Path | None = None,
             production_source: str | None = None) -> Decision:
    """Score both models on the same held-out CSV (and the recent rows, when given) and decide.

    production_error: why the production model could not be loaded (floor only). production_source: recorded.
    """
    table = read_csv(test_csv)
    task = candidate.metadata.task
    name = PRIMARY_METRIC[task]
    candidate_metrics = score_artifact(candidate, table)
    production_metrics, note = None, ""
    comparable = None
    if production_error:
        note = f"; the production model cannot be loaded ({production_error}): floor only"
    elif production is not None:
        if production.metadata.task != task:
            note = f"; production is a {production.metadata.task} model, not comparable: floor only"
        else:
            try:
                production_metrics = score_artifact(production, table)
                comparable = production
            except (DataError, ArtifactError) as exc:  # e.g. the features changed since production was trained
                note = f"; production cannot be scored on this data ({exc}): floor only"
    passed, threshold, reason = gate(task, candidate_metrics, production_metrics, tolerance=tolerance, floor=floor)
    if production is None and not production_error:
        reason = "no production model; " + reason
    reason += note
    holdout = Comparison(rows=table.n_rows, sha256=table.sha256, metric=name, candidate=candidate_metrics.get(name),
                         production=(production_metrics or {}).get(name), threshold=threshold, passed=passed,
                         reason=reason, candidate_metrics=candidate_metrics, production_metrics=production_metrics)
    recent = _recent_comparison(candidate, comparable, recent_csv, tolerance=tolerance) if recent_csv else None
    if recent is not None:
        if passed and not recent.passed:
            passed = False
            reason = (f"rejected on the {recent.rows} most recent labelled production rows: {recent.reason} "
                      f"(hold-out: {reason})")
        else:
            reason += f"; recent production rows ({recent.rows}): {recent.reason}"
    return Decision(
        passed=passed, reason=reason, primary_metric=name, threshold=threshold,
        tolerance=tolerance, floor=floor, candidate=candidate_metrics, production=production_metrics,
        candidate_version=candidate.metadata.model_version,
        production_version=production.metadata.model_version if production is not None else None,
        test_rows=table.n_rows, test_sha256=table.sha256, created_at=utc_now(),
        production_source=production_source, holdout=holdout, recent=recent,
    )


EXAMPLES = """examples:
  mlops evaluate --candidate out/ --test test.csv --production prod/model.tar.gz --out decision.json
  mlops evaluate --candidate out/ --test test.csv --production prod/model.tar.gz --recent recent.csv"""


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidate", required=True, help=f"{TARBALL} or model directory")
    parser.add_argument("--production", help=f"{TARBALL} or model directory of the current model (omit: none)")
    parser.add_argument("--test", required=True, help="held-out CSV with the target column")
    parser.add_argument("--recent", help="the most recent labelled production rows, kept out of training (a "
                                         "retraining run's recent.csv): the candidate must hold up on them too")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--floor", type=float, default=DEFAULT_FLOOR)
    parser.add_argument("--out", help="write the decision JSON here")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="evaluate-") as work:
            candidate = load_artifact(args.candidate, Path(work) / "candidate")
            production = load_artifact(args.production, Path(work) / "production") if args.production else None
            decision = evaluate(candidate, args.test, production, tolerance=args.tolerance, floor=args.floor,
                                recent_csv=args.recent)
    except (DataError, ArtifactError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    body = decision.model_dump_json(indent=2)
    if args.out:
        Path(args.out).write_text(body)
    print(body)
    print(f"{'PASS' if decision.passed else 'REJECT'}: {decision.reason}", file=sys.stderr)
    return 0 if decision.passed else 1


if __name__ == "__main__":
    sys.exit(main())
