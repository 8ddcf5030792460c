"""The Step Functions step handlers on moto, driven by the event files in tests/events/."""
from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from contracts import artifact
from contracts.artifact import DatasetLineage, TamperedArtifact
from contracts.promotions import record_promotion
from tests.training.training_helpers import binary_rows, load_event, write_csv
from training import registry
from training.train import TrainConfig, train
from training.validate import DataValidationError

DATA, ARTIFACTS, REPORTS = "mlops-test-data", "mlops-test-artifacts", "mlops-test-reports"


@pytest.fixture
def s3(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Buckets with the incoming data, and the functions' environment."""
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (DATA, ARTIFACTS, REPORTS):
            client.create_bucket(Bucket=bucket)
        client.upload_file(str(data_dir / "binary.csv"), DATA, "incoming/tiny-binary/data.csv")
        header, rows = binary_rows()
        rows[2][0] = "x"
        client.put_object(Bucket=DATA, Key="incoming/tiny-binary/bad.csv", Body=write_csv(tmp_path / "bad.csv", header, rows).read_bytes())
        for name, value in {"DATA_BUCKET": DATA, "ARTIFACTS_BUCKET": ARTIFACTS, "REPORTS_BUCKET": REPORTS}.items():
            monkeypatch.setenv(name, value)
        yield client


@pytest.fixture
def app(s3):
    """The handler module, imported once moto is active (its clients are created at import)."""
    return importlib.import_module("pipeline.app")


def _read(s3, uri: str) -> bytes:
    bucket, key = uri[len("s3://"):].split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def _validated(app, lambda_context) -> dict:
    return app.validate_handler(load_event("pipeline_validate.json"), lambda_context)


def _train_candidate(s3, validation: dict, tmp_path: Path, event: dict, lineage: DatasetLineage | None = None) -> str:
    """Play the training job: train on the train split, upload model.tar.gz where SageMaker would."""
    local = tmp_path / "train.csv"
    local.write_bytes(_read(s3, validation["train_uri"] + "data.csv"))
    config = TrainConfig(target="label", model_name=event["model_name"], categorical=["color"], run_id=event["run_id"])
    result = train(local, tmp_path / "model", config, test_path=None, lineage=lineage)
    tarball = tmp_path / artifact.TARBALL
    artifact.pack(result.model_dir, tarball)
    bucket, key = event["candidate_model_uri"][len("s3://"):].split("/", 1)
    s3.upload_file(str(tarball), bucket, key)
    return event["candidate_model_uri"]


def test_validate_writes_split_and_report(s3, app, lambda_context, data_dir):
    out = _validated(app, lambda_context)
    assert out["task"] == "binary" and out["rows"] == 160
    assert out["train_uri"] == f"s3://{DATA}/splits/tiny-binary/run-20261123-0001/train/"
    assert out["hyperparameters"] == {"target": "label", "model-name": "tiny-binary", "task": "binary",
                                      "categorical": "color", "run-id": "run-20261123-0001",
                                      # the event sets none: the defaults, as strings for SageMaker
                                      "algorithm": "linear", "hyperparameters": "{}", "search": "0",
                                      "search-seconds": "1800.0",
                                      # no BuildDataset lineage in the event: an empty JSON object
                                      "lineage": "{}"}
    train_rows = _rows(_read(s3, out["train_uri"] + "data.csv"))
    test_rows = _rows(_read(s3, out["test_uri"] + "data.csv"))
    original = _rows((data_dir / "binary.csv").read_bytes())
    assert train_rows[0] == test_rows[0] == original[0]
    assert (len(train_rows) - 1, len(test_rows) - 1) == (128, 32)
    assert sorted(train_rows[1:] + test_rows[1:]) == sorted(original[1:])  # values exactly as uploaded
    report = json.loads(_read(s3, out["report_uri"]))
    assert report["passed"] is True and report["feature_schema"]["target"] == "label"
    assert out["report_uri"] == f"s3://{REPORTS}/validation/tiny-binary/run-20261123-0001.json"
    first_split = _read(s3, out["test_uri"] + "data.csv")
    _validated(app, lambda_context)
    assert _read(s3, out["test_uri"] + "data.csv") == first_split  # seeded: the same split again


def test_validate_failure_raises_and_still_writes_the_report(s3, app, lambda_context):
    with pytest.raises(DataValidationError, match="bad.csv: column 'a' is numeric but 'x' on line 4") as info:
        app.validate_handler(load_event("pipeline_validate_bad_data.json"), lambda_context)
    assert type(info.value).__name__ == "DataValidationError"  # what the state machine's Catch matches
    report = json.loads(_read(s3, f"s3://{REPORTS}/validation/tiny-binary/run-20261123-0002.json"))
    assert report["passed"] is False and [c["column"] for c in report["checks"] if not c["passed"]] == ["a"]
    listed = s3.list_objects_v2(Bucket=DATA, Prefix="splits/").get("Contents", [])
    assert listed == []  # nothing downstream


def test_bad_event_names_the_field(app, lambda_context):
    event = load_event("pipeline_validate.json") | {"model_name": "tiny_binary"}
    with pytest.raises(ValueError, match="model name 'tiny_binary' must be"):
        app.validate_handler(event, lambda_context)


def test_validate_passes_the_model_choice_to_the_training_job(app, lambda_context):
    event = load_event("pipeline_validate.json") | {
        "algorithm": "hist_gradient_boosting", "hyperparameters": {"max_iter": "300", "max_depth": None},
        "search_candidates": 8, "search_seconds": 600}
    hyperparameters = app.validate_handler(event, lambda_context)["hyperparameters"]
    assert hyperparameters["algorithm"] == "hist_gradient_boosting"
    assert json.loads(hyperparameters["hyperparameters"]) == {"max_iter": 300, "max_depth": None}  # typed once
    assert (hyperparameters["search"], hyperparameters["search-seconds"]) == ("8", "600.0")
    assert all(isinstance(v, str) for v in hyperparameters.values())  # SageMaker takes strings only


@pytest.mark.parametrize(("fields", "message"), [
    ({"algorithm": "xgboost"}, "unknown algorithm 'xgboost'"),
    ({"algorithm": "random_forest", "hyperparameters": {"l2": 3}}, "unknown hyperparameter 'l2' for random_forest"),
    ({"hyperparameters": {"l2": -1}}, "hyperparameter 'l2' of linear: must be > 0"),
    ({"hyperparameters": "l2=3"}, "hyperparameters must be a JSON object"),
    ({"search_candidates": 1000}, "search candidates must be an integer from 0"),
])
def test_a_bad_model_choice_fails_before_the_data_is_read(s3, app, lambda_context, fields, message):
    event = load_event("pipeline_validate.json") | fields
    with pytest.raises(app.HyperparameterError, match=message) as info:
        app.validate_handler(event, lambda_context)
    # The error type is what the execution's Error shows (its Cause the message), never DataValidationError.
    assert type(info.value).__name__ == "HyperparameterError"
    assert s3.list_objects_v2(Bucket=REPORTS).get("KeyCount") == 0
    assert s3.list_objects_v2(Bucket=DATA, Prefix="splits/").get("KeyCount") == 0


def test_evaluate_then_register_then_compare_with_production(s3, app, lambda_context, tmp_path, monkeypatch):
    validation = _validated(app, lambda_context)
    evaluate_event = load_event("pipeline_evaluate.json")
    assert evaluate_event["test_uri"] == validation["test_uri"]
    _train_candidate(s3, validation, tmp_path, evaluate_event)

    evaluation = app.evaluate_handler(evaluate_event, lambda_context)
    assert evaluation["passed"] is True and evaluation["production"] is None
    assert evaluation["reason"].startswith("no production model")
    decision = json.loads(_read(s3, evaluation["decision_uri"]))
    assert decision["candidate"] == evaluation["candidate"] and decision["test_rows"] == 32

    register_event = load_event("pipeline_register.json") | {"evaluation": evaluation}
    registered = app.register_handler(register_event, lambda_context)
    assert registered["model_package_version"] == 1 and registered["approval_status"] == "PendingManualApproval"
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=registered["model_package_arn"])
    assert package["CustomerMetadataProperties"]["artifact_sha256"] == evaluation["candidate_sha256"]
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == evaluation["decision_uri"]

    monkeypatch.setenv("AUTO_APPROVE", "true")
    approved = app.register_handler(register_event | {"run_id": "run-20261123-0003"}, lambda_context)
    assert (approved["model_package_version"], approved["approval_status"]) == (2, "Approved")
    again = app.evaluate_handler(evaluate_event, lambda_context)
    assert again["production"] == again["candidate"] and again["production_model_package_version"] == 2
    assert again["passed"] is True and "production" in again["reason"]


def test_register_refuses_a_rejected_or_changed_candidate(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_register.json")
    _train_candidate(s3, validation, tmp_path, event)
    rejected = event | {"evaluation": event["evaluation"] | {"passed": False, "reason": "candidate roc_auc 0.4 < floor 0.5"}}
    with pytest.raises(app.CandidateNotPassed, match="roc_auc 0.4 < floor"):
        app.register_handler(rejected, lambda_context)
    changed = event | {"evaluation": event["evaluation"] | {"candidate_sha256": "0" * 64}}
    with pytest.raises(TamperedArtifact):
        app.register_handler(changed, lambda_context)
    assert boto3.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_unusable_production_model_means_floor_only(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_evaluate.json")
    uri = _train_candidate(s3, validation, tmp_path, event)
    registry.register(boto3.client("sagemaker"), model_name=event["model_name"], model_data_url=uri, sha256="0" * 64,
                      metrics={"roc_auc": 0.99}, approve=True)
    evaluation = app.evaluate_handler(event, lambda_context)
    assert evaluation["passed"] is True and evaluation["production"] is None
    assert "the production model cannot be loaded (version 1: model.tar.gz has sha256" in evaluation["reason"]


# ------------------------------------------------------------------ the gate against the live model


def _approved(s3, uri: str, model_name: str, key: str, sha256: str | None = None):
    """The candidate's tarball copied to `key` and registered there as an Approved version."""
    bucket, source = uri[len("s3://"):].split("/", 1)
    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source})
    url = f"s3://{bucket}/{key}"
    digest = sha256 or hashlib.sha256(_read(s3, url)).hexdigest()
    return registry.register(boto3.client("sagemaker"), model_name=model_name, model_data_url=url, sha256=digest,
                             metrics={"roc_auc": 0.9}, approve=True)


def test_the_gate_compares_with_the_live_version_not_the_highest_approved(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_evaluate.json")
    uri = _train_candidate(s3, validation, tmp_path, event)
    model = event["model_name"]
    live = _approved(s3, uri, model, f"models/{model}/live/output/model.tar.gz")
    record_promotion(s3, model, live)
    _approved(s3, uri, model, f"models/{model}/newer/output/model.tar.gz")  # version 2: approved, never promoted

    evaluation = app.evaluate_handler(event, lambda_context)
    assert (evaluation["production_source"], evaluation["production_model_package_version"]) == ("live", 1)
    decision = json.loads(_read(s3, evaluation["decision_uri"]))
    assert decision["production_package"]["model_data_url"] == live.model_data_url
    assert decision["production_source"] == "live" and decision["holdout"]["passed"] is True
    record = json.loads(_read(s3, f"s3://{REPORTS}/runs/{model}/{event['run_id']}.json"))
    assert (record["gate"]["production_version"], record["gate"]["production_source"]) == (1, "live")

    s3.delete_object(Bucket=ARTIFACTS, Key=f"models/{model}/promotions.json")  # nothing ever promoted
    fallback = app.evaluate_handler(event, lambda_context)
    assert (fallback["production_source"], fallback["production_model_package_version"]) == ("latest_approved", 2)


def test_a_live_tarball_that_is_not_what_the_history_recorded_means_floor_only(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_evaluate.json")
    uri = _train_candidate(s3, validation, tmp_path, event)
    live = _approved(s3, uri, event["model_name"], f"models/{event['model_name']}/live/output/model.tar.gz")
    record_promotion(s3, event["model_name"], live.model_copy(update={"sha256": "0" * 64}))
    evaluation = app.evaluate_handler(event, lambda_context)
    assert evaluation["production_source"] == "live" and evaluation["production"] is None
    assert "the production model cannot be loaded (live version 1: model.tar.gz has sha256" in evaluation["reason"]


def test_an_unreadable_history_fails_the_run_rather_than_guess_what_is_live(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_evaluate.json")
    _train_candidate(s3, validation, tmp_path, event)
    s3.put_object(Bucket=ARTIFACTS, Key=f"models/{event['model_name']}/promotions.json", Body=b"{not json")
    with pytest.raises(app.PromotionHistoryUnreadable, match="which version is live is unknown"):
        app.evaluate_handler(event, lambda_context)


def test_recent_rows_reach_the_gate_and_the_run_record(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_evaluate.json")
    uri = _train_candidate(s3, validation, tmp_path, event)
    record_promotion(s3, event["model_name"], _approved(s3, uri, event["model_name"],
                                                        f"models/{event['model_name']}/live/output/model.tar.gz"))
    recent_key = f"datasets/{event['model_name']}/versions/{event['run_id']}/recent.csv"
    s3.put_object(Bucket=DATA, Key=recent_key, Body=_read(s3, validation["test_uri"] + "data.csv"))
    evaluation = app.evaluate_handler(event | {"recent_uri": f"s3://{DATA}/{recent_key}"}, lambda_context)
    assert evaluation["passed"] is True  # the same model: as good on the recent rows too
    assert evaluation["recent"]["rows"] == 32 and evaluation["recent"]["candidate"] == evaluation["recent"]["production"]
    assert "; recent production rows (32): candidate roc_auc" in evaluation["reason"]
    record = json.loads(_read(s3, f"s3://{REPORTS}/runs/{event['model_name']}/{event['run_id']}.json"))
    assert record["gate"]["recent"]["rows"] == 32 and record["gate"]["recent"]["passed"] is True


def test_the_lineage_reaches_the_metadata_the_registry_and_the_run_record(s3, app, lambda_context, tmp_path):
    validation = _validated(app, lambda_context)
    event = load_event("pipeline_register.json")
    lineage = DatasetLineage(data_uri=f"s3://{DATA}/datasets/tiny-binary/versions/run-1/train.csv", data_sha256="ab" * 32,
                             rows=190, production_rows=24, recent_rows=12, lineage_uri="s3://x/lineage.json",
                             window={"first": "2026-11-30T00:00:00Z", "last": "2026-12-01T00:00:00Z"})
    _train_candidate(s3, validation, tmp_path, event, lineage=lineage)
    evaluation = app.evaluate_handler(load_event("pipeline_evaluate.json"), lambda_context)
    record = json.loads(_read(s3, f"s3://{REPORTS}/runs/tiny-binary/{event['run_id']}.json"))
    assert record["data"]["lineage"] == lineage.model_dump(exclude_none=True)
    registered = app.register_handler(event | {"evaluation": evaluation}, lambda_context)
    properties = boto3.client("sagemaker").describe_model_package(
        ModelPackageName=registered["model_package_arn"])["CustomerMetadataProperties"]
    assert {k: v for k, v in properties.items() if k.startswith("dataset:")} == {
        "dataset:uri": lineage.data_uri, "dataset:sha256": "ab" * 32, "dataset:rows": "190",
        "dataset:production_rows": "24", "dataset:recent_rows": "12", "dataset:lineage_uri": "s3://x/lineage.json"}
    assert registry.resolve(None, "tiny-binary", 1).dataset["production_rows"] == "24"


def test_validate_passes_the_lineage_to_the_training_job(app, lambda_context):
    lineage = {"data_uri": "s3://d/train.csv", "data_sha256": "cd" * 32, "rows": 160, "production_rows": 0,
               "recent_rows": 0, "lineage_uri": "s3://d/lineage.json", "note": "PRODUCTION_LABELS is off"}
    out = app.validate_handler(load_event("pipeline_validate.json") | {"lineage": lineage}, lambda_context)
    assert json.loads(out["hyperparameters"]["lineage"]) == lineage
