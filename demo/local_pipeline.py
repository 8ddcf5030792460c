"""The training state machine played locally: the same step handlers, in the order the CDK definition runs them.

moto runs neither Step Functions states nor SageMaker jobs, so this plays validate → training
job → evaluate → (passed?) register with the cloud's handler code; the stack tests assert that
the deployed definition has the same steps.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from contracts import names
from contracts.artifact import utc_now
from contracts.env import Var
from demo.lambda_context import LocalContext
from demo.local_sagemaker import run_training_job

# What the cloud's pipeline functions read from their environment (stacks/training_stack.py sets it).
PIPELINE_ENV = (Var.DATA_BUCKET, Var.ARTIFACTS_BUCKET, Var.REPORTS_BUCKET)


@dataclass
class PipelineRun:
    run_id: str
    validation: dict = field(default_factory=dict)
    model_data_url: str = ""
    evaluation: dict = field(default_factory=dict)
    registration: dict | None = None

    @property
    def registered(self) -> bool:
        return self.registration is not None


def run_pipeline(*, model_name: str, run_id: str, data_uri: str, target: str, workdir: Path,
                 categorical: list[str] | None = None, task: str = "",
                 choice: dict | None = None) -> PipelineRun:
    """Run one execution; raises the step's own exception (DataValidationError, TrainingJobFailed, …) on failure.

    choice: the execution input's model fields (algorithm, hyperparameters, search_candidates, search_seconds).
    """
    missing = [name for name in PIPELINE_ENV if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"set {', '.join(missing)} before running the pipeline")
    from pipeline import app as steps  # after the environment is set: the handlers create clients at import

    run = PipelineRun(run_id=run_id)
    base = {"model_name": model_name, "run_id": run_id}
    started_at = utc_now()  # the execution's start, as Step Functions passes it to the run record
    run.validation = steps.validate_handler(
        base | {"data_uri": data_uri, "target": target, "task": task, "categorical": categorical or []} | (choice or {}),
        LocalContext("validate"))
    job_name = f"{model_name}-{run_id}"
    run.model_data_url = run_training_job(
        job_name=job_name,
        channels={part: run.validation[f"{part}_uri"] for part in names.SPLIT_PARTS},
        hyperparameters=run.validation["hyperparameters"],
        output_path=f"s3://{os.environ[Var.ARTIFACTS_BUCKET]}/{names.models_prefix(model_name)}", workdir=workdir)
    run.evaluation = steps.evaluate_handler(
        base | {"candidate_model_uri": run.model_data_url, "test_uri": run.validation["test_uri"],
                "data_uri": data_uri, "started_at": started_at, "training_job_name": job_name},
        LocalContext("evaluate"))
    if run.evaluation["passed"]:
        run.registration = steps.register_handler(
            base | {"candidate_model_uri": run.model_data_url, "evaluation": run.evaluation}, LocalContext("register"))
    return run
