"""Run records: the evaluate step writes one for every evaluated run, the register step adds the registry version;
`mlops runs` reads them back from the bucket, all on moto."""
from __future__ import annotations

import json

import boto3
import pytest

from contracts import names
from contracts.run_record import parse_record
from mlops import runs
from tests.pipeline.test_app import REPORTS, _read, _train_candidate, _validated, app, s3
from tests.training.training_helpers import load_event
from training.validate import DataValidationError

__all__ = ["app", "s3"]  # fixtures


def _record(s3, run_id: str):
    return parse_record(_read(s3, f"s3://{REPORTS}/{names.run_record_key('tiny-binary', run_id)}"))


def test_passed_run_is_recorded_then_gets_its_registry_version(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_evaluate.json") | {
        "data_uri": "s3://mlops-test-data/incoming/tiny-binary/data.csv", "started_at": "2026-11-23T01:00:00Z",
        "training_job_name": "tiny-binary-run-20261123-0001"}
    _train_candidate(s3, validation, tmp_path, event)
    evaluation = app.evaluate_handler(event, lambda_context)

    record = _record(s3, event["run_id"])
    assert (record.status, record.gate.passed, record.registration) == ("passed", True, None)
    assert record.metrics == evaluation["candidate"] and record.primary_metric == "roc_auc"
    assert record.gate.reason == evaluation["reason"] and record.gate.report_uri == evaluation["decision_uri"]
    assert record.artifact_uri == event["candidate_model_uri"] and record.artifact_sha256 == evaluation["candidate_sha256"]
    assert record.data.uri == event["data_uri"] and len(record.data.sha256) == 64
    assert record.data.rows == {"train": 102, "test": 26}  # the artifact's own split of the 128 train rows
    assert record.gate.test_rows == 32  # the held-out split the gate scored
    assert record.algorithm and record.hyperparameters["target"] == "label" and record.task == "binary"
    assert record.started_at == "2026-11-23T01:00:00Z" and record.training_job_name == event["training_job_name"]
    assert record.model_version == evaluation["candidate_model_version"]

    registered = app.register_handler(load_event("pipeline_register.json") | {"evaluation": evaluation}, lambda_context)
    record = _record(s3, event["run_id"])
    assert record.status == "registered"
    assert (record.registration.version, record.registration.arn) == (1, registered["model_package_arn"])
    assert record.registration.approval_status == "PendingManualApproval"


def test_rejected_run_is_recorded_with_the_gate_decision(s3, app, lambda_context, tmp_path, monkeypatch):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_evaluate.json") | {"run_id": "run-20261123-0009"}
    _train_candidate(s3, validation, tmp_path, event)
    monkeypatch.setenv("EVAL_FLOOR", "1.01")  # no model reaches it
    evaluation = app.evaluate_handler(event, lambda_context)
    assert evaluation["passed"] is False

    record = _record(s3, "run-20261123-0009")
    assert (record.status, record.gate.passed, record.gate.floor) == ("rejected", False, 1.01)
    assert "< floor 1.01" in record.gate.reason and record.registration is None
    # No job name in the event: the one in SageMaker's output location <path>/<job>/output/model.tar.gz.
    assert record.training_job_name == "run-20261123-0001"


def test_refused_data_is_recorded_as_a_failed_run(s3, app, lambda_context):
    with pytest.raises(DataValidationError):
        app.validate_handler(load_event("pipeline_validate_bad_data.json"), lambda_context)
    record = _record(s3, "run-20261123-0002")
    assert (record.status, record.gate, record.metrics) == ("failed", None, {})
    assert "column 'a' is numeric but 'x' on line 4" in record.error
    assert record.validation_report_uri == f"s3://{REPORTS}/validation/tiny-binary/run-20261123-0002.json"
    assert record.data.uri.endswith("bad.csv") and len(record.data.sha256) == 64 and record.data.rows == {"total": 160}


def test_register_without_a_record_still_registers(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_register.json")
    _train_candidate(s3, validation, tmp_path, event)
    registered = app.register_handler(event, lambda_context)  # an execution from before run records
    assert registered["model_package_version"] == 1
    assert s3.list_objects_v2(Bucket=REPORTS, Prefix=names.RUNS).get("KeyCount") == 0


def test_mlops_runs_reads_the_pipeline_records_from_the_bucket(s3, app, lambda_context, tmp_path, monkeypatch, capsys):
    validation = _validated(app, lambda_context)
    passed = load_event("pipeline_evaluate.json")
    _train_candidate(s3, validation, tmp_path, passed)
    app.register_handler(load_event("pipeline_register.json") | {"evaluation": app.evaluate_handler(passed, lambda_context)},
                         lambda_context)
    monkeypatch.setenv("EVAL_FLOOR", "1.01")
    app.evaluate_handler(passed | {"run_id": "run-20261123-0009"}, lambda_context)

    assert runs.main(["list", "--bucket", REPORTS, "--model-name", "tiny-binary"], clients=boto3.client) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "model", "finished", "status", "algorithm", "metric", "value", "production",
                                "version"]
    statuses = {line.split()[0]: line for line in lines[2:]}
    assert " rejected " in statuses["run-20261123-0009"] and " registered " in statuses["run-20261123-0001"]
    assert runs.main(["show", "run-20261123-0009", "--bucket", REPORTS, "--json"], clients=boto3.client) == 0
    assert json.loads(capsys.readouterr().out)["gate"]["passed"] is False


def test_mlops_runs_names_a_missing_bucket_and_an_empty_one(s3, capsys):
    assert runs.main(["list", "--bucket", "no-such-bucket"], clients=boto3.client) == 1
    assert "NoSuchBucket" in capsys.readouterr().err
    assert runs.main(["list", "--bucket", REPORTS], clients=boto3.client) == 1
    assert f"no run records in s3://{REPORTS}/runs/" in capsys.readouterr().err


def test_the_job_name_and_search_candidates_are_read_where_training_leaves_them():
    from types import SimpleNamespace

    from pipeline.run_records import search_candidates, training_job_of

    assert training_job_of("s3://a/models/m/run-1/m-run-1/output/model.tar.gz") == "m-run-1"
    assert training_job_of("s3://a/elsewhere/model.tar.gz") is None
    candidates = [{"params": {"C": 1.0}, "score": 0.9}]
    assert search_candidates(SimpleNamespace(search_candidates=candidates)) == candidates
    assert search_candidates(SimpleNamespace(search={"candidates": candidates, "best": 0})) == candidates
    assert search_candidates(SimpleNamespace()) is None  # no search ran
