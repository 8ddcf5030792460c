"""Training stack: the state machine's states, training job, catches and retries; its roles; how runs start."""
from __future__ import annotations

import json
import re

import jsonata
import pytest
from aws_cdk.assertions import Match

from tests.stacks.stack_helpers import (
    actions_of,
    as_list,
    flatten,
    function_by_command,
    only,
    role_statements,
    state_machine_definition,
)

pytestmark = pytest.mark.slow

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's TrainingJobName pattern


@pytest.fixture(scope="module")
def definition(default_app):
    return state_machine_definition(default_app.training)


@pytest.fixture(scope="module")
def states(definition):
    return definition["States"]


def path_from(states, start):
    """State names from `start`, following Next (and a Choice's first branch) to an end state."""
    order, name = [], start
    while name:
        order.append(name)
        state = states[name]
        name = state.get("Next") or (state["Choices"][0]["Next"] if state["Type"] == "Choice" else None)
    return order


def test_happy_path_builds_the_data_set_validates_trains_evaluates_then_registers(definition, states):
    assert path_from(states, definition["StartAt"]) == [
        "Prepare", "BuildDataset", "Validate", "Train", "Evaluate", "Passed?", "Register", "NotifyRegistered", "Registered"]
    assert states["Registered"]["Type"] == "Succeed"


def test_rejected_candidate_is_notified_and_ends_as_its_own_success(states):
    choice = states["Passed?"]
    assert choice["Choices"] == [{"Variable": "$.evaluation.passed", "BooleanEquals": True, "Next": "Register"}]
    assert path_from(states, choice["Default"]) == ["NotifyRejected", "Rejected"]
    assert states["NotifyRejected"]["Resource"].endswith(":states:::sns:publish")
    assert states["Rejected"]["Type"] == "Succeed"


def test_training_runs_as_a_sync_job_on_the_validated_split(default_app, states):
    train = states["Train"]
    assert train["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    params = train["Parameters"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in params["InputDataConfig"]}
    assert channels == {
        "train": {"S3Uri.$": "$.validation.train_uri", "S3DataType": "S3Prefix"},
        "test": {"S3Uri.$": "$.validation.test_uri", "S3DataType": "S3Prefix"},
    }
    assert params["OutputDataConfig"] == {"S3OutputPath.$": "$.output_uri"}
    assert params["TrainingJobName.$"] == "$.training_job_name"
    assert params["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 60 * default_app.config.training_max_runtime_minutes}
    assert params["EnableNetworkIsolation"] is True
    # Every hyperparameter is a string the validate step computed (SageMaker takes strings only), the
    # model's choice included: the algorithm, its hyperparameters as one JSON string, the search.
    assert params["HyperParameters"] == {f"{name}.$": f"$.validation.hyperparameters.{name}"
                                         for name in ("target", "model-name", "task", "categorical", "run-id",
                                                      "algorithm", "hyperparameters", "search", "search-seconds",
                                                      # the data set's lineage in brief, for the model's metadata
                                                      "lineage")}
    assert train["ResultSelector"]["model_uri.$"] == "$.ModelArtifacts.S3ModelArtifacts"


def test_training_image_is_the_project_image(default_app, states):
    image = states["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"]
    assert image.endswith(":" + default_app.stacks.storage.image.asset_hash)


def test_steps_pass_the_contracted_fields(states):
    assert states["BuildDataset"]["Parameters"] == {
        "model_name.$": "$.model_name", "run_id.$": "$.run_id", "data_uri.$": "$.data_uri", "target.$": "$.target",
        "task.$": "$.task"}
    assert states["BuildDataset"]["ResultPath"] == "$.dataset"
    assert set(states["Validate"]["Parameters"]) == {
        "model_name.$", "run_id.$", "data_uri.$", "target.$", "task.$", "categorical.$",
        "algorithm.$", "hyperparameters.$", "search_candidates.$", "search_seconds.$", "lineage.$"}
    # the data set the BuildDataset step wrote (or the configured data as it is), and its lineage for the job
    assert states["Validate"]["Parameters"]["data_uri.$"] == "$.dataset.data_uri"
    assert states["Validate"]["Parameters"]["lineage.$"] == "$.dataset.lineage"
    # the model's choice goes to the validate step, which checks it before the training job starts
    assert {k: v for k, v in states["Validate"]["Parameters"].items() if k.startswith(("algorithm", "hyper", "search"))} == {
        "algorithm.$": "$.algorithm", "hyperparameters.$": "$.hyperparameters",
        "search_candidates.$": "$.search_candidates", "search_seconds.$": "$.search_seconds"}
    assert states["Evaluate"]["Parameters"] == {
        "model_name.$": "$.model_name", "run_id.$": "$.run_id",
        "candidate_model_uri.$": "$.training.model_uri", "test_uri.$": "$.validation.test_uri",
        # the recent labelled production rows kept out of training (null when there are none)
        "recent_uri.$": "$.dataset.recent_uri",
        # the run record's
        "data_uri.$": "$.dataset.data_uri", "started_at.$": "$$.Execution.StartTime", "training_job_name.$": "$.training.job_name"}
    assert states["Register"]["Parameters"]["evaluation.$"] == "$.evaluation"


def test_every_failure_is_published_then_fails_the_execution(states):
    tasks = [name for name, s in states.items() if s["Type"] == "Task" and name != "NotifyFailure"]
    assert set(tasks) == {"BuildDataset", "Validate", "Train", "Evaluate", "Register", "NotifyRegistered", "NotifyRejected",
                          "NotifyDataRejected"}
    for name in tasks:
        catch_all = [c for c in states[name]["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure"}], name
    assert states["NotifyFailure"]["Next"] == "PipelineFailed"
    assert states["NotifyFailure"]["Parameters"]["Message"]["error.$"] == "$.error.Error"
    assert states["PipelineFailed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}


def test_bad_data_is_caught_by_name_before_the_catch_all(states):
    catches = states["Validate"]["Catch"]
    assert catches[0] == {"ErrorEquals": ["DataValidationError"], "ResultPath": "$.error", "Next": "NotifyDataRejected"}
    assert path_from(states, "NotifyDataRejected") == ["NotifyDataRejected", "DataRejected"]
    assert states["DataRejected"]["Type"] == "Fail"


def test_transient_errors_are_retried(states):
    for name in ("BuildDataset", "Validate", "Evaluate", "Register"):
        retried = {e for r in states[name]["Retry"] for e in r["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.SdkClientException"} <= retried
        assert "DataValidationError" not in retried
    assert "ThrottlingException" in {e for r in states["Train"]["Retry"] for e in r["ErrorEquals"]}


@pytest.fixture(scope="module")
def prepare(states):
    """The Prepare state's JSONata, runnable here: bucket tokens stand in as literal names."""
    output = states["Prepare"]["Output"]
    assert states["Prepare"]["QueryLanguage"] == "JSONata"
    expression = jsonata.Jsonata(output.removeprefix("{%").removesuffix("%}").replace("<token>", "bucket"))

    def run(execution_input: dict, execution_name: str = "8f14e45f-ceea-467a-9575-5a2c1ea7d2a9") -> dict:
        return expression.evaluate(None, {"states": {"input": execution_input,
                                                    "context": {"Execution": {"Name": execution_name}}}})
    return run


def test_a_bare_start_takes_every_default(prepare):
    args = prepare({})
    assert args["model_name"] == "breast-cancer"
    assert args["data_uri"] == "s3://bucket/datasets/breast-cancer/train.csv"
    assert args["target"] == "diagnosis" and args["task"] is None and args["categorical"] == []
    assert args["run_id"] == "8f14e45f-ceea-467a-9575-5a2c1ea7d2a9"
    assert args["training_job_name"] == "breast-cancer-8f14e45f-ceea-467a-9575-5a2c1ea7d2a9"
    assert args["output_uri"] == "s3://bucket/models/breast-cancer/8f14e45f-ceea-467a-9575-5a2c1ea7d2a9/"
    # the model's choice: cdk.json's (the defaults here), the search off, half the job's time as its budget
    assert (args["algorithm"], args["hyperparameters"]) == ("linear", {})
    assert (args["search_candidates"], args["search_seconds"]) == (0, 1800)


def test_input_fields_override_the_defaults(prepare):
    args = prepare({"data_uri": "s3://bucket/datasets/new.csv", "target": "label", "categorical": ["colour"],
                    "task": "multiclass", "run_id": 42})
    assert args["data_uri"] == "s3://bucket/datasets/new.csv"
    assert (args["target"], args["categorical"], args["task"]) == ("label", ["colour"], "multiclass")
    assert args["run_id"] == "42" and args["training_job_name"] == "breast-cancer-42"


@pytest.mark.parametrize("name", [
    "3cc8a4b8-b5f1-4d62-a4f7-21da3fe2a3b1_2e6b47b1-8c1d-4f57-9a5e-0a3c2d1e4f5a",  # EventBridge-started
    "nightly run #7 (manual)",
    "x" * 80,
    "run_" + "-" * 70 + "_end",
])
def test_training_job_names_are_always_valid(prepare, name):
    job = prepare({}, execution_name=name)["training_job_name"]
    assert JOB_NAME.match(job), job


def test_step_functions_run_the_pipeline_handlers_from_the_image(default_app):
    for step in ("validate", "evaluate", "register"):
        props = function_by_command(default_app.training, f"pipeline.app.{step}_handler")
        assert props["PackageType"] == "Image"
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        assert {"DATA_BUCKET", "ARTIFACTS_BUCKET", "REPORTS_BUCKET", "EVAL_TOLERANCE", "EVAL_FLOOR", "AUTO_APPROVE",
                "POWERTOOLS_SERVICE_NAME"} <= set(env)
        assert env["AUTO_APPROVE"] == "false" and env["EVAL_TOLERANCE"] == "0.01"


def test_state_machine_logs_everything_and_traces(default_app):
    props = only(default_app.training, "AWS::StepFunctions::StateMachine")
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["StateMachineType"] == "STANDARD"


def test_training_job_role_reads_its_split_and_writes_its_model_only(default_app):
    statements = role_statements(default_app.training, "PipelineTrainingJobRole")
    s3 = {a: s for s in statements for a in as_list(s["Action"]) if a.startswith("s3:")}
    assert set(s3) == {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload"}
    assert flatten(s3["s3:GetObject"]["Resource"]).endswith("/splits/breast-cancer/*")
    assert flatten(s3["s3:PutObject"]["Resource"]).endswith("/models/breast-cancer/*")
    assert s3["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["splits/breast-cancer/*"]}}
    assert {"ecr:BatchGetImage", "ecr:GetAuthorizationToken"} <= actions_of(statements)


def test_pipeline_steps_touch_only_their_prefixes(default_app):
    expected = {
        "ValidateStep": {"s3:GetObject": ["/datasets/*"], "s3:PutObject": ["/splits/breast-cancer/*",
                                                                          "/validation/breast-cancer/*",
                                                                          "/runs/breast-cancer/*"]},
        "BuildDatasetStep": {"s3:GetObject": ["/datasets/*", "/capture/breast-cancer/*", "/labels/breast-cancer/*"],
                             "s3:PutObject": ["/datasets/breast-cancer/versions/*"]},
        "EvaluateStep": {"s3:GetObject": ["/splits/breast-cancer/*", "/models/breast-cancer/*",
                                          "/datasets/breast-cancer/versions/*"],
                         "s3:PutObject": ["/evaluation/breast-cancer/*", "/runs/breast-cancer/*"]},
        "RegisterStep": {"s3:GetObject": ["/models/breast-cancer/*", "/runs/breast-cancer/*"],
                         "s3:PutObject": ["/runs/breast-cancer/*"]},
    }
    for role, grants in expected.items():
        statements = role_statements(default_app.training, f"{role}Role")
        for action, suffixes in grants.items():
            resources = [flatten(r) for s in statements if action in as_list(s["Action"]) for r in as_list(s["Resource"])]
            assert sorted(r[r.index("/"):] for r in resources) == sorted(suffixes), (role, action)
        assert "s3:DeleteObject" not in actions_of(statements)


def test_register_step_lists_only_the_run_records(default_app):
    """It reads the run record back to add the registry version: a missing one must be a 404, not a 403."""
    statements = role_statements(default_app.training, "RegisterStepRole")
    listing = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": ["runs/breast-cancer/*"]}}]


def test_registry_access_is_scoped_to_the_model_package_group(default_app):
    statements = role_statements(default_app.training, "RegisterStepRole")
    create = [s for s in statements if "sagemaker:CreateModelPackage" in as_list(s["Action"])]
    assert len(create) == 1
    resources = [flatten(r) for r in as_list(create[0]["Resource"])]
    assert sorted(r.split(":")[-1] for r in resources) == ["model-package-group/breast-cancer",
                                                             "model-package/breast-cancer/*"]


def test_state_machine_role_invokes_only_the_four_steps(default_app):
    statements = role_statements(default_app.training, "PipelineStateMachineRole")
    invoke = [s for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])]
    targets = {json.dumps(r, sort_keys=True) for s in invoke for r in as_list(s["Resource"])}
    assert len(targets) == 8  # four functions, and their versions (<arn>:*)
    for step in ("BuildDatasetStepFunction", "ValidateStepFunction", "EvaluateStepFunction", "RegisterStepFunction"):
        assert sum(f'"{step}' in t for t in targets) == 2, step
    passes = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert passes and all(s["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
                          for s in passes)


def test_a_retraining_event_starts_the_state_machine_with_its_detail(default_app):
    default_app.training.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {"source": ["serverless-mlops"], "detail-type": ["RetrainingRequested"]},
        "Targets": [Match.object_like({"InputPath": "$.detail", "RetryPolicy": {"MaximumRetryAttempts": 3},
                                       "Arn": {"Ref": Match.string_like_regexp("PipelineStateMachine")}})],
    })


def test_notification_topic_is_encrypted_and_ssl_only(default_app):
    topic = only(default_app.training, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic
    assert only(default_app.training, "AWS::KMS::Key")["EnableKeyRotation"] is True
    statements = only(default_app.training, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_the_model_choice_is_an_execution_input_override(prepare):
    args = prepare({"algorithm": "random_forest", "hyperparameters": {"n_estimators": 300},
                    "search_candidates": 8, "search_seconds": 600})
    assert (args["algorithm"], args["hyperparameters"]) == ("random_forest", {"n_estimators": 300})
    assert (args["search_candidates"], args["search_seconds"]) == (8, 600)


@pytest.fixture(scope="module")
def variant_prepare(variant_app):
    output = state_machine_definition(variant_app.training)["States"]["Prepare"]["Output"]
    expression = jsonata.Jsonata(output.removeprefix("{%").removesuffix("%}").replace("<token>", "bucket"))
    return lambda execution_input: expression.evaluate(None, {"states": {
        "input": execution_input, "context": {"Execution": {"Name": "run-1"}}}})


def test_configured_hyperparameters_follow_their_algorithm(variant_prepare):
    """cdk.json's hyperparameters are for cdk.json's algorithm: another algorithm in the input starts from its defaults."""
    configured = {"max_iter": 300, "learning_rate": 0.05}
    args = variant_prepare({})
    assert (args["algorithm"], args["hyperparameters"]) == ("hist_gradient_boosting", configured)
    assert (args["search_candidates"], args["search_seconds"]) == (8, 900)
    assert variant_prepare({"search_candidates": 0})["hyperparameters"] == configured
    assert variant_prepare({"algorithm": "hist_gradient_boosting"})["hyperparameters"] == configured
    assert variant_prepare({"algorithm": "random_forest"})["hyperparameters"] == {}
    assert variant_prepare({"algorithm": "random_forest", "hyperparameters": {"max_depth": 8}})["hyperparameters"] == {
        "max_depth": 8}
    assert variant_prepare({"hyperparameters": {}})["hyperparameters"] == {}  # the input's own, even empty


def test_variant_configuration_reaches_the_pipeline(variant_app):
    states = state_machine_definition(variant_app.training)
    output = states["States"]["Prepare"]["Output"]
    assert '"task": "binary"' in output and '"categorical": ["mean radius", "texture"]' in output
    variant_app.training.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "ops@example.com"})


def test_the_build_step_reads_production_rows_of_this_model_only(default_app):
    """Read and list its model's capture and labels prefixes and the data sets (the configured CSV, wherever the
    input's data_uri puts it, as the validate step reads it); write only a new data set version; no registry."""
    statements = role_statements(default_app.training, "BuildDatasetStepRole")
    listing = sorted(s["Condition"]["StringLike"]["s3:prefix"][0] for s in statements
                     if "s3:ListBucket" in as_list(s["Action"]))
    assert listing == ["capture/breast-cancer/*", "datasets/*", "labels/breast-cancer/*"]
    assert not [a for a in actions_of(statements) if a.startswith("sagemaker:")]
    assert "s3:DeleteObject" not in actions_of(statements)


def test_the_evaluate_step_lists_only_the_promotion_history(default_app):
    """It reads models/<model>/promotions.json (what is live): a model never promoted must be a 404, not a 403."""
    statements = role_statements(default_app.training, "EvaluateStepRole")
    listing = [s["Condition"] for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    assert sorted(c["StringLike"]["s3:prefix"][0] for c in listing) == [
        "models/breast-cancer/promotions.json*", "splits/breast-cancer/*"]


@pytest.mark.parametrize(("app_name", "expected"), [
    ("default_app", {"PRODUCTION_LABELS": "true", "RECENT_SHARE": "0.2", "MODEL_QUALITY_HORIZON_DAYS": "14"}),
    ("variant_app", {"PRODUCTION_LABELS": "false", "RECENT_SHARE": "0.3", "MODEL_QUALITY_HORIZON_DAYS": "30"}),
])
def test_the_build_step_is_configured_from_the_retraining_settings(request, app_name, expected):
    props = function_by_command(request.getfixturevalue(app_name).training,
                                "pipeline.app.build_dataset_handler")
    env = props["Environment"]["Variables"]
    assert {k: env[k] for k in expected} == expected
    assert set(env) == {"DATA_BUCKET", "CAPTURE_BUCKET", "PRODUCTION_LABELS", "RECENT_SHARE",
                        "MODEL_QUALITY_HORIZON_DAYS", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
    assert props["PackageType"] == "Image" and props["Timeout"] == 900
