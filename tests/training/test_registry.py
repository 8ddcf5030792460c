"""Model Registry actions on moto: register, list, approve, reject, latest approved, resolve, the CLI."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from training import registry


@pytest.fixture
def sm():
    with mock_aws():
        yield boto3.client("sagemaker")


def _register(sm, model_name="churn", n=1, **kw):
    return registry.register(
        sm, model_name=model_name, model_data_url=f"s3://artifacts/models/{model_name}/run-{n}/output/model.tar.gz",
        sha256=f"{n:x}" * 64, metrics={"roc_auc": 0.9 + n / 100, "accuracy": 0.8}, model_version=f"v{n}", run_id=f"run-{n}", **kw)


def test_register_creates_the_group_and_a_pending_version(sm):
    version = _register(sm, metrics_report_uri="s3://reports/evaluation/churn/run-1.json")
    assert version.version == 1 and version.approval_status == registry.PENDING
    assert version.metrics == {"roc_auc": 0.91, "accuracy": 0.8}
    assert version.sha256 == "1" * 64 and version.model_version == "v1" and version.run_id == "run-1"
    desc = sm.describe_model_package(ModelPackageName=version.arn)
    assert desc["CustomerMetadataProperties"]["artifact_sha256"] == "1" * 64
    assert desc["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://reports/evaluation/churn/run-1.json"
    assert "InferenceSpecification" not in desc
    assert sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupName"] == "churn"


def test_auto_approve_and_image_uri(sm):
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops:abc"
    version = _register(sm, approve=True, image_uri=image)
    assert version.approval_status == registry.APPROVED
    container = sm.describe_model_package(ModelPackageName=version.arn)["InferenceSpecification"]["Containers"][0]
    assert container == {"Image": image, "ModelDataUrl": version.model_data_url}


def test_list_approve_reject_and_latest_approved(sm):
    assert registry.latest_approved(sm, "churn") is None  # no group yet
    for n in (1, 2, 3):
        _register(sm, n=n)
    assert registry.latest_approved(sm, "churn") is None  # all pending
    registry.approve(sm, "churn", 1, "first release")
    approved = registry.approve(sm, "churn", 2, "better AUC")
    assert approved.approval_status == registry.APPROVED and approved.approval_description == "better AUC"
    assert approved.sha256 == "2" * 64  # the update keeps the metadata
    rejected = registry.reject(sm, "churn", 3, "drifted data")
    assert rejected.approval_status == registry.REJECTED and rejected.metrics["roc_auc"] == 0.93
    assert [(v.version, v.approval_status) for v in registry.list_versions(sm, "churn")] == [
        (1, "Approved"), (2, "Approved"), (3, "Rejected")]
    assert registry.latest_approved(sm, "churn").version == 2
    registry.reject(sm, "churn", 2, "rollback")
    assert registry.latest_approved(sm, "churn").version == 1


def test_resolve(sm):
    _register(sm, n=1)
    _register(sm, model_name="other", n=5)
    resolved = registry.resolve(sm, "churn", 1)
    assert resolved.arn.endswith("model-package/churn/1")
    assert resolved.model_data_url == "s3://artifacts/models/churn/run-1/output/model.tar.gz"
    with pytest.raises(registry.RegistryError, match="model 'churn' has no version 4"):
        registry.resolve(sm, "churn", 4)
    with pytest.raises(registry.RegistryError, match="no model package group named 'nope'"):
        registry.resolve(sm, "nope", 1)


def test_invalid_model_name_and_status(sm):
    with pytest.raises(ValueError, match="model name 'my_model' must be"):
        _register(sm, model_name="my_model")
    _register(sm)
    with pytest.raises(ValueError, match="status must be"):
        registry.set_status(sm, "churn", 1, "Maybe")


def test_cli(sm, capsys):
    _register(sm, n=1)
    assert registry.main(["approve", "--model-name", "churn", "--version", "1", "--description", "ok"]) == 0
    assert json.loads(capsys.readouterr().out)["approval_status"] == "Approved"
    assert registry.main(["list", "--model-name", "churn"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)] == [1]
    assert registry.main(["describe", "--model-name", "churn", "--version", "9"]) == 1
    assert "has no version 9" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        registry.main(["reject", "--model-name", "churn"])
    assert usage.value.code == 2


def test_the_data_set_lineage_is_kept_in_brief_within_sagemakers_limits(sm):
    from contracts.artifact import DatasetLineage

    lineage = DatasetLineage(data_uri="s3://data/datasets/churn/versions/run-1/train.csv", data_sha256="ab" * 32,
                             rows=1200, production_rows=180, recent_rows=45,
                             lineage_uri="s3://data/" + "k" * 300)  # longer than a property value may be
    version = _register(sm, lineage=lineage)
    assert version.dataset == {"uri": lineage.data_uri, "sha256": "ab" * 32, "rows": "1200", "production_rows": "180",
                               "recent_rows": "45"}  # the over-long URI left out, not cut
    assert _register(sm, n=2).dataset == {}  # registered without lineage (by hand)
