"""Rollouts that must not happen: a clear error, no `cdk deploy`, the promotion history untouched.

Covered elsewhere (tests/stacks/test_rollout.py): versions not Approved, a failing `cdk deploy`,
a concurrent history write. Here: the SageMaker registry itself failing (throttled, unreachable)
at each call a rollout makes, for promote, rollback and deploy; a registry that finds no model;
and an approved version whose tarball is not what was registered.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from contracts import artifact, names
from contracts.names import Output
from stacks import rollout as promote
from stacks.rollout import Clients
from tests.inference.serving_helpers import copy_artifact
from tests.reliability.reliability_helpers import MODEL_NAME, client_error, fail_operation
from training import registry

BUCKET = "artifacts-bucket"
HISTORY = names.promotions_key(MODEL_NAME)
SERVING = "serverless-mlops-serving"


class RecordingCdk:
    """Stands in for the CDK CLI (no AWS account here): records each deploy command."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str]) -> int:
        self.commands.append(command)
        return 0


def history_object(s3: Any) -> tuple[bytes, str]:
    obj = s3.get_object(Bucket=BUCKET, Key=HISTORY)
    return obj["Body"].read(), obj["ETag"]


@pytest.fixture
def live(bc_tarball):
    """Three approved versions (real tarballs, real sha256), 1 then 2 promoted: version 2 is live."""
    tarball, sha = bc_tarball
    with mock_aws():
        clients = Clients(*(boto3.client(n) for n in ("sagemaker", "s3", "cloudformation", "codedeploy", "lambda")))
        clients.s3.create_bucket(Bucket=BUCKET)
        for run in ("run-1", "run-2", "run-3"):
            key = f"models/{MODEL_NAME}/{run}/output/model.tar.gz"
            clients.s3.put_object(Bucket=BUCKET, Key=key, Body=tarball)
            registry.register(clients.sagemaker, model_name=MODEL_NAME, model_data_url=f"s3://{BUCKET}/{key}", sha256=sha,
                              metrics={"roc_auc": 0.99}, model_version=run, run_id=run, approve=True)
        cdk = RecordingCdk()
        for version in ("1", "2"):
            assert promote.main(["promote", "--model-name", MODEL_NAME, "--version", version], clients=clients,
                                runner=cdk) == 0
        yield SimpleNamespace(clients=clients, cdk=cdk, deployed=len(cdk.commands))


COMMANDS = {
    "promote": ["promote", "--model-name", MODEL_NAME, "--version", "3"],
    "rollback": ["rollback", "--model-name", MODEL_NAME],
    "deploy": ["deploy", "--model-name", MODEL_NAME],
}
FAILURES = {
    "group-throttled": ("DescribeModelPackageGroup", client_error("DescribeModelPackageGroup", "ThrottlingException",
                                                                  "Rate exceeded")),
    "list-unreachable": ("ListModelPackages", EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com")),
    "describe-denied": ("DescribeModelPackage", client_error("DescribeModelPackage", "AccessDeniedException",
                                                             "not authorized to perform sagemaker:DescribeModelPackage")),
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("command", COMMANDS)
def test_registry_failure_stops_the_rollout_before_deploying(live, command, failure, capsys):
    operation, error = FAILURES[failure]
    before = history_object(live.clients.s3)
    fail_operation(live.clients.sagemaker, operation, error)
    capsys.readouterr()
    assert promote.main(COMMANDS[command], clients=live.clients, runner=live.cdk) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"promote {command}: ") and str(error) in err
    assert len(live.cdk.commands) == live.deployed, "cdk deploy ran"
    assert history_object(live.clients.s3) == before
    assert promote.History(BUCKET, HISTORY, json.loads(before[0])["entries"]).live() == [1, 2]


def deployed_serving_stack(clients: Clients, model_version: str) -> None:
    """The serving stack as CloudFormation and Lambda show it: the live alias on a function serving a model."""
    role = boto3.client("iam").create_role(RoleName="inference", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function = f"{SERVING}-InferenceFunction"
    clients.lambda_.create_function(FunctionName=function, Role=role, PackageType="Image",
                                    Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1"},
                                    Environment={"Variables": {"MODEL_VERSION": model_version}})
    version = clients.lambda_.publish_version(FunctionName=function)["Version"]
    clients.lambda_.create_alias(FunctionName=function, Name=names.ALIAS, FunctionVersion=version)
    clients.cloudformation.create_stack(StackName=SERVING, TemplateBody=json.dumps({
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {Output.FUNCTION_NAME: {"Value": function}}}))


def test_deploy_refuses_when_the_registry_finds_no_model_but_one_is_live(live, capsys):
    deployed_serving_stack(live.clients, "2")
    capsys.readouterr()
    code = promote.main(["deploy", "--model-name", "breast-cancr"], clients=live.clients, runner=live.cdk)
    assert len(live.cdk.commands) == live.deployed, f"deployed {live.cdk.commands[-1]}"
    assert code == 1 and "breast-cancr" in capsys.readouterr().err


# ------------------------------------------------------------------ a tampered artifact approved by mistake
# The function refuses such a tarball (503 with the reason: tests/inference/test_model_loader.py) and the evaluation
# step falls back to the floor (tests/training/test_pipeline_handlers.py); promote should refuse it before deploying.


def repacked(breast_cancer_dir: Path, tmp_path: Path, *, break_manifest: bool) -> bytes:
    """Another tarball: a legitimately re-manifested copy, or one whose model.onnx changed after its manifest."""
    copy = copy_artifact(breast_cancer_dir, tmp_path / "copy", library_versions={"numpy": "1.0.0"})
    if break_manifest:
        with open(copy / artifact.MODEL_ONNX, "ab") as fh:
            fh.write(b"\0")
    artifact.pack(copy, tmp_path / artifact.TARBALL)
    return (tmp_path / artifact.TARBALL).read_bytes()


def assert_refused(live: SimpleNamespace, argv: list[str], before: tuple[bytes, str], capsys, *words: str) -> None:
    code = promote.main(argv, clients=live.clients, runner=live.cdk)
    assert len(live.cdk.commands) == live.deployed, f"deployed {live.cdk.commands[-1]}"
    err = capsys.readouterr().err
    assert code == 1 and all(word in err for word in words), err
    assert history_object(live.clients.s3) == before


def test_promote_refuses_a_tarball_replaced_after_registration(live, breast_cancer_dir, tmp_path, capsys):
    key = f"models/{MODEL_NAME}/run-3/output/model.tar.gz"
    live.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=repacked(breast_cancer_dir, tmp_path, break_manifest=False))
    before = history_object(live.clients.s3)
    capsys.readouterr()
    assert_refused(live, COMMANDS["promote"], before, capsys, "sha256", "version 3")


def test_promote_refuses_a_registered_tarball_whose_manifest_does_not_match(live, breast_cancer_dir, tmp_path, capsys):
    body = repacked(breast_cancer_dir, tmp_path, break_manifest=True)
    key = f"models/{MODEL_NAME}/run-4/output/model.tar.gz"
    live.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    registry.register(live.clients.sagemaker, model_name=MODEL_NAME, model_data_url=f"s3://{BUCKET}/{key}",
                      sha256=artifact.sha256_bytes(body), metrics={"roc_auc": 0.99}, run_id="run-4", approve=True)
    before = history_object(live.clients.s3)
    capsys.readouterr()
    assert_refused(live, ["promote", "--model-name", MODEL_NAME, "--version", "4"], before, capsys,
                   "model.onnx", "version 4")
