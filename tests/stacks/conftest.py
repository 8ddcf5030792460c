"""Synthesize the CDK app once per test session: the default deployment and a variant with the options on."""
from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before jsii starts

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app_stacks import AppStacks, build_stacks
from stacks.config import Config
from tests.inference.conftest import breast_cancer_dir  # noqa: F401  (the demo model, for the rollout tests)
from tests.stacks.stack_helpers import REPO

# The options the default deployment leaves off, all on at once: one extra synthesis covers them.
VARIANT = {
    "project_name": "mlops-variant",
    "retrain_on_drift": "true",
    "auth_mode": "iam",
    "alarm_email": "ops@example.com",
    "provisioned_concurrency": "2",
    "reserved_concurrency": "5",
    "categorical": "mean radius,texture",
    "task": "binary",
    # The model choice as -c passes it: text, the hyperparameters a JSON object.
    "algorithm": "hist_gradient_boosting",
    "hyperparameters": '{"max_iter": 300, "learning_rate": 0.05}',
    "search_candidates": "8",
    "search_seconds": "900",
    "drift_schedule": "rate(30 minutes)",
    "canary": "LambdaLinear10PercentEvery1Minute",
    # Serving settings off their defaults; the docs open to browsers while every other route stays IAM.
    "strict_categories": "true",
    "serving_runtime": "onnxruntime",
    "public_docs": "true",
    "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/breast-cancer/3",
    "model_version": "3",
    "model_data_url": "s3://artifacts-bucket/models/breast-cancer/run-7/job/output/model.tar.gz",
    "model_sha256": "ab" * 32,
    # Batch scoring: every setting off its default (capture on, the upload trigger off).
    "batch_max_concurrency": "250",
    "batch_items_per_child": "4",
    "batch_part_mb": "16",
    "batch_tolerated_failure_percent": "12.5",
    "batch_output_format": "csv",
    "batch_capture_sample_rate": "0.05",
    "batch_memory_mb": "8192",
    "batch_trigger_on_upload": "false",
    # The drift check's pooling and fan-out, every setting off its default.
    "drift_max_window_hours": "48",
    "drift_memory_mb": "3008",
    "drift_fanout_mb": "8192",
    "drift_fanout_group_mb": "512",
    "drift_fanout_max_concurrency": "50",
    "drift_fanout_timeout_minutes": "60",
    # The input alarms and the data-quality thresholds, every setting off its default (capture sampled).
    "capture_sample_rate": "0.25",
    "quality_missing_increase": "0.2",
    "quality_out_of_range_share": "0.1",
    "quality_malformed_share": "0.02",
    "quality_fail_share": "0.5",
    "quality_alarm_issues": "2",
    "client_error_alarm_percent": "25",
    "capture_dropped_alarm_records": "50",
    "capture_silence_minutes": "120",
    # Ground truth, the model-quality check and retraining on production rows, every setting off its default.
    "model_quality_schedule": "rate(6 hours)",
    "model_quality_window_hours": "12",
    "model_quality_horizon_days": "30",
    "model_quality_min_labels": "250",
    "model_quality_tolerance": "0.02",
    "model_quality_floors": '{"accuracy": 0.8, "roc_auc": 0.9}',
    "model_quality_memory_mb": "4096",
    "feedback_max_labels": "200",
    "retrain_on_quality": "true",
    "retrain_with_production_labels": "false",
    "retrain_recent_share": "0.3",
}
TEMPLATES = ("storage", "training", "serving", "monitoring", "batch")


@dataclass(frozen=True)
class Synthesized:
    app: cdk.App
    config: Config
    stacks: AppStacks
    storage: Template
    training: Template
    serving: Template
    monitoring: Template
    batch: Template
    assembly: cdk.cx_api.CloudAssembly


def synthesize(overrides: dict[str, str], outdir: Path) -> Synthesized:
    """The app as `cdk synth` builds it: cdk.json's context (feature flags included) plus -c style overrides."""
    context = json.loads((REPO / "cdk.json").read_text())["context"] | overrides
    app = cdk.App(context=context, outdir=str(outdir))
    config = Config.from_context(app.node.try_get_context)
    stacks = build_stacks(app, config)
    templates = {name: Template.from_stack(getattr(stacks, name)) for name in TEMPLATES}
    return Synthesized(app=app, config=config, stacks=stacks, assembly=app.synth(), **templates)


@pytest.fixture(scope="session")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize({}, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def variant_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(VARIANT, tmp_path_factory.mktemp("cdk-variant"))
