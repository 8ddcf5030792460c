"""The whole loop on moto in server mode with real HTTP, through the demo's own command.

It runs `mlops demo` (what `make demo` runs) in a fresh process, from a folder of its own with a relative
work directory (module-level AWS clients must be created against the embedded AWS, not a unit test's
mock) and checks every hand-over it reports, not only the end.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from demo.data import DRIFTED_FEATURES
from demo.local_batch import ITEMS_PER_CHILD
from demo.loop import BATCH_JOB, BATCH_ROWS, LOW_TRAFFIC_HOURS, LOW_TRAFFIC_ROWS, SEGMENT_ROWS

MALFORMED_PER_SEGMENT = 9  # demo.traffic.malformed_requests


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("loop")
    mlops = Path(sys.executable).parent / "mlops"  # the console script pip installed beside this interpreter
    proc = subprocess.run([str(mlops), "demo", "--workdir", "run", "--json", "loop.json"], capture_output=True,
                          text=True, timeout=600, cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((work / "loop.json").read_text())
    result["stdout"] = proc.stdout
    return result


def test_validation_hands_a_split_to_training(loop):
    validation = loop["first_run"]["validation"]
    assert validation["rows"] == 569 and validation["task"] == "binary"
    assert validation["train_uri"].endswith("/train/") and validation["test_uri"].endswith("/test/")
    assert validation["hyperparameters"]["target"] == "diagnosis"


def test_training_output_is_evaluated_and_registered(loop):
    run = loop["first_run"]
    assert run["model_data_url"].endswith("/output/model.tar.gz")
    evaluation = run["evaluation"]
    assert evaluation["passed"] and evaluation["production"] is None
    assert evaluation["candidate"]["roc_auc"] > 0.95
    assert run["registration"]["approval_status"] == "PendingManualApproval"


def test_the_approved_version_is_what_serves(loop):
    approved, live, health = loop["approved"], loop["live"], loop["health"]
    assert approved["approval_status"] == "Approved"
    assert live["model_data_url"] == loop["first_run"]["model_data_url"]
    assert live["sha256"] == loop["first_run"]["evaluation"]["candidate_sha256"]
    assert health == {"status_code": 200, "status": "ok", "model_loaded": True,
                      "model_version": str(live["version"]), "runtime": "onnxruntime"}


@pytest.mark.parametrize("segment", ["normal_traffic", "drifted_traffic"])
def test_traffic_is_answered_and_bad_input_rejected_without_5xx(loop, segment):
    traffic = loop[segment]
    statuses = {int(k): v for k, v in traffic["statuses"].items()}
    assert traffic["rows_predicted"] == SEGMENT_ROWS
    assert not [s for s in statuses if s >= 500]
    assert sum(v for s, v in statuses.items() if 400 <= s < 500) == MALFORMED_PER_SEGMENT


def test_every_prediction_is_captured_once(loop):
    assert loop["captured_lines"] == 2 * SEGMENT_ROWS + LOW_TRAFFIC_HOURS * LOW_TRAFFIC_ROWS
    assert loop["captured_objects"] > 0


def test_drift_check_reads_each_window_once_and_finds_the_drifted_segment(loop):
    first, second = loop["first_check"], loop["second_check"]
    assert (first["status"], first["dataset_drift"], first["rows_checked"]) == ("ok", False, SEGMENT_ROWS)
    assert (second["status"], second["dataset_drift"], second["rows_checked"]) == ("drift", True, SEGMENT_ROWS)
    assert set(DRIFTED_FEATURES) <= set(second["drifted_features"])
    assert first["metrics_published"] > 0 and second["report_uri"].startswith("s3://")
    assert loop["html_report"] and Path(loop["html_report"]).read_text().lstrip().lower().startswith("<!doctype html")


def test_low_traffic_hours_are_pooled_into_one_verdict(loop):
    checks = loop["low_traffic_checks"]
    assert len(checks) == LOW_TRAFFIC_HOURS and LOW_TRAFFIC_ROWS * (LOW_TRAFFIC_HOURS - 1) < 500
    for hour, check in enumerate(checks[:-1], start=1):
        assert (check["status"], check["pool"], check["pooled_runs"]) == ("insufficient_data", "carried_over", hour)
        assert check["rows_checked"] == hour * LOW_TRAFFIC_ROWS and not check["dataset_drift"]
    verdict = checks[-1]
    assert (verdict["status"], verdict["pool"], verdict["pooled_runs"]) == ("ok", "complete", LOW_TRAFFIC_HOURS)
    assert verdict["rows_checked"] == LOW_TRAFFIC_HOURS * LOW_TRAFFIC_ROWS
    assert "then a pooled verdict: status ok" in loop["stdout"]


def test_the_drift_alarm_fires_on_the_drifted_segment(loop):
    assert loop["alarm_states"] == ["OK", "ALARM"]


@pytest.mark.parametrize("delivery", ["first_labels", "second_labels"])
def test_labels_come_back_through_the_api_and_a_bulk_file(loop, delivery):
    labels = loop[delivery]
    assert labels["feedback"] > 0 and labels["bulk"] > 0
    assert labels["feedback_statuses"] == {"202": -(-labels["feedback"] // 500)}
    assert labels["bulk_key"].startswith("labels/breast-cancer/bulk/")


def test_the_quality_check_joins_labels_and_judges_the_window_again_when_late_labels_arrive(loop):
    first, second = loop["first_quality"], loop["second_quality"]
    assert first["status"] == "ok" and second["status"] == "degraded"
    assert first["window"] == second["window"] and second["windows_changed"] >= 1
    assert first["unmatched_labels"] == second["unmatched_labels"] == 0
    (before,) = [r for r in first["windows_reports"] if r["window"]["period_start"] == first["window"]]
    (after,) = [r for r in second["windows_reports"] if r["window"]["period_start"] == second["window"]]
    assert before["matched"] == loop["first_labels"]["feedback"] + loop["first_labels"]["bulk"]
    assert after["matched"] == before["matched"] + loop["second_labels"]["feedback"] + loop["second_labels"]["bulk"]
    assert after["predictions"] == loop["captured_lines"] and after["label_coverage"] == pytest.approx(
        after["matched"] / after["predictions"], abs=1e-6)
    # Concept drift: the labels fall; the estimate, which sees only the model's probabilities, does not.
    assert "accuracy" in after["degraded_metrics"] or "roc_auc" in after["degraded_metrics"]
    assert after["realized"]["accuracy"] < before["realized"]["accuracy"] - 0.1
    assert after["estimated"]["accuracy"] > after["realized"]["accuracy"] + 0.1
    assert first["metrics_published"] > 0 and second["metrics_published"] > 0


def test_a_quality_check_with_nothing_new_counts_nothing_twice(loop):
    rerun = loop["quality_rerun"]
    assert rerun["status"] == "unchanged" and rerun["windows_changed"] == 0 and rerun["metrics_published"] == 0
    assert loop["quality_states"] == ["OK", "ALARM", "ALARM"]
    page = Path(loop["quality_html"])
    assert page.read_text().lstrip().lower().startswith("<!doctype html")
    (href,) = re.findall(r'href="([^"]+)"', page.read_text())  # the window's page, copied beside it
    assert (page.parent / href).resolve().read_text().lstrip().lower().startswith("<!doctype html")


def test_the_quality_alarm_retrains_on_production_rows_and_the_candidate_beats_the_live_model(loop):
    assert loop["retraining_input"] == {"model_name": "breast-cancer", "data_uri": loop["retraining_input"]["data_uri"],
                                        "target": "diagnosis", "trigger": "quality-alarm"}
    first, retraining = loop["first_run"], loop["retraining"]
    assert first["dataset"]["lineage"]["production_rows"] == 0 and first["dataset"]["recent_uri"] is None
    lineage = retraining["dataset"]["lineage"]
    labelled = sum(loop[d]["feedback"] + loop[d]["bulk"] for d in ("first_labels", "second_labels"))
    assert lineage["production_rows"] + lineage["recent_rows"] == labelled
    assert lineage["rows"] == first["validation"]["rows"] + lineage["production_rows"]
    assert retraining["dataset"]["data_uri"].endswith("/datasets/breast-cancer/versions/run-2/train.csv")
    evaluation = retraining["evaluation"]
    assert evaluation["production_source"] == "live"
    assert evaluation["production_model_package_version"] == loop["live"]["version"]
    recent = evaluation["recent"]
    assert recent["rows"] == lineage["recent_rows"] and recent["passed"]
    assert recent["candidate"] > recent["production"]
    assert evaluation["passed"] and retraining["registration"]["model_package_version"] == 2


def test_the_summary_names_versions_latency_verdict_and_reports(loop):
    out = loop["stdout"]
    for text in ("model versions in the registry:", "latency p50", "status drift", "HTML drift page", "whole loop:",
                 "model quality after the drifted segment's labels: degraded", "training 0.9", "estimated 0.9",
                 "recent labelled rows: candidate roc_auc"):
        assert text in out


def test_an_uploaded_file_is_scored_by_a_batch_job_with_the_live_model(loop):
    batch = loop["batch"]
    assert batch["matched"] and batch["object_key"] == f"batch/breast-cancer/input/{BATCH_JOB}/customers.csv"
    plan, summary = batch["plan"], batch["summary"]
    assert plan["parts"] > 1 and batch["children"] == -(-plan["parts"] // ITEMS_PER_CHILD)
    assert summary["status"] == "completed_with_errors"
    assert summary["rows"] == BATCH_ROWS == summary["scored"] + summary["errors"] and summary["errors"] == 3
    assert summary["model"]["sha256"] == loop["live"]["sha256"] and summary["model"]["version"] == str(loop["live"]["version"])
    assert summary["errors_files"] and batch["metrics_published"] >= 4
    assert f"batch job {BATCH_JOB}: completed_with_errors" in loop["stdout"]
