"""A SageMaker training job played locally: the container's /opt/ml file contract, the entry script in a subprocess.

SageMaker downloads each channel's S3 prefix into /opt/ml/input/data/<channel>, writes the
hyperparameters file, runs the image with `train`, then packs /opt/ml/model into
<output path>/<job name>/output/model.tar.gz. This does the same against the embedded AWS.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3

from contracts.artifact import TARBALL, pack
from contracts.s3_uri import split_s3_uri


class TrainingJobFailed(RuntimeError):
    """The job exited non-zero; the message is the container's output/failure, as SageMaker reports it."""


def download_prefix(s3, uri: str, dest: Path) -> None:
    bucket, prefix = split_s3_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix):].lstrip("/") or Path(obj["Key"]).name
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))


def run_training_job(*, job_name: str, channels: dict[str, str], hyperparameters: dict[str, str],
                     output_path: str, workdir: Path) -> str:
    """Run one training job; returns the S3 URI of its model.tar.gz."""
    s3 = boto3.client("s3")
    root = (workdir / job_name / "opt" / "ml").resolve()  # the job runs in its own folder: no relative paths
    for channel, uri in channels.items():
        download_prefix(s3, uri, root / "input" / "data" / channel)
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    proc = subprocess.run([sys.executable, "-m", "training.sagemaker_entry", "train", "--root", str(root)],
                          capture_output=True, text=True, cwd=root)
    if proc.returncode != 0:
        failure = root / "output" / "failure"
        raise TrainingJobFailed(failure.read_text() if failure.exists() else proc.stderr[-1024:])
    tarball = workdir / job_name / TARBALL
    pack(root / "model", tarball)
    bucket, prefix = split_s3_uri(output_path.rstrip("/"))
    key = f"{prefix}/{job_name}/output/{TARBALL}".lstrip("/")
    s3.upload_file(str(tarball), bucket, key)
    return f"s3://{bucket}/{key}"
