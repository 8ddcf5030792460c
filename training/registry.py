"""The SageMaker Model Registry: one model package group per model name, one package per model version.

    mlops registry list|describe|approve|reject --model-name X [--version N] [--description TEXT]

A package carries what promotion and serving need in CustomerMetadataProperties: the tarball
location and sha256, the artifact's version id, the held-out metrics and the training data set's
lineage in brief (uri, sha256, rows, production and recent rows, the lineage document's uri), as
strings, which is all the registry stores there; ModelMetrics points at the evaluation report in S3.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from typing import Any

from pydantic import BaseModel, Field

from contracts.artifact import DatasetLineage

APPROVED = "Approved"
PENDING = "PendingManualApproval"
REJECTED = "Rejected"
SHA256_KEY = "artifact_sha256"
MODEL_DATA_KEY = "model_data_url"
MODEL_VERSION_KEY = "model_version"
RUN_ID_KEY = "run_id"
METRIC_PREFIX = "metric:"
DATASET_PREFIX = "dataset:"  # the data set's lineage in brief: dataset:uri, dataset:sha256, dataset:rows, …
# SageMaker's limits on CustomerMetadataProperties: 50 entries, keys of 128 characters, values of 256.
MAX_PROPERTY_VALUE = 256
# ModelPackageGroupName's rule: the model name must satisfy it.
GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class RegistryError(Exception):
    """A registry lookup or change cannot be done; the message says which model/version and why."""


class ModelVersion(BaseModel):
    """One registered model package, as promotion and the evaluation step need it."""

    model_config = {"protected_namespaces": ()}

    model_name: str
    version: int
    arn: str
    approval_status: str
    model_data_url: str
    sha256: str
    metrics: dict[str, float]
    model_version: str | None = None  # the artifact's own version id (metadata.json)
    run_id: str | None = None
    created: str | None = None
    approval_description: str | None = None
    dataset: dict[str, str] = Field(default_factory=dict)  # the training data set's lineage in brief


def check_model_name(model_name: str) -> str:
    """Refuse names SageMaker rejects as a model package group name."""
    if not GROUP_NAME.match(model_name or ""):
        raise ValueError(f"model name {model_name!r} must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit")
    return model_name


def _client(sagemaker: Any | None) -> Any:
    if sagemaker is not None:
        return sagemaker
    import boto3

    return boto3.client("sagemaker")


def _is_missing_group(error: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(error, ClientError) and error.response["Error"]["Code"] == "ValidationException" \
        and "does not exist" in error.response["Error"]["Message"]


def group_exists(sagemaker: Any, model_name: str) -> bool:
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=model_name)
    except Exception as exc:
        if _is_missing_group(exc):
            return False
        raise
    return True


def ensure_group(sagemaker: Any, model_name: str) -> None:
    """Create the model package group on first use."""
    if not group_exists(sagemaker, check_model_name(model_name)):
        sagemaker.create_model_package_group(
            ModelPackageGroupName=model_name, ModelPackageGroupDescription=f"Versions of the {model_name} model",
        )


def dataset_properties(lineage: DatasetLineage | None) -> dict[str, str]:
    """The lineage in brief as registry properties; a value longer than SageMaker's 256 characters (a very
    long URI) is left out rather than cut, so every value shown is whole (lineage.json has them all)."""
    if lineage is None:
        return {}
    values = {"uri": lineage.data_uri, "sha256": lineage.data_sha256, "rows": lineage.rows,
              "production_rows": lineage.production_rows, "recent_rows": lineage.recent_rows,
              "lineage_uri": lineage.lineage_uri}
    return {f"{DATASET_PREFIX}{name}": str(value) for name, value in values.items()
            if value is not None and len(str(value)) <= MAX_PROPERTY_VALUE}


def _properties(*, model_data_url: str, sha256: str, metrics: dict[str, float],
                model_version: str | None, run_id: str | None, lineage: DatasetLineage | None = None) -> dict[str, str]:
    props = {MODEL_DATA_KEY: model_data_url, SHA256_KEY: sha256}
    if model_version:
        props[MODEL_VERSION_KEY] = model_version
    if run_id:
        props[RUN_ID_KEY] = run_id
    props.update({f"{METRIC_PREFIX}{name}": f"{value:.6g}" for name, value in metrics.items()})
    return props | dataset_properties(lineage)


def register(
    sagemaker: Any | None,
    *,
    model_name: str,
    model_data_url: str,
    sha256: str,
    metrics: dict[str, float],
    model_version: str | None = None,
    run_id: str | None = None,
    approve: bool = False,
    image_uri: str | None = None,
    metrics_report_uri: str | None = None,
    lineage: DatasetLineage | None = None,
) -> ModelVersion:
    """Add a version to the model's package group (created when missing), pending approval unless `approve`."""
    sm = _client(sagemaker)
    ensure_group(sm, model_name)
    request: dict[str, Any] = {
        "ModelPackageGroupName": model_name,
        "ModelPackageDescription": f"{model_name} {model_version or ''} (run {run_id or '-'})",
        "ModelApprovalStatus": APPROVED if approve else PENDING,
        "CustomerMetadataProperties": _properties(model_data_url=model_data_url, sha256=sha256, metrics=metrics,
                                                  model_version=model_version, run_id=run_id, lineage=lineage),
        # A retried step registers the same tarball once.
        "ClientToken": hashlib.sha256(f"{model_name}/{run_id}/{sha256}".encode()).hexdigest()[:36],
    }
    if image_uri:  # the inference specification needs a real image; without one the package is metadata only
        request["InferenceSpecification"] = {
            "Containers": [{"Image": image_uri, "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        }
    if metrics_report_uri:
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_report_uri}}}
    arn = sm.create_model_package(**request)["ModelPackageArn"]
    return _describe(sm, arn)


def _to_version(desc: dict[str, Any]) -> ModelVersion:
    props = desc.get("CustomerMetadataProperties") or {}
    containers = (desc.get("InferenceSpecification") or {}).get("Containers") or [{}]
    created = desc.get("CreationTime")
    return ModelVersion(
        model_name=desc["ModelPackageGroupName"],
        version=desc["ModelPackageVersion"],
        arn=desc["ModelPackageArn"],
        approval_status=desc["ModelApprovalStatus"],
        model_data_url=props.get(MODEL_DATA_KEY) or containers[0].get("ModelDataUrl", ""),
        sha256=props.get(SHA256_KEY, ""),
        metrics={k[len(METRIC_PREFIX):]: float(v) for k, v in props.items() if k.startswith(METRIC_PREFIX)},
        model_version=props.get(MODEL_VERSION_KEY),
        run_id=props.get(RUN_ID_KEY),
        created=created.isoformat() if hasattr(created, "isoformat") else created,
        approval_description=desc.get("ApprovalDescription"),
        dataset={k[len(DATASET_PREFIX):]: v for k, v in props.items() if k.startswith(DATASET_PREFIX)},
    )


def _describe(sm: Any, arn: str) -> ModelVersion:
    return _to_version(sm.describe_model_package(ModelPackageName=arn))


def _summaries(sm: Any, model_name: str, status: str | None = None) -> list[dict[str, Any]]:
    """Package summaries of the group, oldest version first."""
    if not group_exists(sm, model_name):
        raise RegistryError(f"no model package group named {model_name!r}: nothing was registered for this model")
    request = {"ModelPackageGroupName": model_name} | ({"ModelApprovalStatus": status} if status else {})
    pages = sm.get_paginator("list_model_packages").paginate(**request)
    summaries = [s for page in pages for s in page["ModelPackageSummaryList"]]
    return sorted(summaries, key=lambda s: s["ModelPackageVersion"])


def list_versions(sagemaker: Any | None, model_name: str) -> list[ModelVersion]:
    """Every version of the model, oldest first, with status and metrics."""
    sm = _client(sagemaker)
    return [_describe(sm, s["ModelPackageArn"]) for s in _summaries(sm, model_name)]


def _arn(sm: Any, model_name: str, version: int) -> str:
    for summary in _summaries(sm, model_name):
        if summary["ModelPackageVersion"] == version:
            return summary["ModelPackageArn"]
    raise RegistryError(f"model {model_name!r} has no version {version}")


def resolve(sagemaker: Any | None, model_name: str, version: int) -> ModelVersion:
    """One version: its package ARN, tarball location and sha256, metrics and status."""
    sm = _client(sagemaker)
    return _describe(sm, _arn(sm, model_name, version))


def latest_approved(sagemaker: Any | None, model_name: str) -> ModelVersion | None:
    """The highest approved version (the production model), or None when there is none."""
    sm = _client(sagemaker)
    try:
        approved = _summaries(sm, model_name, APPROVED)
    except RegistryError:
        return None
    return _describe(sm, approved[-1]["ModelPackageArn"]) if approved else None


def set_status(sagemaker: Any | None, model_name: str, version: int, status: str, description: str = "") -> ModelVersion:
    """Approve or reject a version, with the reason recorded as its ApprovalDescription."""
    if status not in (APPROVED, REJECTED, PENDING):
        raise ValueError(f"status must be {APPROVED}, {REJECTED} or {PENDING}, not {status!r}")
    sm = _client(sagemaker)
    arn = _arn(sm, model_name, version)
    desc = sm.describe_model_package(ModelPackageName=arn)
    sm.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=status,
        ApprovalDescription=description[:1024],
        # Sent back unchanged: an update without them drops them in some implementations (moto).
        CustomerMetadataProperties=desc.get("CustomerMetadataProperties") or {},
    )
    return _describe(sm, arn)


def approve(sagemaker: Any | None, model_name: str, version: int, description: str = "approved") -> ModelVersion:
    return set_status(sagemaker, model_name, version, APPROVED, description)


def reject(sagemaker: Any | None, model_name: str, version: int, description: str = "rejected") -> ModelVersion:
    return set_status(sagemaker, model_name, version, REJECTED, description)


EXAMPLES = """examples:
  mlops registry list --model-name breast-cancer
  mlops registry approve --model-name breast-cancer --version 3 --description "reviewed the evaluation"
"""


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "mlops registry", description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["list", "describe", "approve", "reject"])
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--version", type=int, help="model package version (describe, approve, reject)")
    parser.add_argument("--description", default="", help="why (approve, reject)")
    args = parser.parse_args(argv)
    if args.action != "list" and args.version is None:
        parser.error(f"{args.action} needs --version")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if args.action == "list":
            result: Any = [v.model_dump() for v in list_versions(None, args.model_name)]
        elif args.action == "describe":
            result = resolve(None, args.model_name, args.version).model_dump()
        else:
            change = approve if args.action == "approve" else reject
            result = change(None, args.model_name, args.version, args.description or f"{args.action}d from the CLI").model_dump()
    except (RegistryError, ValueError, ClientError, BotoCoreError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
