"""The drift check's pooling settings and its fan-out: count groups on a Distributed Map → merge, or release and fail."""
from __future__ import annotations

import json

import pytest

from contracts import metric_names, names
from tests.stacks.stack_helpers import (
    actions_of,
    as_list,
    dashboard_body,
    definition_of,
    function_by_command,
    only,
    resources,
    role_statements,
    s3_grants,
    with_refs,
)

pytestmark = pytest.mark.slow

MODEL = "breast-cancer"
FANOUT = f"drift/{MODEL}/fanout/"
RESULTS = f"drift/{MODEL}/fanout-results/"
CHECK, COUNT = "drift_check.app.handler", "drift_check.app.count_handler"


@pytest.fixture(scope="module")
def states(default_app):
    return definition_of(default_app.monitoring)["States"]


def function_id(template, command: str) -> str:
    (found,) = [lid for lid, f in resources(template, "AWS::Lambda::Function").items()
                if f["Properties"].get("ImageConfig", {}).get("Command") == [command]]
    return found


def machine_arn(project: str) -> str:
    return (f"arn:<Ref AWS::Partition>:states:<Ref AWS::Region>:<Ref AWS::AccountId>:stateMachine:"
            f"{names.drift_fanout_state_machine(project)}")


def test_groups_are_counted_then_merged_by_the_drift_check(default_app, states):
    definition = definition_of(default_app.monitoring)
    assert definition["StartAt"] == "CountGroups"
    assert states["CountGroups"]["Next"] == "Merge" and states["Merge"]["Next"] == "Reported"
    assert states["Reported"] == {"Type": "Succeed", "OutputPath": "$.report"}
    merge = states["Merge"]
    assert merge["Resource"] == f"<{function_id(default_app.monitoring, CHECK)}.Arn>"
    assert merge["Parameters"] == {"fanout": {"run_id.$": "$.run_id", "manifest_key.$": "$.manifest_key"}}
    assert merge["ResultPath"] == "$.report"
    assert definition["TimeoutSeconds"] == 120 * 60, "the lock the drift check honours expires with the execution"


def test_the_map_reads_the_manifest_the_drift_check_wrote_and_batches_with_the_run(default_app, states):
    count = states["CountGroups"]
    assert count["ItemReader"]["Parameters"] == {"Bucket": "<ReportsBucketName>", "Key.$": "$.manifest_key"}
    assert count["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert count["ItemBatcher"] == {"MaxItemsPerBatch": 1,
                                    "BatchInput": {"run_id.$": "$.run_id", "model_sha256.$": "$.model_sha256"}}
    assert count["MaxConcurrency"] == 20 and count.get("ToleratedFailurePercentage", 0) == 0
    assert count["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert count["ResultWriter"]["Parameters"] == {"Bucket": "<ReportsBucketName>", "Prefix": RESULTS}
    processor = count["ItemProcessor"]
    child = processor["States"][processor["StartAt"]]
    assert child["Resource"] == f"<{function_id(default_app.monitoring, COUNT)}.Arn>"
    assert child["Retry"][-1]["ErrorEquals"] == ["States.ALL"]


def test_a_failed_map_or_merge_releases_the_lock_then_fails(default_app, states):
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Release"}]
    assert states["CountGroups"]["Catch"] == catch and states["Merge"]["Catch"] == catch
    release = states["Release"]
    assert release["Resource"] == f"<{function_id(default_app.monitoring, CHECK)}.Arn>"
    assert release["Parameters"] == {"fanout": {"run_id.$": "$.run_id", "manifest_key.$": "$.manifest_key"},
                                     "failed": True, "error.$": "$.error"}
    assert release["Next"] == "DriftFanoutFailed" and states["DriftFanoutFailed"]["Type"] == "Fail"
    for name in ("Merge", "Release"):  # the drift check runs one at a time: wait for a scheduled run to end
        retried = {e for r in states[name]["Retry"] for e in r["ErrorEquals"]}
        assert "Lambda.TooManyRequestsException" in retried and "States.ALL" not in retried


def test_the_state_machine_is_named_for_the_drift_check_to_start_it(default_app):
    props = only(default_app.monitoring, "AWS::StepFunctions::StateMachine")
    assert props["StateMachineName"] == "serverless-mlops-drift-fanout"
    assert props["TracingConfiguration"] == {"Enabled": True} and props["LoggingConfiguration"]["Level"] == "ALL"
    check = function_by_command(default_app.monitoring, CHECK)
    env = check["Environment"]["Variables"]
    assert with_refs(env["DRIFT_FANOUT_STATE_MACHINE_ARN"]) == machine_arn("serverless-mlops")
    assert (env["DRIFT_FANOUT_MB"], env["DRIFT_FANOUT_GROUP_MB"], env["DRIFT_FANOUT_TIMEOUT_MINUTES"]) == ("4096", "1024", "120")
    assert env["DRIFT_MAX_WINDOW_HOURS"] == "168" and check["MemorySize"] == 2048
    starts = [s for s in role_statements(default_app.monitoring, "DriftCheckRole")
              if "states:StartExecution" in as_list(s["Action"])]
    assert [with_refs(s["Resource"]) for s in starts] == [machine_arn("serverless-mlops")]


def test_the_state_machine_is_a_stack_output(default_app):
    outputs = default_app.monitoring.find_outputs("DriftFanoutStateMachineArn")
    (output,) = outputs.values()
    assert with_refs(output["Value"]).startswith("<Ref DriftFanoutStateMachine")


def test_children_count_with_the_drift_checks_settings_and_write_only_their_counts(default_app):
    template = default_app.monitoring
    count = function_by_command(template, COUNT)
    check_env = function_by_command(template, CHECK)["Environment"]["Variables"]
    env = count["Environment"]["Variables"]
    assert count["Timeout"] == 900 and count["MemorySize"] == 2048
    assert "ReservedConcurrentExecutions" not in count, "children count side by side"
    assert "DRIFT_FANOUT_STATE_MACHINE_ARN" not in env
    shared = ("CAPTURE_BUCKET", "REPORTS_BUCKET", "MODEL_NAME", "MODEL_DATA_URL", "MODEL_SHA256", "MIN_ROWS")
    assert {k: env[k] for k in shared} == {k: check_env[k] for k in shared}
    statements = role_statements(template, "DriftFanoutCountFunctionRole")
    assert s3_grants(statements) == {
        "s3:GetObject": {f"<CaptureBucketArn>/capture/{MODEL}/*", f"<ArtifactsBucketArn>/models/{MODEL}/*"},
        "s3:PutObject": {f"<ReportsBucketArn>/{FANOUT}*"}, "s3:AbortMultipartUpload": {f"<ReportsBucketArn>/{FANOUT}*"},
    }
    assert not [a for a in actions_of(statements) if a.startswith(("states:", "sagemaker:", "cloudwatch:"))]


def test_the_state_machine_role_invokes_the_two_functions_and_touches_only_fanout_keys(default_app):
    template = default_app.monitoring
    statements = role_statements(template, "DriftFanoutStateMachineRole")
    invoke = {with_refs(r) for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])
              for r in as_list(s["Resource"])}
    expected = {f"<{function_id(template, c)}.Arn>" for c in (CHECK, COUNT)}
    assert invoke == expected | {f"{arn}:*" for arn in expected}
    results = f"<ReportsBucketArn>/{RESULTS}*"
    assert s3_grants(statements) == {
        "s3:GetObject": {f"<ReportsBucketArn>/{FANOUT}*", results},
        "s3:PutObject": {results}, "s3:AbortMultipartUpload": {results}, "s3:ListMultipartUploadParts": {results},
    }


def test_variant_configuration_reaches_the_drift_check_and_the_fan_out(variant_app):
    template = variant_app.monitoring
    env = function_by_command(template, CHECK)["Environment"]["Variables"]
    assert (env["DRIFT_MAX_WINDOW_HOURS"], env["DRIFT_FANOUT_MB"], env["DRIFT_FANOUT_GROUP_MB"],
            env["DRIFT_FANOUT_TIMEOUT_MINUTES"]) == ("48", "8192", "512", "60")
    assert with_refs(env["DRIFT_FANOUT_STATE_MACHINE_ARN"]) == machine_arn("mlops-variant")
    assert function_by_command(template, CHECK)["MemorySize"] == 3008
    assert function_by_command(template, COUNT)["MemorySize"] == 3008
    definition = definition_of(template)
    assert definition["States"]["CountGroups"]["MaxConcurrency"] == 50 and definition["TimeoutSeconds"] == 3600
    assert only(template, "AWS::StepFunctions::StateMachine")["StateMachineName"] == "mlops-variant-drift-fanout"


def test_the_dashboard_shows_fan_outs_and_runs_without_a_verdict(default_app):
    widgets = {w["properties"].get("title"): w for w in dashboard_body(default_app.monitoring)["widgets"]}
    runs = widgets["Drift check runs (and fan-outs); rows checked, runs without a verdict (pooling)"]
    metrics = runs["properties"]["metrics"]
    fanouts = [m for m in metrics if "ExecutionsStarted" in m or "ExecutionsFailed" in m]
    assert len(fanouts) == 2 and all(m[0] == "AWS/States" for m in fanouts)
    assert f'MetricName=\\"{metric_names.DRIFT_INSUFFICIENT_DATA}\\"' in json.dumps(runs)
