"""High traffic: a window too big for one run is fanned out over a Distributed Map and merged into the same report.

The state machine is played here as Step Functions runs it: the map's ItemReader reads the manifest the
scheduled run wrote, its ItemBatcher hands groups with the execution's input as BatchInput to
count_handler, then the merge step (or, after a failure, the release step) calls the drift check.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contracts import metric_names as mn
from contracts import names
from drift_check import fanout
from drift_check.window_check import run_check
from tests.drift_check.drift_helpers import (
    PREFIX,
    FakeContext,
    capture_lines,
    emf_blobs,
    make_columns,
    put_capture,
    run,
    stored_report,
)

ROLE = "arn:aws:iam::123456789012:role/drift-fanout"


@pytest.fixture
def machine(aws, monkeypatch):
    """A state machine on moto (it records executions, the test plays them) and the drift check's fan-out settings."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(name="serverless-mlops-drift-fanout", roleArn=ROLE,
                                   definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))[
        "stateMachineArn"]
    monkeypatch.setattr(aws.app, "sfn", sfn)
    monkeypatch.setenv("DRIFT_FANOUT_STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("DRIFT_FANOUT_MB", str(10_000 / (1 << 20)))  # windows over 10 kB fan out
    monkeypatch.setenv("DRIFT_FANOUT_GROUP_MB", str(6_000 / (1 << 20)))  # two files per child
    return sfn


@pytest.fixture
def eight_files(aws) -> None:
    """8 gzip files of 150 drifted rows (~2.6 kB each), two malformed lines and one unseen colour among them."""
    lines = capture_lines(make_columns(np.random.default_rng(3), 1200, shift=1.0))
    odd = [b"not json\n", b'{"features": {"x": 1.0, "n": 2, "color": "purple"}, "prediction": "yes"}\n']
    for i in range(8):
        put_capture(aws.s3, f"part-{i}.gz", lines[i * 150:(i + 1) * 150] + (odd if i in (2, 5) else []))


def play(aws, sfn, execution_arn: str, items_per_child: int = 1, fail_group: int | None = None) -> dict:
    """Run the execution as Step Functions would; returns what the merge (or release) step answered."""
    request = json.loads(sfn.describe_execution(executionArn=execution_arn)["input"])
    manifest = json.loads(aws.s3.get_object(Bucket="reports", Key=request["manifest_key"])["Body"].read())
    batch_input = {"run_id": request["run_id"], "model_sha256": request["model_sha256"]}
    step = {"run_id": request["run_id"], "manifest_key": request["manifest_key"]}
    for start in range(0, len(manifest), items_per_child):
        items = manifest[start:start + items_per_child]
        if fail_group is not None and fail_group in [item["group"] for item in items]:
            error = {"Error": "States.TaskFailed", "Cause": "a child failed after its retries"}
            return aws.app.handler({"fanout": step, "failed": True, "error": error}, FakeContext())
        aws.app.count_handler({"Items": items, "BatchInput": batch_input}, FakeContext())
    return aws.app.handler({"fanout": step}, FakeContext())


MOMENTS = ("mean", "std")


def moments(totals: dict) -> list[float]:
    """Pops the float moments out of `totals` (they are compared with a tolerance)."""
    return [summary.pop(m) for _, summary, *_ in totals["features"].values() for m in MOMENTS if m in summary]


def totals(report: dict) -> dict:
    return {
        "rows": (report["rows_checked"], report["rows_rejected"], report["reject_reasons"], report["model_versions"]),
        "features": {name: (f["histogram"], f["current"], f.get("p_value"), f.get("psi"))
                     for name, f in report["features"].items()},
        "prediction": report["prediction"]["histogram"],
        "quality": report["quality"],
        "verdict": (report["status"], report["drifted_features"], report["window"]["files"]),
    }


def single_run_totals(aws, scheduled_event, monkeypatch) -> dict:
    aws.s3.delete_object(Bucket="reports", Key=names.drift_checkpoint_key("churn"))
    monkeypatch.setenv("DRIFT_FANOUT_MB", "0")
    result = run(aws, scheduled_event)
    assert result["status"] == "drift"
    return totals(stored_report(aws.s3, result["report_uri"]))


@pytest.mark.parametrize("items_per_child", [1, 3])
def test_fan_out_writes_the_report_a_single_run_writes(aws, machine, scheduled_event, eight_files, monkeypatch,
                                                       capsys, items_per_child):
    started = run(aws, scheduled_event)
    assert started["status"] == "fanned_out" and started["files"] == 8 and started["groups"] == 4
    assert "report_uri" not in started and not emf_blobs(capsys)  # no verdict yet: the merge publishes it

    merged = play(aws, machine, started["execution_arn"], items_per_child)
    assert merged["status"] == "drift" and merged["rows_checked"] == 1202 and merged["rows_rejected"] == 2
    fanned = totals(stored_report(aws.s3, merged["report_uri"]))
    blob = next(b for b in emf_blobs(capsys) if mn.DRIFT_DATASET in b)
    assert blob[mn.DRIFT_DATASET] == [1.0] and blob[mn.DRIFT_ROWS_CHECKED] == [1202.0]
    assert json.loads(aws.s3.get_object(Bucket="reports", Key=names.drift_checkpoint_key("churn"))["Body"].read())[
        "fanout"] is None
    assert run(aws, scheduled_event)["status"] == "no_data", "the merge moved the cursor past every planned file"

    single = single_run_totals(aws, scheduled_event, monkeypatch)
    # Counts (so every test, p-value and PSI) add up exactly; mean and std are float sums added in another order.
    assert moments(fanned) == pytest.approx(moments(single), rel=1e-12)
    assert fanned == single


def test_scheduled_runs_leave_a_window_in_flight_alone(aws, machine, scheduled_event, eight_files):
    started = run(aws, scheduled_event)
    busy = run(aws, scheduled_event)
    assert busy["status"] == "fanout_in_progress" and busy["run_id"] == started["run_id"]
    assert len(machine.list_executions(stateMachineArn=started["execution_arn"].rsplit(":", 1)[0].replace(
        ":execution:", ":stateMachine:"))["executions"]) == 1
    put_capture(aws.s3, "late.gz", capture_lines(make_columns(np.random.default_rng(4), 100)))
    merged = play(aws, machine, started["execution_arn"])
    assert merged["rows_checked"] == 1202, "a file that landed after the plan waits for the next run"
    assert run(aws, scheduled_event)["rows_checked"] == 100


def test_a_failed_child_releases_the_window_for_the_next_run(aws, machine, scheduled_event, eight_files, monkeypatch):
    first = run(aws, scheduled_event)
    released = play(aws, machine, first["execution_arn"], fail_group=2)
    assert released["status"] == "fanout_released" and "TaskFailed" in released["error"]
    again = run(aws, scheduled_event)
    assert again["status"] == "fanned_out" and again["run_id"] != first["run_id"] and again["files"] == 8
    merged = play(aws, machine, again["execution_arn"])
    fanned, single = totals(stored_report(aws.s3, merged["report_uri"])), single_run_totals(aws, scheduled_event, monkeypatch)
    assert moments(fanned) == pytest.approx(moments(single), rel=1e-12) and fanned == single


def test_a_merge_without_every_child_count_fails_and_keeps_the_lock(aws, machine, scheduled_event, eight_files):
    started = run(aws, scheduled_event)
    request = json.loads(machine.describe_execution(executionArn=started["execution_arn"])["input"])
    step = {"run_id": request["run_id"], "manifest_key": request["manifest_key"]}
    with pytest.raises(Exception, match="NoSuchKey|does not exist"):
        aws.app.handler({"fanout": step}, FakeContext())
    assert run(aws, scheduled_event)["status"] == "fanout_in_progress"


def test_a_stale_run_cannot_merge_or_release(aws, machine, scheduled_event, eight_files):
    started = run(aws, scheduled_event)
    step = {"run_id": "20250101T000000-deadbeef", "manifest_key": "x"}
    with pytest.raises(fanout.FanoutError, match="no longer holds"):
        aws.app.handler({"fanout": step}, FakeContext())
    with pytest.raises(fanout.FanoutError, match="no longer holds"):
        aws.app.handler({"fanout": step, "failed": True}, FakeContext())
    assert run(aws, scheduled_event)["run_id"] == started["run_id"]


def test_a_child_of_another_model_refuses_to_count(aws, machine, scheduled_event, eight_files):
    started = run(aws, scheduled_event)
    request = json.loads(machine.describe_execution(executionArn=started["execution_arn"])["input"])
    manifest = json.loads(aws.s3.get_object(Bucket="reports", Key=request["manifest_key"])["Body"].read())
    event = {"Items": manifest[:1], "BatchInput": {"run_id": request["run_id"], "model_sha256": "f" * 64}}
    with pytest.raises(fanout.FanoutError, match="a promotion happened meanwhile"):
        aws.app.count_handler(event, FakeContext())


def test_a_lock_older_than_the_state_machine_timeout_is_ignored(aws, machine, eight_files):
    settings = replace(aws.app.settings_from_env(), fanout_timeout=timedelta(hours=2))
    model = aws.app.production_model()
    now = datetime.now(UTC) + timedelta(minutes=1)
    first = run_check(aws.s3, settings, model, now, sfn=machine)
    assert isinstance(first, fanout.FanoutStarted)
    assert isinstance(run_check(aws.s3, settings, model, now + timedelta(minutes=119), sfn=machine),
                      fanout.FanoutInProgress)
    lost = run_check(aws.s3, settings, model, now + timedelta(hours=2), sfn=machine)
    assert isinstance(lost, fanout.FanoutStarted) and lost.run_id != first.run_id


def test_a_failed_start_releases_the_lock(aws, machine, scheduled_event, eight_files, monkeypatch):
    class Refusing:
        def start_execution(self, **_):
            raise RuntimeError("states:StartExecution denied")

    monkeypatch.setattr(aws.app, "sfn", Refusing())
    with pytest.raises(RuntimeError, match="denied"):
        run(aws, scheduled_event)
    monkeypatch.setattr(aws.app, "sfn", machine)
    assert run(aws, scheduled_event)["status"] == "fanned_out"


def test_groups_keep_plan_order_and_their_size():
    objects = [fanout.CaptureObject(f"k{i}", datetime(2025, 1, 1, tzinfo=UTC), size) for i, size in
               enumerate([10, 10, 10, 50, 5, 5])]
    groups = fanout.group_files(objects, 25)
    assert [[o.key for o in g] for g in groups] == [["k0", "k1"], ["k2"], ["k3"], ["k4", "k5"]]
    many = [fanout.CaptureObject(f"k{i}", datetime(2025, 1, 1, tzinfo=UTC), 1) for i in range(1200)]
    assert [len(g) for g in fanout.group_files(many, 1 << 30)] == [500, 500, 200]


def test_a_corrupt_file_in_a_group_is_reported_by_the_merge(aws, machine, scheduled_event, eight_files):
    good = gzip.compress(b"".join(capture_lines(make_columns(np.random.default_rng(9), 400))))
    aws.s3.put_object(Bucket="capture", Key=PREFIX + "part-9.gz", Body=good[: len(good) // 2])
    merged = play(aws, machine, run(aws, scheduled_event)["execution_arn"])
    report = stored_report(aws.s3, merged["report_uri"])
    assert [u["key"] for u in report["window"]["unreadable_files"]] == [PREFIX + "part-9.gz"]


def test_a_promotion_during_a_fan_out_fails_the_merge_and_the_release_step_frees_the_window(
        aws, machine, scheduled_event, eight_files, next_model_artifact, monkeypatch):
    started = run(aws, scheduled_event)
    request = json.loads(machine.describe_execution(executionArn=started["execution_arn"])["input"])
    manifest = json.loads(aws.s3.get_object(Bucket="reports", Key=request["manifest_key"])["Body"].read())
    batch_input = {"run_id": request["run_id"], "model_sha256": request["model_sha256"]}
    for item in manifest:
        aws.app.count_handler({"Items": [item], "BatchInput": batch_input}, FakeContext())
    aws.s3.put_object(Bucket="artifacts", Key="churn/4/model.tar.gz", Body=next_model_artifact.tarball)
    monkeypatch.setenv("MODEL_DATA_URL", "s3://artifacts/churn/4/model.tar.gz")
    monkeypatch.setenv("MODEL_SHA256", next_model_artifact.sha256)
    step = {"run_id": request["run_id"], "manifest_key": request["manifest_key"]}
    with pytest.raises(fanout.FanoutError, match="promoted model changed"):
        aws.app.handler({"fanout": step}, FakeContext())
    released = aws.app.handler({"fanout": step, "failed": True, "error": {"Error": "FanoutError"}}, FakeContext())
    assert released["status"] == "fanout_released"  # the real cause stays the merge's error, not a lock complaint
    again = run(aws, scheduled_event)
    assert again["status"] == "fanned_out" and again["files"] == 8  # read again, against the new model
