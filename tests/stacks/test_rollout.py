"""Promotion, rollback and status: the cdk command (pure), registry, history, Lambda and CodeDeploy on moto."""
from __future__ import annotations

import dataclasses
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from contracts import artifact, names
from contracts.names import Output
from stacks import rollout as promote
from stacks.config import Config
from stacks.rollout import Clients, PromotionError
from training import registry

MODEL = "breast-cancer"
BUCKET = "artifacts-bucket"
SERVING = names.stack_name(names.DEFAULT_PROJECT, names.SERVING)
# What a promotion deploys, in this order: the inference function, the drift check, batch scoring's default model.
STACKS = [SERVING, names.stack_name(names.DEFAULT_PROJECT, names.MONITORING),
          names.stack_name(names.DEFAULT_PROJECT, names.BATCH_SCORING)]


class FakeCdk:
    """Records the deploy commands instead of running the CDK CLI (no AWS account here)."""

    def __init__(self, exit_code: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.exit_code = exit_code

    def __call__(self, command: list[str]) -> int:
        self.commands.append(command)
        return self.exit_code


def _context(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, part in enumerate(command) if part == "-c")


@pytest.fixture(scope="module")
def tarball(breast_cancer_dir, tmp_path_factory) -> bytes:
    """A real packed artifact: promote opens what it deploys."""
    path = tmp_path_factory.mktemp("promote") / artifact.TARBALL
    artifact.pack(breast_cancer_dir, path)
    return path.read_bytes()


@pytest.fixture
def aws(tarball):
    with mock_aws():
        clients = Clients(*(boto3.client(n) for n in ("sagemaker", "s3", "cloudformation", "codedeploy", "lambda")))
        clients.s3.create_bucket(Bucket=BUCKET)
        for run, approve in (("run-1", True), ("run-2", True), ("run-3", False)):
            key = f"models/{MODEL}/{run}/output/model.tar.gz"
            clients.s3.put_object(Bucket=BUCKET, Key=key, Body=tarball)
            registry.register(clients.sagemaker, model_name=MODEL, model_data_url=f"s3://{BUCKET}/{key}",
                              sha256=artifact.sha256_bytes(tarball), metrics={"roc_auc": 0.99}, model_version=run,
                              run_id=run, approve=approve)
        yield clients


def run(aws, *argv, cdk=None, capsys=None):
    code = promote.main(list(argv), clients=aws, runner=cdk or FakeCdk())
    return code


def test_deploy_command_names_the_stacks_and_passes_the_registry_entry():
    version = registry.ModelVersion(model_name=MODEL, version=3, arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/breast-cancer/3",
                                    approval_status="Approved", model_data_url="s3://b/m/model.tar.gz", sha256="ab" * 32, metrics={})
    assert promote.deploy_command(STACKS, promote.model_context(version)) == [
        "node_modules/.bin/cdk", "deploy", "serverless-mlops-serving", "serverless-mlops-monitoring",
        "serverless-mlops-batch",
        "-c", "model_package_arn=arn:aws:sagemaker:us-east-1:123456789012:model-package/breast-cancer/3",
        "-c", "model_version=3", "-c", "model_data_url=s3://b/m/model.tar.gz", "-c", f"model_sha256={'ab' * 32}",
        "--require-approval", "never",
    ]


def test_stack_names_follow_the_project_name_in_cdk_json():
    assert promote.stack_names(promote.project_name()) == STACKS


def test_promote_deploys_and_records_the_version(aws, capsys):
    cdk = FakeCdk()
    assert promote.main(["promote", "--model-name", MODEL, "--version", "2"], clients=aws, runner=cdk) == 0
    (command,) = cdk.commands
    assert command[2:2 + len(STACKS)] == STACKS
    context = _context(command)
    assert context["model_version"] == "2" and context["model_sha256"] == registry.resolve(aws.sagemaker, MODEL, 2).sha256
    assert context["model_data_url"] == f"s3://{BUCKET}/models/{MODEL}/run-2/output/model.tar.gz"
    assert context["model_package_arn"].endswith(f"model-package/{MODEL}/2")
    history = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=f"models/{MODEL}/promotions.json")["Body"].read())
    assert [(e["action"], e["version"]) for e in history["entries"]] == [("promote", 2)]
    assert json.loads(capsys.readouterr().out)["recorded"]["version"] == 2


def test_dry_run_changes_nothing(aws, capsys):
    cdk = FakeCdk()
    assert promote.main(["promote", "--model-name", MODEL, "--version", "1", "--dry-run"], clients=aws, runner=cdk) == 0
    assert cdk.commands == []
    assert json.loads(capsys.readouterr().out)["command"][:3] == ["node_modules/.bin/cdk", "deploy", STACKS[0]]
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"models/{MODEL}/promotions")


def test_only_approved_versions_are_promoted(aws, capsys):
    cdk = FakeCdk()
    assert promote.main(["promote", "--model-name", MODEL, "--version", "3"], clients=aws, runner=cdk) == 1
    assert "version 3 is PendingManualApproval, not Approved: approve it first" in capsys.readouterr().err
    assert promote.main(["promote", "--model-name", MODEL, "--version", "9"], clients=aws, runner=cdk) == 1
    assert "has no version 9" in capsys.readouterr().err
    assert cdk.commands == []


def test_failed_deploy_is_not_recorded(aws, capsys):
    assert promote.main(["promote", "--model-name", MODEL, "--version", "1"], clients=aws, runner=FakeCdk(exit_code=1)) == 1
    assert "cdk deploy failed (exit 1)" in capsys.readouterr().err
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"models/{MODEL}/promotions")


def test_rollback_deploys_the_previous_version_all_at_once(aws, capsys):
    cdk = FakeCdk()
    for version in ("1", "2"):
        assert promote.main(["promote", "--model-name", MODEL, "--version", version], clients=aws, runner=cdk) == 0
    assert promote.main(["rollback", "--model-name", MODEL], clients=aws, runner=cdk) == 0
    context = _context(cdk.commands[-1])
    assert context["model_version"] == "1" and context["canary"] == "AllAtOnce"
    history = promote.load_history(aws.s3, BUCKET, f"models/{MODEL}/promotions.json")
    assert [(e["action"], e["version"]) for e in history.entries] == [("promote", 1), ("promote", 2), ("rollback", 1)]
    assert history.live() == [1]
    capsys.readouterr()
    assert promote.main(["rollback", "--model-name", MODEL, "--canary"], clients=aws, runner=cdk) == 1
    assert "version 1 is the only one promoted" in capsys.readouterr().err


def test_deploy_keeps_the_live_model(aws, capsys):
    cdk = FakeCdk()
    for version in ("1", "2"):
        assert promote.main(["promote", "--model-name", MODEL, "--version", version], clients=aws, runner=cdk) == 0
    assert promote.main(["deploy", "--model-name", MODEL], clients=aws, runner=cdk) == 0
    command = cdk.commands[-1]
    assert command[2] == "--all"
    assert _context(command)["model_version"] == "2" and _context(command)["model_sha256"] == registry.resolve(aws.sagemaker, MODEL, 2).sha256


def test_deploy_before_any_promotion_deploys_no_model(aws, capsys):
    cdk = FakeCdk()
    assert promote.main(["deploy", "--model-name", MODEL], clients=aws, runner=cdk) == 0
    (command,) = cdk.commands
    assert command[:3] == ["node_modules/.bin/cdk", "deploy", "--all"] and _context(command) == {}
    assert promote.main(["deploy", "--model-name", MODEL], clients=aws, runner=FakeCdk(exit_code=2)) == 1
    assert "cdk deploy failed (exit 2)" in capsys.readouterr().err


def test_history_replays_promotions_and_rollbacks_as_a_stack():
    history = promote.History("b", "k", [{"action": a, "version": v} for a, v in
                                        [("promote", 1), ("promote", 2), ("promote", 2), ("promote", 3), ("rollback", 2)]])
    assert history.live() == [1, 2]
    assert history.rollback_target() == 1


def test_concurrent_history_write_is_refused(aws):
    cdk = FakeCdk()
    promote.main(["promote", "--model-name", MODEL, "--version", "1"], clients=aws, runner=cdk)
    stale = promote.load_history(aws.s3, BUCKET, f"models/{MODEL}/promotions.json")
    promote.main(["promote", "--model-name", MODEL, "--version", "2"], clients=aws, runner=cdk)
    stale.entries.append({"action": "promote", "version": 1})
    with pytest.raises(PromotionError, match="changed while this rollout ran"):
        promote.save_history(aws.s3, stale)


@pytest.fixture
def deployed(aws):
    """The serving stack as CloudFormation, Lambda and CodeDeploy show it mid-canary: live on v1, 10 % on v2."""
    role = boto3.client("iam").create_role(RoleName="inference", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    fn = "serverless-mlops-serving-InferenceFunction"
    aws.lambda_.create_function(FunctionName=fn, Role=role, PackageType="Image",
                                Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1"},
                                Environment={"Variables": {"MODEL_VERSION": "1", "MODEL_PACKAGE_ARN": "arn-1"}})
    first = aws.lambda_.publish_version(FunctionName=fn)["Version"]
    aws.lambda_.update_function_configuration(FunctionName=fn, Environment={"Variables": {"MODEL_VERSION": "2", "MODEL_PACKAGE_ARN": "arn-2"}})
    second = aws.lambda_.publish_version(FunctionName=fn)["Version"]
    aws.lambda_.create_alias(FunctionName=fn, Name="live", FunctionVersion=first,
                             RoutingConfig={"AdditionalVersionWeights": {second: 0.1}})
    aws.codedeploy.create_application(applicationName="serving-app", computePlatform="Lambda")
    aws.codedeploy.create_deployment_group(applicationName="serving-app", deploymentGroupName="serving-group",
                                           serviceRoleArn=role, deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent5Minutes")
    deployment = aws.codedeploy.create_deployment(applicationName="serving-app", deploymentGroupName="serving-group",
                                                  revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}})
    template = {"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}}, "Outputs": {
        "FunctionName": {"Value": fn}, "DeploymentApplicationName": {"Value": "serving-app"},
        "DeploymentGroupName": {"Value": "serving-group"}}}
    aws.cloudformation.create_stack(StackName=SERVING, TemplateBody=json.dumps(template))
    promote.main(["promote", "--model-name", MODEL, "--version", "1"], clients=aws, runner=FakeCdk())
    return deployment["deploymentId"]


def test_status_shows_the_live_alias_canary_and_history(aws, deployed, capsys):
    capsys.readouterr()
    assert promote.main(["status", "--model-name", MODEL], clients=aws) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["live"]["primary"] == {"function_version": "1", "model_version": "1", "model_package_arn": "arn-1"}
    assert status["live"]["canary"] == [{"function_version": "2", "model_version": "2", "model_package_arn": "arn-2", "weight": 0.1}]
    assert status["deployments_in_progress"] == [deployed]
    assert status["promoted"] == [1]


def test_status_without_a_deployed_stack_shows_the_history(aws, capsys):
    promote.main(["promote", "--model-name", MODEL, "--version", "2"], clients=aws, runner=FakeCdk())
    capsys.readouterr()
    assert promote.main(["status", "--model-name", MODEL], clients=aws) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["live"] is None and "is not deployed" in status["note"] and status["promoted"] == [2]


class StopStubbed:
    """The moto client for everything but stop_deployment (moto has no StopDeployment), which a Stubber answers."""

    def __init__(self, real, stubbed):
        self.real, self.stubbed = real, stubbed

    def __getattr__(self, name):
        return getattr(self.stubbed if name == "stop_deployment" else self.real, name)


def test_stop_stops_the_running_deployment_with_auto_rollback(aws, deployed, capsys):
    stop_client = boto3.client("codedeploy")
    with Stubber(stop_client) as stub:
        stub.add_response("stop_deployment", {"status": "Pending", "statusMessage": "Stopping"},
                          {"deploymentId": deployed, "autoRollbackEnabled": True})
        aws.codedeploy = StopStubbed(aws.codedeploy, stop_client)
        capsys.readouterr()
        assert promote.main(["rollback", "--model-name", MODEL, "--stop"], clients=aws) == 0
        stub.assert_no_pending_responses()
    assert json.loads(capsys.readouterr().out)["deployments"] == [
        {"deployment_id": deployed, "status": "Pending", "statusMessage": "Stopping"}]


def test_stop_dry_run_lists_the_deployment(aws, deployed, capsys):
    capsys.readouterr()
    assert promote.main(["rollback", "--model-name", MODEL, "--stop", "--dry-run"], clients=aws) == 0
    assert json.loads(capsys.readouterr().out) == {"action": "stop", "deployments": [deployed], "dry_run": True}


def test_stop_without_a_running_deployment(aws, capsys):
    aws.codedeploy.create_application(applicationName="serving-app", computePlatform="Lambda")
    aws.codedeploy.create_deployment_group(applicationName="serving-app", deploymentGroupName="serving-group",
                                           serviceRoleArn="arn:aws:iam::123456789012:role/cd")
    aws.cloudformation.create_stack(StackName=SERVING, TemplateBody=json.dumps({
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"DeploymentApplicationName": {"Value": "serving-app"}, "DeploymentGroupName": {"Value": "serving-group"}}}))
    assert promote.main(["rollback", "--model-name", MODEL, "--stop"], clients=aws) == 1
    assert "no deployment of serving-app/serving-group is in progress" in capsys.readouterr().err


@pytest.mark.parametrize("synthesized", ["default_app", "variant_app"])
def test_rollout_names_are_the_ones_the_app_builds(synthesized, request):
    """The stacks the CLI deploys, the outputs it reads and the alias it inspects exist under those names."""
    app = request.getfixturevalue(synthesized)
    assert promote.stack_names(app.config.project_name) == [app.stacks.serving.stack_name,
                                                            app.stacks.monitoring.stack_name,
                                                            app.stacks.batch.stack_name]
    outputs = app.serving.find_outputs("*")
    for output in (Output.FUNCTION_NAME, Output.DEPLOYMENT_APPLICATION, Output.DEPLOYMENT_GROUP):
        assert output in outputs
    aliases = app.serving.find_resources("AWS::Lambda::Alias")
    assert [a["Properties"]["Name"] for a in aliases.values()] == [names.ALIAS]
    # The context a promotion passes sets exactly these configuration keys.
    assert set(promote.model_context(registry.ModelVersion(
        model_name="m", version=1, arn="arn", approval_status="Approved", model_data_url="s3://b/k",
        sha256="a" * 64, metrics={}))) <= {f.name for f in dataclasses.fields(Config)}


def test_project_name_default_is_cdk_json():
    assert promote.project_name() == json.loads((promote.REPO_ROOT / "cdk.json").read_text())["context"].get(
        "project_name", names.DEFAULT_PROJECT)


def test_the_history_is_the_contracts_one(aws):
    """promote writes what the training pipeline's evaluate step reads (contracts.promotions), no copy of it;
    record_promotion is what the demo calls, and live_entry is what serves."""
    from contracts import promotions

    assert (promote.History, promote.load_history, promote.save_history, promote.PromotionError) == (
        promotions.History, promotions.load_history, promotions.save_history, promotions.PromotionError)
    v1, v2 = (registry.resolve(aws.sagemaker, MODEL, n) for n in (1, 2))
    promotions.record_promotion(aws.s3, MODEL, v1)
    promotions.record_promotion(aws.s3, MODEL, v2)
    promotions.record_promotion(aws.s3, MODEL, v1, action=promotions.ROLLBACK)
    history = promote.load_history(aws.s3, BUCKET, names.promotions_key(MODEL))
    assert history.live() == [1] and history.uri == f"s3://{BUCKET}/models/{MODEL}/promotions.json"
    entry = history.live_entry()
    assert (entry["action"], entry["version"], entry["sha256"], entry["model_data_url"]) == (
        "rollback", 1, v1.sha256, v1.model_data_url)
    assert promotions.History("b", "k").live_entry() is None
