"""The training state machine played locally: the same step handlers, in the order the CDK definition runs them.

moto runs neither Step Functions states nor SageMaker jobs, so this plays build the data set →
validate → training job → evaluate → (passed?) register with the cloud's handler code; the stack
tests assert that the deployed definition has the same steps.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contracts import names
from contracts.artifact import utc_now
from contracts.env import Var, flag_value
from contracts.label_objects import DEFAULT_HORIZON_DAYS
from demo.lambda_context import LocalContext
from demo.local_sagemaker import run_training_job
from pipeline.production_data import DEFAULT_RECENT_SHARE

# What the cloud's pipeline functions read from their environment (stacks/training_stack.py sets it).
PIPELINE_ENV = (Var.DATA_BUCKET, Var.ARTIFACTS_BUCKET, Var.REPORTS_BUCKET)


def build_env(capture_bucket: str, *, production_labels: bool = True, recent_share: float | None = None,
              horizon_days: int | None = None) -> dict[str, str]:
    """The BuildDataset step's own settings, as the stack sets them (with the data bucket of PIPELINE_ENV); the
    step's defaults unless given.

    Without them (PRODUCTION_LABELS unset: off) a run trains on the configured data as it is.
    """
    return {Var.CAPTURE_BUCKET: capture_bucket, Var.PRODUCTION_LABELS: flag_value(production_labels),
            Var.RECENT_SHARE: str(DEFAULT_RECENT_SHARE if recent_share is None else recent_share),
            Var.MODEL_QUALITY_HORIZON_DAYS: str(horizon_days or DEFAULT_HORIZON_DAYS)}


@dataclass
class PipelineRun:
    run_id: str
    dataset: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    model_data_url: str = ""
    evaluation: dict = field(default_factory=dict)
    registration: dict | None = None

    @property
    def registered(self) -> bool:
        return self.registration is not None


def run_pipeline(*, model_name: str, run_id: str, data_uri: str, target: str, workdir: Path,
                 categorical: list[str] | None = None, task: str = "",
                 choice: dict | None = None, environment: Mapping[str, str] | None = None) -> PipelineRun:
    """Run one execution; raises the step's own exception (DataValidationError, TrainingJobFailed, …) on failure.

    choice: the execution input's model fields (algorithm, hyperparameters, search_candidates, search_seconds).
    environment: set before the steps run, e.g. build_env(capture bucket) for retraining on production rows.
    """
    os.environ.update(environment or {})
    missing = [name for name in PIPELINE_ENV if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"set {', '.join(missing)} before running the pipeline")
    from pipeline import app as steps  # after the environment is set: the handlers create clients at import

    run = PipelineRun(run_id=run_id)
    base = {"model_name": model_name, "run_id": run_id}
    started_at = utc_now()  # the execution's start, as Step Functions passes it to the run record
    run.dataset = steps.build_dataset_handler(base | {"data_uri": data_uri, "target": target, "task": task},
                                              LocalContext("build-dataset"))
    run.validation = steps.validate_handler(
        base | {"data_uri": run.dataset["data_uri"], "target": target, "task": task, "categorical": categorical or [],
                "lineage": run.dataset["lineage"]} | (choice or {}),
        LocalContext("validate"))
    job_name = f"{model_name}-{run_id}"
    run.model_data_url = run_training_job(
        job_name=job_name,
        channels={part: run.validation[f"{part}_uri"] for part in names.SPLIT_PARTS},
        hyperparameters=run.validation["hyperparameters"],
        output_path=f"s3://{os.environ[Var.ARTIFACTS_BUCKET]}/{names.models_prefix(model_name)}", workdir=workdir)
    run.evaluation = steps.evaluate_handler(
        base | {"candidate_model_uri": run.model_data_url, "test_uri": run.validation["test_uri"],
                "recent_uri": run.dataset["recent_uri"], "data_uri": run.dataset["data_uri"],
                "started_at": started_at, "training_job_name": job_name},
        LocalContext("evaluate"))
    if run.evaluation["passed"]:
        run.registration = steps.register_handler(
            base | {"candidate_model_uri": run.model_data_url, "evaluation": run.evaluation}, LocalContext("register"))
    return run
