"""Step Functions step handlers of the training pipeline: build the data set, validate, evaluate, register.

Each handler reads its S3 inputs, calls the training modules (no logic of its own beyond the
plumbing) and returns the JSON the next state needs. Bad data raises DataValidationError, which
the state machine catches by name; a bad algorithm or hyperparameter raises HyperparameterError,
which fails the execution (error and cause name it) before the training job starts.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, field_validator

from contracts import env, names
from contracts.artifact import Artifact, ArtifactError, DatasetLineage
from contracts.artifact_fetch import boto3_download, fetch_artifact
from contracts.env import SettingsError, Var
from contracts.promotions import load_history
from contracts.run_record import RunRecord, parse_record
from contracts.s3_uri import get_if_exists, split_s3_uri
from contracts.schema import Task
from pipeline import production_data, run_records
from training import model_space, registry
from training.dataset import DataError, Table, csv_bytes
from training.evaluate import DEFAULT_FLOOR, DEFAULT_TOLERANCE, evaluate
from training.model_space import DEFAULT_ALGORITHM, DEFAULT_SEARCH_SECONDS, HyperparameterError
from training.train import DEFAULT_SEED, DEFAULT_TEST_SIZE, split_indices, split_with_appended
from training.validate import (
    DEFAULT_MAX_MISSING,
    DEFAULT_MIN_ROWS,
    DataValidationError,
    load_and_validate,
    target_values,
)

__all__ = ["DataValidationError", "HyperparameterError", "build_dataset_handler", "evaluate_handler",
           "register_handler", "validate_handler"]

logger = Logger()
tracer = Tracer()
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")

class CandidateNotPassed(Exception):
    """register was called for a candidate the evaluation rejected."""


class PromotionHistoryUnreadable(Exception):
    """The promotion history exists but cannot be read: which model is live is unknown, so the gate cannot run."""


@dataclass(frozen=True)
class Settings:
    """The functions' configuration, read per invocation from the environment."""

    data_bucket: str
    artifacts_bucket: str
    reports_bucket: str
    tolerance: float
    floor: float
    auto_approve: bool
    min_rows: int
    max_missing: float
    image_uri: str | None

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            data_bucket=env.text(Var.DATA_BUCKET), artifacts_bucket=env.text(Var.ARTIFACTS_BUCKET),
            reports_bucket=env.text(Var.REPORTS_BUCKET),
            tolerance=env.number(Var.EVAL_TOLERANCE, DEFAULT_TOLERANCE), floor=env.number(Var.EVAL_FLOOR, DEFAULT_FLOOR),
            auto_approve=env.flag(Var.AUTO_APPROVE),
            min_rows=env.integer(Var.MIN_ROWS, DEFAULT_MIN_ROWS), max_missing=env.number(Var.MAX_MISSING_RATE, DEFAULT_MAX_MISSING),
            image_uri=env.text(Var.IMAGE_URI) or None,
        )

    def bucket(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise SettingsError(f"environment variable {name.upper()} is not set")
        return value


class ModelRun(BaseModel):
    model_name: str
    run_id: str

    @field_validator("model_name")
    @classmethod
    def _group_name(cls, value: str) -> str:
        return registry.check_model_name(value)


class BuildDatasetEvent(ModelRun):
    data_uri: str
    target: str
    task: Task | None = None

    @field_validator("task", mode="before")
    @classmethod
    def _empty_task(cls, value: Any) -> Any:
        return value or None


class ValidateEvent(ModelRun):
    data_uri: str
    target: str
    task: Task | None = None
    categorical: list[str] | str = []
    test_size: float = DEFAULT_TEST_SIZE
    seed: int = DEFAULT_SEED
    # The model's choice, checked by model_space before any data is read (types too: its messages name them).
    algorithm: Any = DEFAULT_ALGORITHM
    hyperparameters: Any = None
    search_candidates: Any = 0
    search_seconds: Any = DEFAULT_SEARCH_SECONDS
    # The BuildDataset step's lineage in brief: passed to the training job (kept in the model's metadata).
    lineage: DatasetLineage | None = None

    @field_validator("task", mode="before")
    @classmethod
    def _empty_task(cls, value: Any) -> Any:
        return value or None  # the state machine passes "" for "infer it"

    @property
    def categorical_names(self) -> list[str]:
        names = self.categorical.split(",") if isinstance(self.categorical, str) else self.categorical
        return sorted({n.strip() for n in names if n.strip()})


class EvaluateEvent(ModelRun):
    candidate_model_uri: str
    test_uri: str
    recent_uri: str | None = None  # the most recent labelled production rows, kept out of training
    # For the run record only: the execution's data, start time and training job.
    data_uri: str | None = None
    started_at: str | None = None
    training_job_name: str | None = None


class RegisterEvent(ModelRun):
    candidate_model_uri: str
    evaluation: dict[str, Any]


# ------------------------------------------------------------------------------------------ S3


def download_csv(uri: str, dest_dir: Path) -> Path:
    """A CSV object, or the single CSV under a prefix ending in '/' (a SageMaker channel)."""
    bucket, key = split_s3_uri(uri)
    if key.endswith("/"):
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        csvs = [o["Key"] for o in listed if o["Key"].endswith(".csv")]
        if len(csvs) != 1:
            raise ValueError(f"{uri}: expected one .csv object under the prefix, found {len(csvs)}")
        key = csvs[0]
    dest = dest_dir / Path(key).name
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(dest))
    return dest


def put_json(bucket: str, key: str, body: str) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json")
    return f"s3://{bucket}/{key}"


def read_run_record(bucket: str, model_name: str, run_id: str) -> RunRecord | None:
    """The run's record, or None when the evaluate step wrote none (a run started before records existed; this role
    may list runs/<model>/ only, see get_if_exists)."""
    obj = get_if_exists(s3, bucket, names.run_record_key(model_name, run_id))
    return parse_record(obj["Body"].read()) if obj is not None else None


def write_run_record(bucket: str, record: RunRecord) -> str:
    return put_json(bucket, names.run_record_key(record.model_name, record.run_id), record.to_json())


# ------------------------------------------------------------------------------------ handlers


def step(handler):
    """Powertools for a step handler: structured logs with the event and the Lambda context, X-Ray tracing."""
    return logger.inject_lambda_context(log_event=True)(tracer.capture_lambda_handler(handler))


@step
def build_dataset_handler(event: dict, context: LambdaContext) -> dict:
    """The run's data set: the configured data plus the labelled production rows (when on), with lineage."""
    request = BuildDatasetEvent.model_validate(event)
    result = production_data.build_dataset(
        s3, production_data.BuildSettings.from_env(), model_name=request.model_name, run_id=request.run_id,
        data_uri=request.data_uri, target=request.target, task=request.task)
    logger.info("data set", extra={"lineage": result.lineage.model_dump(exclude_none=True),
                                   "production": result.document["production"]})
    return result.output()


def configured_rows(lineage: DatasetLineage | None, table: Table) -> int | None:
    """How many of the table's first rows are the configured data when BuildDataset appended production rows
    after them (train.csv: the configured rows, then the production rows); None when it appended none.

    The lineage's rows and sha256 describe the CSV it wrote: one that does not match the table read is not
    that CSV, and which rows are configured is then unknown, so the run fails rather than split by a guess.
    """
    if lineage is None or not lineage.production_rows:
        return None
    if lineage.rows != table.n_rows or (lineage.data_sha256 and lineage.data_sha256 != table.sha256):
        raise DataError(
            f"the data read ({table.n_rows} rows, sha256 {table.sha256[:12]}) is not the data set BuildDataset "
            f"described ({lineage.rows} rows, sha256 {(lineage.data_sha256 or '?')[:12]}): which rows are "
            "production rows is unknown")
    configured = lineage.rows - lineage.production_rows
    if configured < 0:
        raise DataError(f"the lineage names {lineage.production_rows} production rows in {lineage.rows} rows")
    return configured


@step
def validate_handler(event: dict, context: LambdaContext) -> dict:
    """Validate the data, write the report and a seeded train/test split; raise DataValidationError on bad data."""
    request = ValidateEvent.model_validate(event)
    # A bad algorithm or hyperparameter fails the run here, named, before the data is read or a job starts.
    hyperparameters = model_space.check(request.algorithm, request.hyperparameters)
    search_candidates, search_seconds = model_space.check_search(request.search_candidates, request.search_seconds)
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="validate-") as work:
        path = download_csv(request.data_uri, Path(work))
        table, report = load_and_validate(
            path, request.target, task=request.task, categorical=set(request.categorical_names),
            min_rows=settings.min_rows, max_missing=settings.max_missing,
        )
    report_uri = put_json(settings.bucket("reports_bucket"), names.validation_report_key(request.model_name, request.run_id), report.to_json())
    if not report.passed:
        logger.warning("data validation failed", extra={"errors": report.errors, "report_uri": report_uri})
        write_run_record(settings.bucket("reports_bucket"), run_records.failed(
            model_name=request.model_name, run_id=request.run_id, report=report, report_uri=report_uri,
            data_uri=request.data_uri, lineage=request.lineage))
        raise DataValidationError(report)
    y = np.array(target_values(table, request.target), dtype=object)
    configured = configured_rows(request.lineage, table)
    if configured is None:  # no production rows: the split every run without them has always had
        train_rows, test_rows = split_indices(y, report.task, request.test_size, request.seed)
    else:  # why not split_indices over all rows: see split_with_appended
        appended = [[column[i] for column in table.columns] for i in range(configured, table.n_rows)]
        train_rows, test_rows = split_with_appended(y, report.task, request.test_size, request.seed,
                                                    configured=configured, appended=appended)
    data_bucket = settings.bucket("data_bucket")
    uris = {}
    for part, rows in zip(names.SPLIT_PARTS, (train_rows, test_rows), strict=True):
        prefix = names.split_prefix(request.model_name, request.run_id, part)
        s3.put_object(Bucket=data_bucket, Key=f"{prefix}{names.SPLIT_FILE}", Body=csv_bytes(table, rows), ContentType="text/csv")
        uris[f"{part}_uri"] = f"s3://{data_bucket}/{prefix}"  # a prefix: the training job's channel
    logger.info("data valid", extra={"rows": table.n_rows, "task": report.task, "train": len(train_rows), "test": len(test_rows),
                                     "configured_rows": table.n_rows if configured is None else configured})
    return {
        **uris, "report_uri": report_uri, "rows": table.n_rows, "task": report.task,
        # The training job's hyperparameters, all strings as SageMaker wants them.
        "hyperparameters": {
            "target": request.target, "model-name": request.model_name, "task": report.task,
            "categorical": ",".join(request.categorical_names), "run-id": request.run_id,
            "algorithm": request.algorithm, "hyperparameters": json.dumps(hyperparameters),
            "search": str(search_candidates), "search-seconds": str(search_seconds),
            "lineage": request.lineage.hyperparameter() if request.lineage else "{}",
        },
    }


@dataclass(frozen=True)
class Production:
    """The model a candidate is compared with, and how it was found."""

    artifact: Artifact | None
    entry: registry.ModelVersion | None
    error: str | None  # why it cannot be used (the gate then applies the floor only)
    source: str  # "live", "latest_approved" or "none"


def _fetch(url: str, sha256: str | None, work: Path) -> Artifact:
    return fetch_artifact(url, work / "production", boto3_download(s3), expected_sha256=sha256 or None).artifact


def _live(model_name: str, artifacts_bucket: str, work: Path) -> Production | None:
    """The version on top of the promotion history (what the `live` alias serves); None when none was promoted."""
    try:
        history = load_history(s3, artifacts_bucket, names.promotions_key(model_name))
        entry = history.live_entry()
    except (ClientError, ValueError, KeyError, TypeError) as exc:
        raise PromotionHistoryUnreadable(
            f"the promotion history s3://{artifacts_bucket}/{names.promotions_key(model_name)} cannot be read "
            f"({exc}): which version is live is unknown; fix or restore the object (the bucket is versioned)") from exc
    if entry is None:
        return None
    version = entry["version"]
    try:
        package = registry.resolve(sagemaker, model_name, version)
    except (registry.RegistryError, ClientError) as exc:
        logger.warning("live version not in the registry", extra={"version": version, "error": str(exc)})
        return Production(None, None, f"live version {version}: {exc}", "live")
    try:
        # The tarball the history recorded is the one deployed; its sha256 is checked before it is opened.
        artifact = _fetch(entry.get("model_data_url") or package.model_data_url, entry.get("sha256") or package.sha256,
                          work)
    except (ArtifactError, ValueError, ClientError) as exc:
        logger.warning("live model unusable", extra={"version": version, "error": str(exc)})
        return Production(None, package, f"live version {version}: {exc}", "live")
    return Production(artifact, package, None, "live")


def _production(model_name: str, artifacts_bucket: str, work: Path) -> Production:
    """The live model; when nothing was ever promoted, the highest Approved version; else none."""
    live = _live(model_name, artifacts_bucket, work)
    if live is not None:
        return live
    entry = registry.latest_approved(sagemaker, model_name)
    if entry is None:
        return Production(None, None, None, "none")
    try:
        return Production(_fetch(entry.model_data_url, entry.sha256, work), entry, None, "latest_approved")
    except (ArtifactError, ValueError, ClientError) as exc:  # e.g. its tarball was deleted or modified
        logger.warning("production model unusable", extra={"version": entry.version, "error": str(exc)})
        return Production(None, entry, f"version {entry.version}: {exc}", "latest_approved")


@step
def evaluate_handler(event: dict, context: LambdaContext) -> dict:
    """Score the candidate and the production model (the live one) on the held-out split and the recent
    labelled production rows; write and return the decision."""
    request = EvaluateEvent.model_validate(event)
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        work = Path(tmp)
        fetched = fetch_artifact(request.candidate_model_uri, work / "candidate", boto3_download(s3))
        candidate, candidate_sha256 = fetched.artifact, fetched.sha256
        test_csv = download_csv(request.test_uri, work)
        recent_csv = download_csv(request.recent_uri, work / "recent") if request.recent_uri else None
        production = _production(request.model_name, settings.bucket("artifacts_bucket"), work)
        entry = production.entry
        decision = evaluate(candidate, test_csv, production.artifact, tolerance=settings.tolerance,
                            floor=settings.floor, production_error=production.error, recent_csv=recent_csv,
                            production_source=production.source)
    body = decision.model_dump() | {
        "model_name": request.model_name, "run_id": request.run_id, "candidate_model_uri": request.candidate_model_uri,
        "candidate_sha256": candidate_sha256, "production_package": entry.model_dump() if entry else None,
        "recent_uri": request.recent_uri,
    }
    decision_uri = put_json(settings.bucket("reports_bucket"), names.evaluation_report_key(request.model_name, request.run_id),
                            json.dumps(body, indent=2))
    record_uri = write_run_record(settings.bucket("reports_bucket"), run_records.evaluated(
        metadata=candidate.metadata, decision=decision, model_name=request.model_name, run_id=request.run_id,
        artifact_uri=request.candidate_model_uri, artifact_sha256=candidate_sha256, report_uri=decision_uri,
        production_version=entry.version if entry else None, data_uri=request.data_uri,
        training_job_name=request.training_job_name, started_at=request.started_at))
    logger.info("evaluation", extra={"passed": decision.passed, "reason": decision.reason, "run_record": record_uri})
    return {
        "passed": decision.passed, "decision_uri": decision_uri, "candidate": decision.candidate,
        "production": decision.production, "reason": decision.reason, "primary_metric": decision.primary_metric,
        "candidate_sha256": candidate_sha256, "candidate_model_version": decision.candidate_version,
        "production_model_package_version": entry.version if entry else None,
        "production_source": decision.production_source,
        "recent": decision.recent.model_dump(exclude={"candidate_metrics", "production_metrics"})
        if decision.recent else None,
    }


@step
def register_handler(event: dict, context: LambdaContext) -> dict:
    """Register the evaluated candidate as a new model package version (approved when AUTO_APPROVE=true)."""
    request = RegisterEvent.model_validate(event)
    settings = Settings.from_env()
    evaluation = request.evaluation
    if not evaluation.get("passed"):
        raise CandidateNotPassed(f"the evaluation rejected run {request.run_id}: {evaluation.get('reason', 'no reason given')}")
    with tempfile.TemporaryDirectory(prefix="register-") as tmp:
        # The tarball evaluated is the one registered: its sha256 from the evaluation is checked again here.
        fetched = fetch_artifact(request.candidate_model_uri, Path(tmp) / "candidate", boto3_download(s3),
                                 expected_sha256=evaluation.get("candidate_sha256"))
        metadata, sha256 = fetched.artifact.metadata, fetched.sha256
    version = registry.register(
        sagemaker, model_name=request.model_name, model_data_url=request.candidate_model_uri, sha256=sha256,
        metrics=evaluation.get("candidate") or metadata.metrics, model_version=metadata.model_version,
        run_id=request.run_id, approve=settings.auto_approve, image_uri=settings.image_uri,
        metrics_report_uri=evaluation.get("decision_uri"), lineage=metadata.lineage,
    )
    logger.info("registered", extra={"arn": version.arn, "version": version.version, "status": version.approval_status})
    record = read_run_record(settings.bucket("reports_bucket"), request.model_name, request.run_id)
    if record is None:
        logger.warning("no run record to add the registry version to", extra={"run_id": request.run_id})
    else:
        write_run_record(settings.bucket("reports_bucket"), run_records.registered(record, version))
    return {"model_package_arn": version.arn, "model_package_version": version.version,
            "approval_status": version.approval_status}
