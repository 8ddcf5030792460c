"""The whole loop on moto in server mode with real HTTP, through the demo's own command.

It runs `mlops demo` (what `make demo` runs) in a fresh process, from a folder of its own with a relative
work directory (module-level AWS clients must be created against the embedded AWS, not a unit test's
mock) and checks every hand-over it reports, not only the end.
"""
from __future__ import annotations

import json
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


def test_alarm_starts_retraining_and_the_candidate_is_judged_against_production(loop):
    assert loop["alarm_states"] == ["OK", "ALARM"]
    assert loop["retraining_input"] == {"model_name": "breast-cancer", "data_uri": loop["retraining_input"]["data_uri"],
                                        "target": "diagnosis", "trigger": "drift-alarm"}
    evaluation = loop["retraining"]["evaluation"]
    assert evaluation["production_model_package_version"] == loop["live"]["version"]
    assert evaluation["production"] is not None and "roc_auc" in evaluation["production"]


def test_the_summary_names_versions_latency_verdict_and_reports(loop):
    out = loop["stdout"]
    for text in ("model versions in the registry:", "latency p50", "status drift", "HTML drift page", "whole loop:"):
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
