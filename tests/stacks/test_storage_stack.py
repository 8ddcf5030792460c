"""Storage stack: retained, versioned, encrypted, SSL-only, private, logged buckets; registry group; the image."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from contracts.names import BUCKETS, bucket_output
from tests.stacks.stack_helpers import REPO, resources

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def buckets(default_app):
    return resources(default_app.storage, "AWS::S3::Bucket")


def test_five_buckets_all_retained_versioned_encrypted_and_private(buckets):
    assert len(buckets) == 5  # data, artifacts, capture, reports, access logs
    for bucket in buckets.values():
        assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}


def test_every_bucket_denies_requests_without_tls(default_app, buckets):
    policies = resources(default_app.storage, "AWS::S3::BucketPolicy").values()
    denied = set()
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                denied.add(policy["Properties"]["Bucket"]["Ref"])
    assert denied == set(buckets)


def test_data_buckets_log_access_to_the_log_bucket(buckets):
    logged = {lid: b["Properties"].get("LoggingConfiguration") for lid, b in buckets.items()}
    log_bucket = [lid for lid, config in logged.items() if config is None]
    assert len(log_bucket) == 1
    for config in logged.values():
        if config is not None:
            assert config["DestinationBucketName"] == {"Ref": log_bucket[0]}
            assert config["LogFilePrefix"].endswith("/")


def test_old_versions_expire_and_captured_requests_age_out(default_app, buckets):
    for bucket in buckets.values():
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == 90 for r in rules)
    capture_rules = [r for b in buckets.values() for r in b["Properties"]["LifecycleConfiguration"]["Rules"]
                     if r.get("Id") == "age-out-captured-requests"]
    assert len(capture_rules) == 1
    assert capture_rules[0]["ExpirationInDays"] == default_app.config.capture_retention_days
    assert capture_rules[0]["Transitions"] == [{"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 30}]


def test_outputs_that_other_stacks_import_the_buckets_by(default_app):
    outputs = default_app.storage.find_outputs("*")
    for kind in BUCKETS:
        assert bucket_output(kind, "Name") in outputs and bucket_output(kind, "Arn") in outputs
    assert "TrainingDataUri" in outputs


def test_consumers_read_the_named_outputs_not_automatic_references(default_app):
    training = json.dumps(default_app.training.to_json(), separators=(",", ":"))
    assert '{"Fn::GetStackOutput":{"StackName":"serverless-mlops-storage","OutputName":"DataBucketArn"}}' in training
    assert not [name for name in default_app.storage.find_outputs("*") if name.startswith("PublishOutput")]


def test_model_package_group_is_named_after_the_model_and_retained(default_app):
    default_app.storage.has_resource("AWS::SageMaker::ModelPackageGroup", {
        "Properties": Match.object_like({"ModelPackageGroupName": "breast-cancer"}),
        "DeletionPolicy": "Retain",
    })


def test_one_image_asset_for_linux_amd64_from_the_repository(default_app):
    manifest = Path(default_app.assembly.directory) / f"{default_app.stacks.storage.artifact_id}.assets.json"
    images = json.loads(manifest.read_text())["dockerImages"]
    assert len(images) == 1
    source = next(iter(images.values()))["source"]
    assert source["platform"] == "linux/amd64"
    assert source.get("dockerFile", "Dockerfile") == "Dockerfile"


def test_image_context_holds_only_what_the_dockerignore_allows(default_app):
    manifest = Path(default_app.assembly.directory) / f"{default_app.stacks.storage.artifact_id}.assets.json"
    source = next(iter(json.loads(manifest.read_text())["dockerImages"].values()))["source"]
    context = Path(default_app.assembly.directory) / source["directory"]
    files = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    allowed_roots = ("contracts/", "training/", "lambda/inference/", "lambda/drift_check/", "lambda/pipeline/",
                     "lambda/batch_scoring/")
    allowed_files = {"Dockerfile", ".dockerignore", "lambda/requirements-image.lock", "stacks/image_deps.py",
                     "lambda/entrypoint.sh"}
    strays = {f for f in files if f not in allowed_files and not f.startswith(allowed_roots)}
    assert not strays
    assert not {f for f in files if "__pycache__" in f or f.endswith(".pyc")}
    assert {"lambda/inference/app.py", "lambda/pipeline/app.py", "lambda/drift_check/app.py",
            "training/sagemaker_entry.py"} <= files


def test_dockerfile_dispatches_with_the_entry_script_and_serves_by_default():
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    assert next(line for line in lines if line.startswith("FROM")).startswith("FROM public.ecr.aws/lambda/python:3.12.")
    assert 'ENTRYPOINT ["/entrypoint.sh"]' in lines
    assert 'CMD ["inference.app.handler"]' in lines
    assert any("--no-cache-dir" in line for line in lines)


def test_storage_buckets_are_not_created_in_other_stacks(default_app):
    for template in (default_app.training, default_app.serving, default_app.monitoring, default_app.batch):
        assert not resources(template, "AWS::S3::Bucket")
