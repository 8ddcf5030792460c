"""Build the pipeline's run records (contracts/run_record.py) from what the steps already have.

The evaluate step records every evaluated run from the candidate's metadata and the gate's decision;
the register step adds the registry version; a run whose data the validate step refused is recorded
as failed. The handlers read and write the JSON; this module only fills the fields.
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from contracts.artifact import DatasetLineage, Metadata, utc_now
from contracts.run_record import DataRef, Gate, Registration, RunRecord
from training.evaluate import Decision
from training.registry import ModelVersion
from training.validate import ValidationReport


def training_job_of(model_uri: str) -> str | None:
    """The job name in SageMaker's output location <output path>/<job name>/output/model.tar.gz."""
    parts = PurePosixPath(model_uri.removeprefix("s3://")).parts
    return parts[-3] if len(parts) >= 4 and parts[-2] == "output" else None


def search_candidates(metadata: Metadata) -> list[dict[str, Any]] | None:
    """A hyperparameter search's candidates as the artifact records them, when a search ran."""
    found = getattr(metadata, "search_candidates", None) or getattr(metadata, "search", None)
    if isinstance(found, dict):  # a search summary holding its candidates
        found = found.get("candidates")
    if not found:
        return None
    return [c.model_dump() if hasattr(c, "model_dump") else dict(c) for c in found]


def evaluated(*, metadata: Metadata, decision: Decision, model_name: str, run_id: str, artifact_uri: str,
              artifact_sha256: str, report_uri: str, production_version: int | None,
              data_uri: str | None = None, training_job_name: str | None = None,
              started_at: str | None = None) -> RunRecord:
    """The record of a run the gate decided on (status passed or rejected)."""
    hyperparameters = dict(metadata.hyperparameters)
    return RunRecord(
        model_name=model_name, run_id=run_id, status="passed" if decision.passed else "rejected",
        started_at=started_at, finished_at=utc_now(), task=metadata.task,
        algorithm=hyperparameters.get("algorithm"), hyperparameters=hyperparameters,
        search_candidates=search_candidates(metadata),
        data=DataRef(uri=data_uri, sha256=metadata.training_data_sha256, rows=dict(metadata.rows),
                     lineage=metadata.lineage.model_dump(exclude_none=True) if metadata.lineage else None),
        primary_metric=decision.primary_metric, metrics=decision.candidate,
        gate=Gate(passed=decision.passed, reason=decision.reason, threshold=decision.threshold,
                  tolerance=decision.tolerance, floor=decision.floor, production_version=production_version,
                  production_metrics=decision.production, test_rows=decision.test_rows, report_uri=report_uri,
                  production_source=decision.production_source,
                  recent=decision.recent.model_dump() if decision.recent else None),
        model_version=metadata.model_version, artifact_uri=artifact_uri, artifact_sha256=artifact_sha256,
        training_job_name=training_job_name or training_job_of(artifact_uri),
    )


def registered(record: RunRecord, version: ModelVersion) -> RunRecord:
    """The same record, now a registry version."""
    return record.model_copy(update={
        "status": "registered", "finished_at": utc_now(),
        "registration": Registration(version=version.version, arn=version.arn, approval_status=version.approval_status),
    })


def failed(*, model_name: str, run_id: str, report: ValidationReport, report_uri: str, data_uri: str,
           started_at: str | None = None, lineage: DatasetLineage | None = None) -> RunRecord:
    """The record of a run whose data the validate step refused: no model, no gate."""
    return RunRecord(model_name=model_name, run_id=run_id, status="failed", started_at=started_at,
                     finished_at=utc_now(), task=report.task,
                     data=DataRef(uri=data_uri, sha256=report.data_sha256 or None, rows={"total": report.rows},
                                  lineage=lineage.model_dump(exclude_none=True) if lineage else None),
                     error="; ".join(report.errors), validation_report_uri=report_uri)
