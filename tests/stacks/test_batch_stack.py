"""Batch stack: plan → Distributed Map over the manifest → summarize; the functions, their grants, the upload trigger."""
from __future__ import annotations

import pytest

from contracts import names
from contracts.events import batch_upload_pattern
from contracts.names import Output
from tests.stacks.stack_helpers import (
    actions_of,
    as_list,
    definition_of,
    flatten,
    function_by_command,
    only,
    resources,
    role_statements,
    s3_grants,
    with_refs,
)

pytestmark = pytest.mark.slow

MODEL = "breast-cancer"
OUTPUT = f"batch/{MODEL}/output/"
HANDLERS = ("plan", "score", "summarize")


@pytest.fixture(scope="module")
def states(default_app):
    return definition_of(default_app.batch)["States"]


@pytest.fixture(scope="module")
def variant_states(variant_app):
    return definition_of(variant_app.batch)["States"]


def function_id(template, handler: str) -> str:
    """Logical id of the function running batch_scoring.app.<handler>_handler."""
    command = [f"batch_scoring.app.{handler}_handler"]
    (found,) = [lid for lid, f in resources(template, "AWS::Lambda::Function").items()
                if f["Properties"].get("ImageConfig", {}).get("Command") == command]
    return found




# ------------------------------------------------------------------ the state machine


def test_a_job_plans_scores_the_parts_then_summarizes(default_app, states):
    definition = definition_of(default_app.batch)
    order, name = [], definition["StartAt"]
    while name:
        order.append(name)
        state = states[name]
        name = state.get("Next") or (state["Default"] if state["Type"] == "Choice" else None)
    assert order == ["Job", "Plan", "Anything to score?", "ScoreParts", "Summarize", "Failed?", "Scored"]
    assert definition["TimeoutSeconds"] == 24 * 3600


def test_a_plan_with_no_parts_ends_the_job(states):
    (when,) = states["Anything to score?"]["Choices"]
    assert when == {"Variable": "$.plan.parts", "NumericEquals": 0, "Next": "NothingToScore"}
    assert states["NothingToScore"] == {"Type": "Succeed", "OutputPath": "$.plan",
                                        "Comment": states["NothingToScore"]["Comment"]}


def test_plan_gets_the_whole_execution_input_and_the_execution_name(default_app, states):
    job = states["Job"]
    assert (job["Type"], job["Parameters"], job["Next"]) == ("Pass", {"input.$": "$"}, "Plan")
    plan = states["Plan"]
    assert plan["Resource"] == f"<{function_id(default_app.batch, 'plan')}.Arn>"
    assert plan["Parameters"] == {"input.$": "$.input", "execution_name.$": "$$.Execution.Name"}
    assert plan["ResultPath"] == "$.plan"


def test_parts_are_read_from_the_manifest_the_plan_wrote(states):
    reader = states["ScoreParts"]["ItemReader"]
    assert reader["Resource"] == "arn:<Ref AWS::Partition>:states:::s3:getObject"
    assert reader["ReaderConfig"] == {"InputType": "JSON"}
    assert reader["Parameters"] == {"Bucket": "<DataBucketName>", "Key.$": "$.plan.manifest_key"}


def test_map_batches_parts_with_the_job_spec_and_runs_standard_children(states):
    score_parts = states["ScoreParts"]
    assert score_parts["Type"] == "Map"
    assert score_parts["ItemBatcher"] == {"MaxItemsPerBatch": 1, "BatchInput": {"spec.$": "$.plan.spec"}}
    assert score_parts["MaxConcurrency"] == 100
    assert score_parts.get("ToleratedFailurePercentage", 0) == 0
    assert score_parts["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    # The plan stays in the state for the summary; the map's own output (where its results went) is dropped.
    assert score_parts["ResultPath"] is None


def test_child_results_are_written_under_the_map_results_prefix(states):
    writer = states["ScoreParts"]["ResultWriter"]
    assert writer["Resource"] == "arn:<Ref AWS::Partition>:states:::s3:putObject"
    assert writer["Parameters"] == {"Bucket": "<DataBucketName>", "Prefix": names.batch_map_results_prefix(MODEL)}
    assert names.batch_map_results_prefix(MODEL) == f"batch/{MODEL}/map-results/"


def test_each_child_scores_its_whole_batch_and_is_retried_on_any_error(default_app, states):
    processor = states["ScoreParts"]["ItemProcessor"]
    assert list(processor["States"]) == [processor["StartAt"]]
    child = processor["States"][processor["StartAt"]]
    assert child["Type"] == "Task" and child["End"] is True
    assert child["Resource"] == f"<{function_id(default_app.batch, 'score')}.Arn>"
    assert "Parameters" not in child and "ResultPath" not in child  # the event is {"Items": [...], "BatchInput": {...}}
    retry_all = child["Retry"][-1]  # States.ALL must be the last retrier
    assert retry_all == {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 3, "BackoffRate": 2}


def test_the_summary_is_written_even_when_the_map_fails(default_app, states):
    assert states["ScoreParts"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.map_error", "Next": "Summarize"}]
    summarize = states["Summarize"]
    assert summarize["Resource"] == f"<{function_id(default_app.batch, 'summarize')}.Arn>"
    assert "Parameters" not in summarize  # the whole state: input, plan and map_error if any
    assert summarize["ResultPath"] == "$.summary"


def test_a_failed_summary_fails_the_execution_and_any_other_returns_it(states):
    choice = states["Failed?"]
    assert choice["Choices"] == [{"Variable": "$.summary.status", "StringEquals": "failed", "Next": "BatchJobFailed"}]
    assert choice["Default"] == "Scored"
    assert states["BatchJobFailed"] == {"Type": "Fail", "Error": "BatchJobFailed",
                                        "Cause": "a part could not be scored: see the job summary"}
    assert states["Scored"]["Type"] == "Succeed" and states["Scored"]["OutputPath"] == "$.summary"


def test_plan_and_summary_retry_lambda_transient_errors(states):
    for name in ("Plan", "Summarize"):
        retried = {e for r in states[name]["Retry"] for e in r["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.SdkClientException"} <= retried
        assert "States.ALL" not in retried


def test_variant_configuration_reaches_the_map(variant_states):
    score_parts = variant_states["ScoreParts"]
    assert score_parts["MaxConcurrency"] == 250
    assert score_parts["ItemBatcher"]["MaxItemsPerBatch"] == 4
    assert score_parts["ToleratedFailurePercentage"] == 12.5


def test_state_machine_is_named_traced_and_logs_everything(default_app):
    props = only(default_app.batch, "AWS::StepFunctions::StateMachine")
    assert props["StateMachineName"] == "serverless-mlops-batch"
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    log_groups = {g["Properties"].get("LogGroupName") for g in resources(default_app.batch, "AWS::Logs::LogGroup").values()}
    assert "/aws/vendedlogs/states/serverless-mlops-batch" in log_groups


# ------------------------------------------------------------------ the functions


def test_three_functions_run_the_batch_handlers_from_the_image(default_app):
    sizes = {"plan": (2048, 900), "score": (4096, 900), "summarize": (1024, 300)}
    for handler, (memory, timeout) in sizes.items():
        props = function_by_command(default_app.batch, f"batch_scoring.app.{handler}_handler")
        assert props["PackageType"] == "Image" and props["TracingConfig"] == {"Mode": "Active"}
        assert (props["MemorySize"], props["Timeout"]) == (memory, timeout), handler
    score = function_by_command(default_app.batch, "batch_scoring.app.score_handler")
    assert score["EphemeralStorage"] == {"Size": 4096}


def test_function_environment_follows_the_batch_contract(default_app):
    for handler in HANDLERS:
        env = function_by_command(default_app.batch, f"batch_scoring.app.{handler}_handler")["Environment"]["Variables"]
        assert {k: with_refs(v) for k, v in env.items() if k.endswith("_BUCKET")} == {
            "DATA_BUCKET": "<DataBucketName>", "ARTIFACTS_BUCKET": "<ArtifactsBucketName>",
            "CAPTURE_BUCKET": "<CaptureBucketName>"}
        assert env["MODEL_NAME"] == MODEL
        assert {k: env[k] for k in ("MODEL_DATA_URL", "MODEL_SHA256", "MODEL_VERSION", "MODEL_PACKAGE_ARN")} == {
            "MODEL_DATA_URL": "", "MODEL_SHA256": "", "MODEL_VERSION": "", "MODEL_PACKAGE_ARN": ""}
        assert (env["BATCH_PART_MB"], env["BATCH_FORMAT"], env["BATCH_CAPTURE_SAMPLE_RATE"]) == ("64", "jsonl", "0.0")
        assert env["POWERTOOLS_SERVICE_NAME"] == f"batch-{handler}"


def test_variant_configuration_reaches_the_functions(variant_app):
    config = variant_app.config
    for handler in HANDLERS:
        env = function_by_command(variant_app.batch, f"batch_scoring.app.{handler}_handler")["Environment"]["Variables"]
        assert (env["BATCH_PART_MB"], env["BATCH_FORMAT"], env["BATCH_CAPTURE_SAMPLE_RATE"]) == ("16", "csv", "0.05")
        assert (env["MODEL_DATA_URL"], env["MODEL_SHA256"]) == (config.model_data_url, config.model_sha256)
        assert (env["MODEL_VERSION"], env["MODEL_PACKAGE_ARN"]) == ("3", config.model_package_arn)
    assert function_by_command(variant_app.batch, "batch_scoring.app.score_handler")["MemorySize"] == 8192


# ------------------------------------------------------------------ least privilege


def test_plan_reads_the_input_and_datasets_and_writes_only_the_output_prefix(default_app):
    statements = role_statements(default_app.batch, "ScoringPlanFunctionRole")
    assert s3_grants(statements) == {
        "s3:GetObject": {f"<DataBucketArn>/batch/{MODEL}/input/*", "<DataBucketArn>/datasets/*"},
        "s3:ListBucket": {f"<DataBucketArn>?prefix=batch/{MODEL}/input/*", "<DataBucketArn>?prefix=datasets/*"},
        "s3:PutObject": {f"<DataBucketArn>/{OUTPUT}*"},
        "s3:AbortMultipartUpload": {f"<DataBucketArn>/{OUTPUT}*"},
    }


def test_plan_reads_only_this_models_registry_entries(default_app):
    statements = role_statements(default_app.batch, "ScoringPlanFunctionRole")
    sagemaker = {a for a in actions_of(statements) if a.startswith("sagemaker:")}
    assert sagemaker == {"sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"}
    (describe,) = [s for s in statements if "sagemaker:DescribeModelPackage" in as_list(s["Action"])]
    assert sorted(flatten(r).split(":")[-1] for r in as_list(describe["Resource"])) == [
        f"model-package-group/{MODEL}", f"model-package/{MODEL}/*"]


def test_score_writes_and_deletes_only_under_the_output_prefix(default_app):
    grants = s3_grants(role_statements(default_app.batch, "ScoringScoreFunctionRole"))
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
        assert grants[action] == {f"<DataBucketArn>/{OUTPUT}*"}, action
    assert grants["s3:GetObject"] == {
        f"<DataBucketArn>/batch/{MODEL}/input/*", "<DataBucketArn>/datasets/*", f"<DataBucketArn>/{OUTPUT}*",
        f"<ArtifactsBucketArn>/models/{MODEL}/*"}
    assert "s3:ListBucket" not in grants  # the parts name their keys


def test_score_writes_the_capture_sample_only_when_sampling(default_app, variant_app):
    assert not [r for r in s3_grants(role_statements(default_app.batch, "ScoringScoreFunctionRole"))["s3:PutObject"]
                if "Capture" in r]
    puts = s3_grants(role_statements(variant_app.batch, "ScoringScoreFunctionRole"))["s3:PutObject"]
    assert puts == {f"<DataBucketArn>/{OUTPUT}*", f"<CaptureBucketArn>/capture/{MODEL}/*"}


def test_summarize_works_only_under_the_output_prefix(default_app):
    grants = s3_grants(role_statements(default_app.batch, "ScoringSummarizeFunctionRole"))
    assert grants == {
        **{a: {f"<DataBucketArn>/{OUTPUT}*"} for a in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload",
                                                       "s3:DeleteObject")},
        "s3:ListBucket": {f"<DataBucketArn>?prefix={OUTPUT}*"},
    }
    assert not [a for a in actions_of(role_statements(default_app.batch, "ScoringSummarizeFunctionRole"))
                if a.startswith(("sagemaker:", "cloudwatch:"))]  # metrics go out as EMF log lines


def test_state_machine_role_invokes_the_three_functions_reads_manifests_and_writes_map_results(default_app):
    template = default_app.batch
    statements = role_statements(template, "ScoringStateMachineRole")
    invoke = {with_refs(r) for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])
              for r in as_list(s["Resource"])}
    expected = {f"<{function_id(template, h)}.Arn>" for h in HANDLERS}
    assert invoke == expected | {f"{arn}:*" for arn in expected}
    grants = s3_grants(statements)
    results = f"<DataBucketArn>/batch/{MODEL}/map-results/*"
    assert grants == {
        "s3:GetObject": {f"<DataBucketArn>/{OUTPUT}*", results},
        "s3:PutObject": {results}, "s3:AbortMultipartUpload": {results}, "s3:ListMultipartUploadParts": {results},
    }
    starts = [s for s in statements if "states:StartExecution" in as_list(s["Action"])]
    # The Distributed Map starts its child executions: of this state machine only.
    assert starts and all(with_refs(s["Resource"]).startswith("<Ref ScoringStateMachine") for s in starts)


# ------------------------------------------------------------------ trigger and outputs


def test_a_data_file_in_a_job_folder_starts_a_job_on_that_object(default_app):
    rule = only(default_app.batch, "AWS::Events::Rule")
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert [with_refs(n) for n in pattern["detail"]["bucket"]["name"]] == ["<DataBucketName>"]
    # The pattern the local loop matches on moto's EventBridge (tests/contracts/test_events.py matches it too).
    assert pattern == batch_upload_pattern(pattern["detail"]["bucket"]["name"][0], MODEL)
    assert {"wildcard": f"{names.batch_input_prefix(MODEL)}*/*.csv.gz"} in pattern["detail"]["object"]["key"]
    (target,) = rule["Targets"]
    assert with_refs(target["Arn"]).startswith("<Ref ScoringStateMachine")
    assert target["InputTransformer"] == {"InputPathsMap": {"detail-object-key": "$.detail.object.key"},
                                          "InputTemplate": '{"object_key":<detail-object-key>}'}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3


def test_no_trigger_when_upload_trigger_is_off(variant_app):
    assert not resources(variant_app.batch, "AWS::Events::Rule")


def test_the_data_bucket_sends_events_to_eventbridge(default_app):
    notified = [lid for lid, b in resources(default_app.storage, "AWS::S3::Bucket").items()
                if b["Properties"].get("NotificationConfiguration")]
    assert len(notified) == 1 and notified[0].startswith("Data")
    config = resources(default_app.storage, "AWS::S3::Bucket")[notified[0]]["Properties"]["NotificationConfiguration"]
    assert config == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert not resources(default_app.storage, "Custom::S3BucketNotifications")


def test_outputs_name_the_state_machine_and_the_input_location(default_app):
    outputs = default_app.batch.find_outputs("*")
    assert with_refs(outputs[Output.BATCH_STATE_MACHINE_ARN]["Value"]).startswith("<Ref ScoringStateMachine")
    assert with_refs(outputs[Output.BATCH_INPUT_URI]["Value"]) == f"s3://<DataBucketName>/batch/{MODEL}/input/"


def test_batch_stack_deploys_after_storage_and_is_named_by_the_contract(default_app):
    stack = default_app.stacks.batch
    assert stack.stack_name == names.stack_name(default_app.config.project_name, names.BATCH_SCORING)
    assert default_app.stacks.storage in stack.dependencies
    assert not resources(default_app.batch, "AWS::S3::Bucket")
