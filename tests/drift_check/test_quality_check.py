"""The scheduled model-quality check on moto: labels from Firehose and bulk files joined to captured predictions per
version and window, reports rewritten when late labels arrive, nothing read twice, EMF metrics, the registry."""
from __future__ import annotations

import gzip
import json
import posixpath
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import numpy as np
import pytest
from moto import mock_aws
from sklearn.dummy import DummyClassifier

from contracts import artifact, names
from contracts import metric_names as mn
from contracts.capture_record import record_line
from tests.drift_check.drift_helpers import SCHEMA, FakeContext, emf_blobs
from training import registry

MODEL = "churn"
YES, NO = {"no": 0.2, "yes": 0.8}, {"no": 0.8, "yes": 0.2}
LIVE_METRICS = {"accuracy": 0.9, "roc_auc": 0.9}
DAY = timedelta(days=1)


def make_artifact(tmp: Path, baseline, version: str, metrics: dict[str, float]) -> tuple[bytes, str]:
    estimator = DummyClassifier(strategy="prior").fit(np.zeros((4, 3)), ["no", "yes", "no", "yes"])
    metadata = artifact.Metadata(
        model_name=MODEL, model_version=version, task="binary", feature_schema=SCHEMA, classes=["no", "yes"],
        metrics=metrics, hyperparameters={}, training_data_sha256="0" * 64,
        library_versions=artifact.library_versions(), created_at=artifact.utc_now(),
        onnx=artifact.OnnxStatus(included=False, reason="test"))
    model_dir = artifact.write_model_dir(tmp / "model", estimator=estimator, metadata=metadata, baseline=baseline,
                                         onnx_model=None)
    sha = artifact.pack(model_dir, tmp / artifact.TARBALL)
    return (tmp / artifact.TARBALL).read_bytes(), sha


@pytest.fixture(scope="module")
def artifacts(baseline, tmp_path_factory) -> dict[str, tuple[bytes, str]]:
    """The live model (version 3) and an earlier one (registry version 1) with another training baseline."""
    return {"3": make_artifact(tmp_path_factory.mktemp("live"), baseline, "live-artifact", LIVE_METRICS),
            "1": make_artifact(tmp_path_factory.mktemp("old"), baseline, "old-artifact",
                               {"accuracy": 0.99, "roc_auc": 0.99})}


@pytest.fixture
def qc(monkeypatch, artifacts):
    """Buckets, the live artifact, version 1 in the registry, the function's environment; the handler on moto."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sm = boto3.client("sagemaker", region_name="us-east-1")
        for bucket in ("capture", "reports", "artifacts"):
            s3.create_bucket(Bucket=bucket)
        for version, (body, _) in artifacts.items():
            s3.put_object(Bucket="artifacts", Key=f"models/{MODEL}/run-{version}/model.tar.gz", Body=body)
        registry.register(sm, model_name=MODEL, run_id="run-1", sha256=artifacts["1"][1], metrics={"accuracy": 0.99},
                          model_data_url=f"s3://artifacts/models/{MODEL}/run-1/model.tar.gz")
        for name, value in {
            "CAPTURE_BUCKET": "capture", "REPORTS_BUCKET": "reports", "MODEL_NAME": MODEL, "MODEL_VERSION": "3",
            "MODEL_DATA_URL": f"s3://artifacts/models/{MODEL}/run-3/model.tar.gz", "MODEL_SHA256": artifacts["3"][1],
            "MODEL_QUALITY_MIN_LABELS": "20", "POWERTOOLS_SERVICE_NAME": "model-quality",
        }.items():
            monkeypatch.setenv(name, value)
        from drift_check import model_source, quality_check, quality_models

        monkeypatch.setattr(quality_check, "s3", s3)
        monkeypatch.setattr(quality_check, "sagemaker", sm)
        model_source._CACHE.clear()
        quality_models._FETCHED.clear()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        yield SimpleNamespace(s3=s3, module=quality_check, today=today, yesterday=today - DAY,
                              day_before=today - 2 * DAY)


def run(qc) -> dict:
    return qc.module.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, FakeContext())


def put_predictions(qc, start: datetime, n: int, *, prefix: str, version: str = "3", name: str = "part",
                    extra: list[bytes] = ()) -> None:
    """n predictions from start + 1 h (one a minute), alternately yes and no, ids <prefix><i>, one gzip object
    in the hour's Firehose partition."""
    lines = [record_line(time=(start + timedelta(hours=1, minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         request_id=f"r{i}", model_name=MODEL, model_version=version, features={"x": float(i)},
                         prediction="yes" if i % 2 else "no", probability=YES if i % 2 else NO, id=f"{prefix}{i}")
             for i in range(n)]
    key = f"{names.capture_prefix(MODEL)}{start + timedelta(hours=1):%Y/%m/%d/%H}/{name}-{prefix}.gz"
    qc.s3.put_object(Bucket="capture", Key=key, Body=gzip.compress(b"".join([*lines, *extra])))


def truth(prefix: str, n: int, *, wrong: bool = False) -> list[tuple[str, str]]:
    """The labels of put_predictions' rows: right (the prediction) or all wrong."""
    return [(f"{prefix}{i}", ("no" if i % 2 else "yes") if wrong else ("yes" if i % 2 else "no")) for i in range(n)]


def put_feedback(qc, pairs: list[tuple[str, str]], *, name: str, time: datetime | None = None) -> None:
    """What the labels Firehose stream delivers: gzip JSON Lines of GroundTruth under labels/<m>/feedback/."""
    moment = time or datetime.now(UTC)
    body = "".join(json.dumps({"id": i, "label": v, "time": moment.isoformat()}) + "\n" for i, v in pairs)
    key = f"{names.feedback_prefix(MODEL)}{datetime.now(UTC):%Y/%m/%d/%H}/{name}.gz"
    qc.s3.put_object(Bucket="capture", Key=key, Body=gzip.compress(body.encode()))


def put_bulk(qc, pairs: list[tuple[str, str]], *, name: str) -> None:
    """A user's CSV without a time column: its rows arrive at the object's LastModified."""
    body = "id,label\n" + "".join(f"{i},{v}\n" for i, v in pairs)
    qc.s3.put_object(Bucket="capture", Key=f"{names.labels_prefix(MODEL)}bulk/{name}.csv", Body=body.encode())


def stored(qc, key: str) -> dict:
    return json.loads(qc.s3.get_object(Bucket="reports", Key=key)["Body"].read())


def window_report(qc, start: datetime, version: str = "3") -> dict:
    return stored(qc, names.quality_window_key(MODEL, version, start))


def run_report(qc, result: dict) -> dict:
    return stored(qc, result["report_uri"].removeprefix("s3://reports/"))


def blobs_with(blobs: list[dict], metric: str) -> list[dict]:
    return [b for b in blobs if metric in b]


def dimension_sets(blob: dict) -> list[list[str]]:
    """The blob's dimension sets; Powertools adds `service` to the first (an alarm or a dashboard widget reading a
    metric by its exact dimensions must name it, so the tests keep it)."""
    return blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


def test_labels_from_firehose_and_a_bulk_file_judge_the_window(qc, capsys):
    put_predictions(qc, qc.yesterday, 40, prefix="y")
    labels = truth("y", 40)
    put_feedback(qc, labels[:20], name="labels-1", time=qc.yesterday + timedelta(hours=4))
    put_bulk(qc, labels[20:], name="upload")
    result = run(qc)

    assert result["status"] == "ok" and result["model_version"] == "3" and result["windows_changed"] == 1
    assert result["window"] == qc.yesterday.isoformat().replace("+00:00", "Z")
    assert result["report_uri"].startswith(f"s3://reports/{names.quality_prefix(MODEL)}dt=")
    report = window_report(qc, qc.yesterday)
    assert report["status"] == "ok" and report["matched"] == 40 and report["label_coverage"] == 1.0
    assert report["window"]["model_version"] == "3" and report["window"]["period_start"] == result["window"]
    assert report["window"]["period_end"] == (qc.today.isoformat().replace("+00:00", "Z"))
    assert report["baseline"] == LIVE_METRICS and report["realized"]["accuracy"] == 1.0
    assert report["model"]["version"] == "3" and report["model"]["sha256"]
    # Firehose's labels arrived 2.3-3 h after their predictions; the bulk file's at its upload (now).
    hours_since = (datetime.now(UTC) - qc.yesterday).total_seconds() / 3600
    assert 2 <= report["label_delay_median_hours"] <= hours_since
    assert report["label_delay_p90_hours"] == pytest.approx(hours_since - 1.5, abs=0.5)
    run_json = run_report(qc, result)
    (row,) = run_json["windows"]
    assert row["model_version"] == "3" and row["status"] == "ok" and row["changed"] and row["realized"] == 1.0
    assert row["primary_metric"] == "roc_auc" and row["interval"] and row["estimated"] is not None
    assert run_json["labels"] == 40 and run_json["unmatched_labels"] == 0 and run_json["label_objects"] == 2
    html = qc.s3.get_object(Bucket="reports", Key=result["report_uri"].removeprefix("s3://reports/")
                            .replace(".json", ".html"))["Body"].read().decode()
    assert "Windows" in html and "<script" not in html

    blobs = emf_blobs(capsys)
    realized = {b[mn.DIM_METRIC]: b for b in blobs_with(blobs, mn.QUALITY_REALIZED)}
    assert realized["accuracy"][mn.QUALITY_REALIZED] == [1.0] and "roc_auc" in realized
    assert dimension_sets(realized["accuracy"]) == [[mn.DIM_MODEL_NAME, mn.DIM_MODEL_VERSION, mn.DIM_METRIC,
                                                      mn.DIM_SERVICE]]
    assert realized["accuracy"][mn.DIM_MODEL_VERSION] == "3" and mn.QUALITY_ESTIMATED in realized["accuracy"]
    (window,) = blobs_with(blobs, mn.LABEL_COVERAGE)
    assert window[mn.LABEL_COVERAGE] == [1.0] and window[mn.LABELS_MATCHED] == [40.0]
    assert mn.LABEL_DELAY_HOURS in window
    (degraded,) = blobs_with(blobs, mn.QUALITY_DEGRADED)
    assert degraded[mn.QUALITY_DEGRADED] == [0.0]
    # The alarm's view, ModelName alone, exactly as the alarm names it (tests/stacks/test_model_quality_stack.py).
    assert dimension_sets(degraded) == [[mn.DIM_MODEL_NAME, mn.DIM_MODEL_VERSION, mn.DIM_SERVICE], [mn.DIM_MODEL_NAME]]
    (totals,) = [b for b in blobs_with(blobs, mn.LABELS_UNMATCHED)]
    # ModelName alone too: what the dashboard's widget reads.
    assert totals[mn.LABELS_UNMATCHED] == [0.0]
    assert dimension_sets(totals) == [[mn.DIM_MODEL_NAME, mn.DIM_SERVICE], [mn.DIM_MODEL_NAME]]
    assert all(b["service"] == "model-quality" for b in blobs)


def test_a_rerun_with_nothing_new_reads_writes_and_publishes_nothing(qc, capsys):
    put_predictions(qc, qc.yesterday, 30, prefix="y")
    put_bulk(qc, truth("y", 30), name="upload")
    assert run(qc)["windows_changed"] == 1
    capsys.readouterr()
    before = {o["Key"]: o["ETag"] for o in qc.s3.list_objects_v2(Bucket="reports")["Contents"]}

    again = run(qc)
    assert again == {"status": "unchanged", "windows": 1, "windows_changed": 0, "report_uri": None}
    assert not emf_blobs(capsys)
    assert {o["Key"]: o["ETag"] for o in qc.s3.list_objects_v2(Bucket="reports")["Contents"]} == before


def test_a_late_label_rewrites_only_its_window(qc, capsys):
    put_predictions(qc, qc.day_before, 30, prefix="d")
    put_predictions(qc, qc.yesterday, 30, prefix="y")
    put_bulk(qc, truth("d", 25) + truth("y", 30), name="first")
    first = run(qc)
    assert first["windows"] == 2 and first["windows_changed"] == 2
    older, newer = window_report(qc, qc.day_before), window_report(qc, qc.yesterday)
    assert older["matched"] == 25
    capsys.readouterr()

    put_feedback(qc, truth("d", 30)[25:], name="late")  # the day before yesterday's last five predictions
    second = run(qc)
    assert second["windows_changed"] == 1 and second["status"] == "ok"
    rewritten = window_report(qc, qc.day_before)
    assert rewritten["matched"] == 30 and rewritten["generated_at"] >= older["generated_at"]
    assert window_report(qc, qc.yesterday) == newer  # not rewritten
    rows = {row["period_start"][:10]: row for row in run_report(qc, second)["windows"]}
    assert rows[f"{qc.day_before:%Y-%m-%d}"]["changed"] and not rows[f"{qc.yesterday:%Y-%m-%d}"]["changed"]
    assert rows[f"{qc.yesterday:%Y-%m-%d}"]["matched"] == 30  # the unchanged row, from the checkpoint
    # The version's latest window (yesterday) did not change: no window metrics, no verdict, only the run's totals.
    blobs = emf_blobs(capsys)
    assert not blobs_with(blobs, mn.QUALITY_REALIZED) and not blobs_with(blobs, mn.QUALITY_DEGRADED)
    assert len(blobs_with(blobs, mn.LABELS_UNMATCHED)) == 1


def test_degraded_then_ok_publishes_1_then_0(qc, capsys):
    put_predictions(qc, qc.yesterday, 40, prefix="y")
    put_feedback(qc, truth("y", 40, wrong=True), name="wrong", time=datetime.now(UTC) - timedelta(minutes=5))
    result = run(qc)
    assert result["status"] == "degraded"
    report = window_report(qc, qc.yesterday)
    assert "accuracy" in report["degraded_metrics"] and "below training 0.9000" in report["reason"]
    # Each window has its page beside its JSON, and the run's page links to it (relative: they share quality/<m>/).
    window_key = names.quality_window_key(MODEL, "3", qc.yesterday)
    page = qc.s3.get_object(Bucket="reports", Key=window_key.removesuffix(".json") + ".html")["Body"].read().decode()
    assert page.startswith("<!doctype html>") and "below training 0.9000" in page
    run_key = result["report_uri"].removeprefix("s3://reports/").removesuffix(".json") + ".html"
    run_page = qc.s3.get_object(Bucket="reports", Key=run_key)["Body"].read().decode()
    (href,) = re.findall(r'href="([^"]+)"', run_page)
    assert posixpath.normpath(posixpath.join(posixpath.dirname(run_key), href)) == window_key.removesuffix(".json") + ".html"
    assert "below: accuracy" in run_page
    (degraded,) = blobs_with(emf_blobs(capsys), mn.QUALITY_DEGRADED)
    assert degraded[mn.QUALITY_DEGRADED] == [1.0] and degraded[mn.DIM_MODEL_NAME] == MODEL

    put_feedback(qc, truth("y", 40), name="corrected")  # later labels for the same ids replace the wrong ones
    second = run(qc)
    assert second["status"] == "ok" and run_report(qc, second)["replaced_labels"] == 40
    (degraded,) = blobs_with(emf_blobs(capsys), mn.QUALITY_DEGRADED)
    assert degraded[mn.QUALITY_DEGRADED] == [0.0]


def test_too_few_labels_publish_figures_but_no_verdict(qc, capsys):
    put_predictions(qc, qc.yesterday, 40, prefix="y")
    put_bulk(qc, truth("y", 5), name="few")
    result = run(qc)
    assert result["status"] == "insufficient_labels"
    blobs = emf_blobs(capsys)
    assert not blobs_with(blobs, mn.QUALITY_DEGRADED)
    (window,) = blobs_with(blobs, mn.LABEL_COVERAGE)
    assert window[mn.LABELS_MATCHED] == [5.0] and window[mn.LABEL_COVERAGE] == [pytest.approx(5 / 40)]
    assert blobs_with(blobs, mn.QUALITY_REALIZED)


def test_duplicate_unmatched_invalid_and_unreadable_labels_are_counted(qc):
    put_predictions(qc, qc.yesterday, 30, prefix="y")
    early = datetime.now(UTC) - timedelta(hours=2)
    put_feedback(qc, [("y0", "yes")], name="first", time=early)  # wrong, then corrected below
    put_feedback(qc, [*truth("y", 30), ("nobody", "yes")], name="second", time=early + timedelta(hours=1))
    qc.s3.put_object(Bucket="capture", Key=f"{names.labels_prefix(MODEL)}bulk/odd.csv",
                     Body=b"id,label\ny1,maybe\n,yes\n")  # not a class; no id
    qc.s3.put_object(Bucket="capture", Key=f"{names.labels_prefix(MODEL)}bulk/broken.gz",
                     Body=b"\x1f\x8b\x08\x00garbage")
    result = run(qc)
    assert result["unmatched_labels"] == 1 and result["invalid_labels"] == 2 and result["unreadable_objects"] == 1
    summary = run_report(qc, result)
    assert summary["replaced_labels"] == 2  # y0 (the later label wins) and y1 (the bulk file is newer: "maybe")
    assert summary["invalid_reasons"] == {"malformed": 1, "not_a_class": 1}
    (unreadable,) = summary["unreadable_objects"]
    assert unreadable["key"].endswith("bulk/broken.gz") and "gzip" in unreadable["error"]
    report = window_report(qc, qc.yesterday)
    assert report["matched"] == 29 and report["realized"]["accuracy"] == 1.0  # y0 "no" is right; y1 is invalid
    assert report["invalid_reasons"] == {"not_a_class": 1}


def test_each_version_is_judged_against_its_own_training_baseline(qc, artifacts, monkeypatch):
    monkeypatch.setenv("MODEL_QUALITY_FLOORS", '{"accuracy": 0.6}')
    put_predictions(qc, qc.yesterday, 30, prefix="live", version="3")
    put_predictions(qc, qc.yesterday, 30, prefix="old", version="1")
    put_predictions(qc, qc.yesterday, 30, prefix="lost", version="7")
    put_bulk(qc, truth("live", 30) + truth("old", 30) + truth("lost", 30, wrong=True), name="all")
    result = run(qc)
    assert result["windows"] == 3 and result["status"] == "ok"
    old = window_report(qc, qc.yesterday, "1")
    assert old["baseline"] == {"accuracy": 0.99, "roc_auc": 0.99} and old["model"]["sha256"] == artifacts["1"][1]
    lost = window_report(qc, qc.yesterday, "7")
    assert lost["baseline"] == {} and lost["status"] == "degraded" and "below the floor 0.6" in lost["reason"]
    assert "no training baseline" in lost["reason"] and "no version 7" in lost["reason"]
    rows = {row["model_version"]: row for row in run_report(qc, result)["windows"]}
    assert rows["7"]["baseline_note"] and rows["1"]["baseline_note"] is None and rows["1"]["baseline"] == 0.99
    # Not found is an answer: the next run with nothing new does not ask the registry again.
    assert run(qc)["status"] == "unchanged"


def test_only_the_live_version_speaks_for_the_model_in_the_alarms_view(qc, capsys):
    """A replaced version keeps getting late labels for a horizon: its verdict is published per version only, so it
    can neither hold the ModelQuality alarm up nor raise it again (and start a retraining)."""
    put_predictions(qc, qc.day_before, 30, prefix="old", version="1")
    put_predictions(qc, qc.yesterday, 30, prefix="live", version="3")
    put_bulk(qc, truth("old", 30, wrong=True) + truth("live", 30), name="both")
    assert run(qc)["status"] == "ok"
    verdicts = {b[mn.DIM_MODEL_VERSION]: b for b in blobs_with(emf_blobs(capsys), mn.QUALITY_DEGRADED)}
    assert verdicts["1"][mn.QUALITY_DEGRADED] == [1.0] and verdicts["3"][mn.QUALITY_DEGRADED] == [0.0]
    assert dimension_sets(verdicts["1"]) == [[mn.DIM_MODEL_NAME, mn.DIM_MODEL_VERSION, mn.DIM_SERVICE]]
    assert dimension_sets(verdicts["3"])[1:] == [[mn.DIM_MODEL_NAME]]

    put_bulk(qc, truth("old", 5, wrong=True), name="late-for-the-old-version")
    assert run(qc)["windows_changed"] == 1
    (verdict,) = blobs_with(emf_blobs(capsys), mn.QUALITY_DEGRADED)
    assert verdict[mn.DIM_MODEL_VERSION] == "1" and [mn.DIM_MODEL_NAME] not in dimension_sets(verdict)


def test_a_label_for_a_prediction_the_window_cannot_judge_is_unmatched_once(qc):
    odd = record_line(time=(qc.yesterday + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), request_id="r",
                      model_name=MODEL, model_version="3", features={"x": 1.0}, prediction="maybe", id="odd")
    put_predictions(qc, qc.yesterday, 30, prefix="y", extra=[odd])
    put_bulk(qc, [*truth("y", 30), ("odd", "yes")], name="labels")
    result = run(qc)
    report = window_report(qc, qc.yesterday)
    assert result["unmatched_labels"] == 1 and report["unmatched_labels"] == 0 and report["matched"] == 30
    assert report["rejected_captures"] == {"prediction_not_a_class": 1}


def test_an_unreadable_checkpoint_starts_over_instead_of_stopping_the_check(qc):
    put_predictions(qc, qc.yesterday, 30, prefix="y")
    put_bulk(qc, truth("y", 30), name="labels")
    first = run(qc)
    qc.s3.put_object(Bucket="reports", Key=names.quality_checkpoint_key(MODEL), Body=b'{"format": "something else"}')
    again = run(qc)
    assert again["status"] == first["status"] == "ok" and again["windows_changed"] == 1
    assert window_report(qc, qc.yesterday)["matched"] == 30
    assert run(qc)["status"] == "unchanged"


def test_windows_beyond_the_horizon_are_ignored_and_final(qc, monkeypatch):
    old = qc.today - 20 * DAY
    put_predictions(qc, old, 30, prefix="old")  # its partition is outside the horizon: never listed
    stale = record_line(time=old.strftime("%Y-%m-%dT%H:%M:%SZ"), request_id="r", model_name=MODEL,
                        model_version="3", features={}, prediction="yes", probability=YES, id="stale")
    put_predictions(qc, qc.yesterday, 30, prefix="y", extra=[stale])  # a stray old row in a recent object
    put_bulk(qc, truth("y", 30) + truth("old", 30), name="all")
    result = run(qc)
    assert result["windows"] == 1 and result["unmatched_labels"] == 30
    assert run_report(qc, result)["rejected_captures"] == {"before_horizon": 1}
    first = window_report(qc, qc.yesterday)

    later = datetime.now(UTC) + 20 * DAY
    monkeypatch.setattr(qc.module, "clock", lambda: later)
    put_feedback(qc, truth("y", 30, wrong=True), name="too-late")
    result = run(qc)
    assert result["status"] == "no_data" and result["windows"] == 0
    assert window_report(qc, qc.yesterday) == first  # final: never rewritten


def test_no_promoted_model_judges_nothing(qc, monkeypatch):
    monkeypatch.setenv("MODEL_DATA_URL", "")
    assert run(qc)["status"] == "no_model"
