"""The run record: one JSON document per training pipeline run, passed, rejected or failed.

The evaluate step writes it (reports bucket, `names.run_record_key`), the register step adds the
registry version to it; `mlops runs` lists, compares and exports the records. Everything a runs
table needs is here, so nothing has to be joined from the evaluation report or the registry.
"""
from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from contracts.schema import Task

FORMAT_VERSION = 1
# passed: the gate accepted it (registration follows); registered: it is a registry version;
# rejected: the gate turned it down; failed: the run stopped before an evaluation (bad data).
Status = Literal["passed", "registered", "rejected", "failed"]
STATUSES: tuple[str, ...] = get_args(Status)


class DataRef(BaseModel):
    """The training data of the run: where it came from, its sha256 and row counts."""

    uri: str | None = None
    sha256: str | None = None
    rows: dict[str, int] = Field(default_factory=dict)  # train / test (and total when known)
    # Where the data set came from, when the pipeline's BuildDataset step built it (the model's metadata.lineage).
    lineage: dict[str, Any] | None = None


class Gate(BaseModel):
    """The evaluation gate's decision and the numbers it compared."""

    passed: bool
    reason: str
    threshold: float | None = None
    tolerance: float | None = None
    floor: float | None = None
    production_version: int | None = None  # the registry version the candidate was compared with
    production_metrics: dict[str, float] | None = None
    test_rows: int | None = None
    report_uri: str | None = None  # the evaluation report (evaluation/<model>/<run>.json)
    production_source: str | None = None  # "live", "latest_approved" or "none" (training.evaluate.Decision)
    recent: dict[str, Any] | None = None  # the comparison on the recent labelled production rows, when any


class Registration(BaseModel):
    """The Model Registry version the run became."""

    version: int
    arn: str
    approval_status: str


class RunRecord(BaseModel):
    """runs/<model>/<run_id>.json"""

    model_config = ConfigDict(protected_namespaces=())

    format_version: int = FORMAT_VERSION
    model_name: str
    run_id: str
    status: Status
    started_at: str | None = None  # the execution's start (ISO 8601, UTC)
    finished_at: str  # when the record was last written by the pipeline
    task: Task | None = None
    algorithm: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    search_candidates: list[dict[str, Any]] | None = None  # a hyperparameter search's candidates, when one ran
    data: DataRef = Field(default_factory=DataRef)
    primary_metric: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)  # the candidate's, on the held-out split
    gate: Gate | None = None  # None when the run failed before the evaluation
    model_version: str | None = None  # the artifact's own version id (metadata.json)
    artifact_uri: str | None = None
    artifact_sha256: str | None = None
    training_job_name: str | None = None
    registration: Registration | None = None
    error: str | None = None  # why a failed run failed
    validation_report_uri: str | None = None  # a failed run's data validation report

    @property
    def primary_value(self) -> float | None:
        return self.metrics.get(self.primary_metric) if self.primary_metric else None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def parse_record(body: bytes | str) -> RunRecord:
    """A record from its JSON; raises ValueError (pydantic's ValidationError) when it is not one."""
    return RunRecord.model_validate_json(body)
