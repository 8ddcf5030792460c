"""Every shared name in one place: the S3 layout, stack names and outputs, the serving alias.

Stacks grant and configure with these, handlers and CLIs read and write with them, the demo and the
tests build their fake AWS from them. Standard library only: the serving cold start imports it.
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import partial

# A model's name is part of S3 prefixes, IAM policies, the registry's model package group and job names;
# SageMaker's group names allow the least: letters, digits and hyphens, 63 at most.
MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")

# ------------------------------------------------------------------ S3 layout (keys inside the storage buckets)

# data bucket
DATASETS = "datasets/"
SPLITS = "splits/"
SPLIT_FILE = "data.csv"
SPLIT_PARTS = ("train", "test")
# artifacts bucket
MODELS = "models/"
PROMOTIONS_FILE = "promotions.json"
BATCH = "batch/"
BATCH_INPUT = "input/"
BATCH_OUTPUT = "output/"
BATCH_MAP_RESULTS = "map-results/"
DATASET_VERSIONS = "versions/"  # under datasets/<model>/: the data set each retraining run built
DATASET_TRAIN_FILE = "train.csv"  # configured rows + labelled production rows: what the run trains on
DATASET_RECENT_FILE = "recent.csv"  # the most recent labelled production rows, kept out of training for the gate
DATASET_LINEAGE_FILE = "lineage.json"
# capture bucket
CAPTURE = "capture/"
CAPTURE_ERRORS = "capture-errors/"
LABELS = "labels/"  # ground truth: POST /feedback through Firehose, and bulk CSV / JSON Lines files
LABEL_ERRORS = "label-errors/"
FEEDBACK_FOLDER = "feedback/"  # under labels/<model>/: what Firehose delivers; any other key there is a bulk file
# reports bucket
VALIDATION = "validation/"
EVALUATION = "evaluation/"
RUNS = "runs/"  # one run record per pipeline run (contracts/run_record.py)
DRIFT = "drift/"
QUALITY = "quality/"  # the scheduled model-quality check: reports, per-window reports, checkpoint


def model_prefix(root: str, model_name: str) -> str:
    """A model's folder under one of the roots above: every per-model prefix is one of these."""
    return f"{root}{model_name}/"


def run_report_key(root: str, model_name: str, run_id: str) -> str:
    """A pipeline run's report (validation or evaluation) as JSON."""
    return f"{model_prefix(root, model_name)}{run_id}.json"


def checkpoint_key(root: str, model_name: str) -> str:
    """A scheduled check's state between runs (the drift check's, the model-quality check's)."""
    return f"{model_prefix(root, model_name)}checkpoints/{model_name}.json"


def report_stem(root: str, model_name: str, at: datetime) -> str:
    """A scheduled check's report, partitioned by date, without its extension (.json and .html side by side)."""
    return f"{model_prefix(root, model_name)}dt={at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S%fZ}"


def training_data_key(model_name: str) -> str:
    """The default training CSV of a model (the pipeline's default data_uri)."""
    return f"{model_prefix(DATASETS, model_name)}train.csv"


# Training jobs write models/<model>/<run>/output/model.tar.gz; the promotion history sits beside them.
models_prefix = partial(model_prefix, MODELS)
splits_prefix = partial(model_prefix, SPLITS)
# Firehose writes captured requests under capture/<model>/YYYY/MM/DD/HH/; the drift check reads them.
capture_prefix = partial(model_prefix, CAPTURE)
# Firehose's failed deliveries: outside capture/, so they are never read as traffic.
capture_errors_prefix = partial(model_prefix, CAPTURE_ERRORS)
validation_prefix = partial(model_prefix, VALIDATION)
validation_report_key = partial(run_report_key, VALIDATION)
evaluation_prefix = partial(model_prefix, EVALUATION)
evaluation_report_key = partial(run_report_key, EVALUATION)
runs_prefix = partial(model_prefix, RUNS)
run_record_key = partial(run_report_key, RUNS)
# Drift reports (partitioned by date) and the drift check's checkpoint.
drift_prefix = partial(model_prefix, DRIFT)
drift_checkpoint_key = partial(checkpoint_key, DRIFT)
drift_report_stem = partial(report_stem, DRIFT)
# Ground truth: labels/<model>/feedback/YYYY/MM/DD/HH/ from Firehose, bulk files anywhere else under labels/<model>/.
labels_prefix = partial(model_prefix, LABELS)
label_errors_prefix = partial(model_prefix, LABEL_ERRORS)
quality_prefix = partial(model_prefix, QUALITY)
quality_checkpoint_key = partial(checkpoint_key, QUALITY)
quality_report_stem = partial(report_stem, QUALITY)  # a scheduled model-quality run's report


def feedback_prefix(model_name: str) -> str:
    """Where the labels Firehose stream delivers POST /feedback's labels."""
    return f"{labels_prefix(model_name)}{FEEDBACK_FOLDER}"


def quality_window_key(model_name: str, model_version: str, window_start: datetime) -> str:
    """One window's report (its predictions by one model version), rewritten when late labels change it."""
    return f"{quality_prefix(model_name)}windows/v={model_version}/{window_start:%Y%m%dT%H%M}Z.json"


def dataset_version_prefix(model_name: str, run_id: str) -> str:
    """The data set a retraining run built: train.csv, recent.csv and lineage.json."""
    return f"{model_prefix(DATASETS, model_name)}{DATASET_VERSIONS}{run_id}/"


# Batch scoring (data bucket): batch/<model>/input/<job>/ in, batch/<model>/output/<job>/ out.
batch_prefix = partial(model_prefix, BATCH)
BATCH_SUMMARY = "_summary.json"  # written last, at the root of what the job scored
BATCH_MANIFEST = "_manifest.json"  # the parts the Distributed Map reads
BATCH_PART_STATS = "_parts/"  # one small JSON per scored part, summed by the summary


def batch_input_prefix(model_name: str, job_id: str = "") -> str:
    """Where a job's input files go (a file landing here starts a job); job_id "" is the root of all jobs."""
    return f"{batch_prefix(model_name)}{BATCH_INPUT}{job_id + '/' if job_id else ''}"


def batch_output_root(model_name: str) -> str:
    """Every job's outputs, manifests, part stats and summaries."""
    return f"{batch_prefix(model_name)}{BATCH_OUTPUT}"


def batch_output_prefix(model_name: str, job_id: str) -> str:
    return f"{batch_output_root(model_name)}{job_id}/"


def batch_scope_prefix(output_prefix: str, name: str = "") -> str:
    """What one execution scored: the whole job (name "") or the one input file a landing started it for."""
    return f"{output_prefix}{name}/" if name else output_prefix


def batch_part_key(output_prefix: str, name: str, index: int, extension: str) -> str:
    """A part's scored rows: <output>/<input file's path in the job>/part-00000.<ext>."""
    return f"{output_prefix}{name}/part-{index:05d}.{extension}"


def batch_errors_key(output_prefix: str, name: str, index: int) -> str:
    """A part's refused rows (row number and reason), only when it has any."""
    return f"{output_prefix}{name}/errors-{index:05d}.jsonl"


def batch_part_stats_key(output_prefix: str, name: str, index: int) -> str:
    return f"{output_prefix}{name}/{BATCH_PART_STATS}{index:05d}.json"


def batch_map_results_prefix(model_name: str) -> str:
    """Where the Distributed Map writes its child results (Step Functions' ResultWriter)."""
    return f"{batch_prefix(model_name)}{BATCH_MAP_RESULTS}"


def split_prefix(model_name: str, run_id: str, part: str) -> str:
    """One part (train/test) of a run's split: a prefix, so it is a SageMaker channel."""
    return f"{splits_prefix(model_name)}{run_id}/{part}/"


def promotions_key(model_name: str) -> str:
    return f"{models_prefix(model_name)}{PROMOTIONS_FILE}"


def drift_fanout_prefix(model_name: str) -> str:
    """A fanned-out drift check's manifests and the partial counts of its children, per run."""
    return f"{drift_prefix(model_name)}fanout/"


def drift_fanout_manifest_key(model_name: str, run_id: str) -> str:
    return f"{drift_fanout_prefix(model_name)}{run_id}/manifest.json"


def drift_fanout_part_key(model_name: str, run_id: str, group: int) -> str:
    """One child's counts of its group of capture files."""
    return f"{drift_fanout_prefix(model_name)}{run_id}/parts/{group:05d}.json"


def drift_fanout_results_prefix(model_name: str) -> str:
    """Where the drift fan-out's Distributed Map writes its child results (Step Functions' ResultWriter)."""
    return f"{drift_prefix(model_name)}fanout-results/"


def drift_fanout_state_machine(project_name: str) -> str:
    """The drift fan-out state machine's name: fixed, so the drift check can start it without a reference cycle."""
    return f"{project_name}-drift-fanout"


# ------------------------------------------------------------------ stacks, their outputs, the alias

DEFAULT_PROJECT = "serverless-mlops"
STORAGE, TRAINING, SERVING, MONITORING, BATCH_SCORING = "storage", "training", "serving", "monitoring", "batch"
STACKS = (STORAGE, TRAINING, SERVING, MONITORING, BATCH_SCORING)
# What a promotion redeploys: the function (the model is its configuration), the drift check and batch
# scoring's default model.
ROLLOUT_STACKS = (SERVING, MONITORING, BATCH_SCORING)


def stack_name(project_name: str, stack: str) -> str:
    return f"{project_name}-{stack}"


# The serving function's alias that API Gateway invokes and CodeDeploy shifts.
ALIAS = "live"


class Output:
    """Stack output ids (the keys `aws cloudformation describe-stacks` shows)."""

    # serving
    API_URL = "ApiUrl"
    API_KEY_ID = "ApiKeyId"
    FUNCTION_NAME = "FunctionName"
    ALIAS_ARN = "AliasArn"
    DEPLOYMENT_APPLICATION = "DeploymentApplicationName"
    DEPLOYMENT_GROUP = "DeploymentGroupName"
    CAPTURE_STREAM = "CaptureStreamName"
    LABELS_STREAM = "LabelsStreamName"
    # training
    STATE_MACHINE_ARN = "StateMachineArn"
    NOTIFICATION_TOPIC_ARN = "NotificationTopicArn"
    # monitoring
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DRIFT_CHECK_FUNCTION = "DriftCheckFunctionName"
    DRIFT_FANOUT_STATE_MACHINE_ARN = "DriftFanoutStateMachineArn"
    QUALITY_CHECK_FUNCTION = "QualityCheckFunctionName"
    # batch
    BATCH_STATE_MACHINE_ARN = "BatchStateMachineArn"
    BATCH_INPUT_URI = "BatchInputUri"
    # storage
    TRAINING_DATA_URI = "TrainingDataUri"


BUCKETS = ("data", "artifacts", "capture", "reports")


def bucket_output(bucket: str, attribute: str) -> str:
    """The storage stack's output for one bucket attribute ("Name" or "Arn"), e.g. DataBucketArn."""
    return f"{bucket.capitalize()}Bucket{attribute}"
