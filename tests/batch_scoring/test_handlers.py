"""The state machine's three handlers on moto: plan → children (as the Distributed Map batches them) → summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest
from moto import mock_aws

from batch_scoring import model_pin
from batch_scoring.planner import PlanError
from contracts import artifact, names
from contracts.batch_job import OutputRow
from tests.batch_scoring.batch_helpers import csv_text, feature_names

EVENTS = Path(__file__).resolve().parents[1] / "events"
MODEL = "breast-cancer"
DATA, ARTIFACTS, CAPTURE = "data-bucket", "artifacts-bucket", "capture-bucket"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, breast_cancer_dir: Path, tmp_path: Path):
    """Buckets, the model's tarball as promoted (live), and the batch functions' environment."""
    model_pin._loaded.clear()
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (DATA, ARTIFACTS, CAPTURE):
            s3.create_bucket(Bucket=bucket)
        sha = artifact.pack(breast_cancer_dir, tmp_path / "model.tar.gz")
        key = f"{names.models_prefix(MODEL)}run-1/output/model.tar.gz"
        s3.upload_file(str(tmp_path / "model.tar.gz"), ARTIFACTS, key)
        env = {"DATA_BUCKET": DATA, "ARTIFACTS_BUCKET": ARTIFACTS, "CAPTURE_BUCKET": CAPTURE, "MODEL_NAME": MODEL,
               "MODEL_DATA_URL": f"s3://{ARTIFACTS}/{key}", "MODEL_SHA256": sha, "MODEL_VERSION": "4",
               "MODEL_PACKAGE_ARN": "", "BATCH_PART_MB": "1", "BATCH_FORMAT": "jsonl",
               "BATCH_CAPTURE_SAMPLE_RATE": "0", "POWERTOOLS_SERVICE_NAME": "batch"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from batch_scoring import app

        monkeypatch.setattr(app, "WORKDIR", tmp_path / "work")
        yield s3, app


def put_input(s3: Any, job: str, name: str, data: bytes) -> str:
    key = f"{names.batch_input_prefix(MODEL, job)}{name}"
    s3.put_object(Bucket=DATA, Key=key, Body=data)
    return key


def run_job(app: Any, execution_input: dict, *, items_per_child: int = 2, fail_parts: set[int] = frozenset()) -> tuple[dict, dict]:
    """Play the state machine: Plan, the map's children over the manifest, Summarize (with the map's error)."""
    plan = app.plan_handler({"input": execution_input, "execution_name": "exec-1"}, None)
    manifest = json.loads(boto3.client("s3").get_object(Bucket=DATA, Key=plan["manifest_key"])["Body"].read())
    state: dict[str, Any] = {"input": execution_input, "plan": plan}
    for k in range(0, len(manifest), items_per_child):
        items = [p for i, p in enumerate(manifest[k:k + items_per_child], start=k) if i not in fail_parts]
        if items:
            app.score_handler({"Items": items, "BatchInput": {"spec": plan["spec"]}}, None)
    if fail_parts:
        state["map_error"] = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "a child failed"}
    return plan, app.summarize_handler(state, None)


def rows(n: int, breast_cancer_dir: Path) -> bytes:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer().data
    return csv_text(["id", *feature_names(breast_cancer_dir)], [[f"c{i}", *data[i % len(data)]] for i in range(n)])


def scored(s3: Any, prefix: str) -> dict[str, list[OutputRow]]:
    found: dict[str, list[OutputRow]] = {}
    for obj in s3.list_objects_v2(Bucket=DATA, Prefix=prefix).get("Contents", []):
        if obj["Key"].rsplit("/", 1)[-1].startswith("part-"):
            body = s3.get_object(Bucket=DATA, Key=obj["Key"])["Body"].read()
            found[obj["Key"]] = [msgspec.json.decode(line, type=OutputRow) for line in body.splitlines()]
    return found


def test_a_landed_file_is_scored_in_parts_and_summarized(aws, breast_cancer_dir: Path) -> None:
    s3, app = aws
    event = json.loads((EVENTS / "s3_object_created_batch.json").read_text())
    key = event["detail"]["object"]["key"]  # what the trigger rule passes on as {"object_key": …}
    put_input(s3, "nightly-2026-12-01", "customers.csv", rows(15000, breast_cancer_dir))
    plan, summary = run_job(app, {"object_key": key})
    output = names.batch_output_prefix(MODEL, "nightly-2026-12-01")
    assert plan["parts"] >= 3 and plan["files"] == 1
    assert summary["status"] == "succeeded" and summary["rows"] == summary["scored"] == 15000
    assert summary["model"]["version"] == "4" and summary["model"]["source"] == "live"
    written = scored(s3, output)
    assert sorted(written) == [names.batch_part_key(output, "customers.csv", i, "jsonl") for i in range(plan["parts"])]
    ids = [r.id for part in sorted(written) for r in written[part]]
    assert ids == [f"c{i}" for i in range(15000)]
    stored = json.loads(s3.get_object(Bucket=DATA, Key=f"{output}customers.csv/{names.BATCH_SUMMARY}")["Body"].read())
    assert stored == summary


def test_a_rerun_writes_the_same_outputs_and_drops_stale_ones(aws, breast_cancer_dir: Path) -> None:
    s3, app = aws
    put_input(s3, "job", "a.csv", rows(6000, breast_cancer_dir))
    put_input(s3, "job", "_SUCCESS", b"")
    output = names.batch_output_prefix(MODEL, "job")
    _, first = run_job(app, {"job_id": "job", "part_mb": 1})
    before = scored(s3, output)
    _, again = run_job(app, {"job_id": "job", "part_mb": 1})
    assert scored(s3, output) == before and again["rows"] == first["rows"] == 6000
    _, whole = run_job(app, {"job_id": "job", "part_mb": 64})  # one part now: the earlier parts are stale
    after = scored(s3, output)
    assert list(after) == [names.batch_part_key(output, "a.csv", 0, "jsonl")] and whole["parts"] == 1
    assert [r.id for r in after[next(iter(after))]] == [r.id for key in sorted(before) for r in before[key]]
    assert json.loads(s3.get_object(Bucket=DATA, Key=f"{output}{names.BATCH_SUMMARY}")["Body"].read())["files"] == 1


def test_a_failed_child_fails_the_job_and_names_the_part(aws, breast_cancer_dir: Path) -> None:
    s3, app = aws
    put_input(s3, "job", "a.csv", rows(6000, breast_cancer_dir))
    plan, summary = run_job(app, {"job_id": "job"}, fail_parts={1})
    assert summary["status"] == "failed"
    assert summary["parts_failed"] == ["a.csv part 1: not scored (a child failed)"]
    assert summary["rows"] < 6000 and summary["parts"] == plan["parts"]


def test_a_named_registry_version_is_pinned(aws, breast_cancer_dir: Path) -> None:
    from training import registry

    s3, app = aws
    sagemaker = boto3.client("sagemaker")
    url, sha = app.env.text("MODEL_DATA_URL"), app.env.text("MODEL_SHA256")
    registry.register(sagemaker, model_name=MODEL, run_id="r1", model_data_url=url, sha256=sha, metrics={"accuracy": 0.9})
    put_input(s3, "job", "a.jsonl", b'{"x": 1}\n')
    plan = app.plan_handler({"input": {"job_id": "job", "model_version": 1}, "execution_name": "e"}, None)
    assert plan["spec"]["model"]["version"] == "1" and plan["spec"]["model"]["sha256"] == sha
    assert plan["spec"]["model"]["source"].startswith("registry version 1")
    registry.reject(sagemaker, MODEL, 1)
    with pytest.raises(PlanError, match="version 1 is Rejected"):
        app.plan_handler({"input": {"job_id": "job", "model_version": 1}, "execution_name": "e"}, None)


def test_a_tampered_pin_is_refused_where_parts_are_scored(aws, breast_cancer_dir: Path) -> None:
    s3, app = aws
    put_input(s3, "job", "a.csv", rows(10, breast_cancer_dir))
    plan = app.plan_handler({"input": {"job_id": "job"}, "execution_name": "e"}, None)
    plan["spec"]["model"]["sha256"] = "0" * 64
    manifest = json.loads(s3.get_object(Bucket=DATA, Key=plan["manifest_key"])["Body"].read())
    with pytest.raises(model_pin.ModelError, match="sha256"):
        app.score_handler({"Items": manifest, "BatchInput": {"spec": plan["spec"]}}, None)


@pytest.mark.parametrize(("execution_input", "message"), [
    ({"job_id": "empty"}, "no input files under s3://data-bucket/batch/breast-cancer/input/empty/"),
    ({"job_id": "a/b"}, "job_id 'a/b'"),
    ({"job_id": "j", "colour": 1}, "unknown field"),
    ({"job_id": "j", "format": "xml"}, "format must be one of jsonl, csv"),
    ({"job_id": "j", "model_version": "latest"}, "model_version must be a registry version number"),
    ({"job_id": "j", "objects": ["s3://other/x.csv"]}, "not in the data bucket"),
    ({"job_id": "j", "objects": ["models/x.csv"]}, "outside batch/breast-cancer/input/ and datasets/"),
    ({"object_key": "batch/breast-cancer/input/x.csv"}, "a landed file must be under"),
    ({"job_id": "j", "objects": ["datasets/breast-cancer/missing.csv"]}, "cannot read s3://data-bucket/datasets"),
])
def test_bad_job_requests_name_the_problem(aws, execution_input: dict, message: str) -> None:
    _, app = aws
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace("/", "/")):
        app.plan_handler({"input": execution_input, "execution_name": "e"}, None)


def test_a_landed_marker_or_scratch_file_is_nothing_to_score(aws) -> None:
    _, app = aws
    for key in ("batch/breast-cancer/input/j/_SUCCESS", "batch/breast-cancer/input/j/_temporary/0/part-0.csv"):
        plan = app.plan_handler({"input": {"object_key": key}, "execution_name": "e"}, None)
        assert plan["parts"] == 0 and plan["skipped"] == f"{key} is a marker or scratch file, not input"


def test_no_live_model_and_no_version_is_a_clear_plan_error(aws, monkeypatch: pytest.MonkeyPatch,
                                                             breast_cancer_dir: Path) -> None:
    s3, app = aws
    monkeypatch.setenv("MODEL_DATA_URL", "")
    put_input(s3, "job", "a.csv", rows(3, breast_cancer_dir))
    with pytest.raises(PlanError, match="no model has been promoted"):
        app.plan_handler({"input": {"job_id": "job"}, "execution_name": "e"}, None)


def test_a_capture_sample_lands_beside_live_traffic(aws, monkeypatch: pytest.MonkeyPatch, breast_cancer_dir: Path) -> None:
    from contracts.capture_record import parse_line

    s3, app = aws
    monkeypatch.setenv("BATCH_CAPTURE_SAMPLE_RATE", "0.1")
    put_input(s3, "job", "a.csv", rows(2000, breast_cancer_dir))
    run_job(app, {"job_id": "job", "part_mb": 64})
    objects = s3.list_objects_v2(Bucket=CAPTURE, Prefix=names.capture_prefix(MODEL))["Contents"]
    import gzip

    records = [parse_line(line) for obj in objects
               for line in gzip.decompress(s3.get_object(Bucket=CAPTURE, Key=obj["Key"])["Body"].read()).splitlines()]
    assert 120 < len(records) < 280
    assert {r.request_id for r in records} == {"batch:job"} and records[0].model_version == "4"
    assert set(records[0].features) == set(feature_names(breast_cancer_dir))


def test_a_url_encoded_key_is_found(aws, breast_cancer_dir: Path) -> None:
    s3, app = aws
    put_input(s3, "job 1", "day one.csv", rows(5, breast_cancer_dir))
    plan = app.plan_handler({"input": {"object_key": "batch/breast-cancer/input/job+1/day+one.csv"}, "execution_name": "e"},
                            None)
    assert plan["files"] == 1 and plan["spec"]["job_id"] == "job 1"


def test_gzip_json_lines_scored_on_s3_to_csv(aws, breast_cancer_dir: Path) -> None:
    import csv
    import gzip
    import io

    from sklearn.datasets import load_breast_cancer

    s3, app = aws
    names_ = feature_names(breast_cancer_dir)
    docs = [dict(zip(names_, map(float, row))) | {"id": f"j{i}"} for i, row in enumerate(load_breast_cancer().data[:500])]
    docs[10][names_[0]] = "x"
    body = gzip.compress(b"".join(json.dumps(d).encode() + b"\n" for d in docs))
    put_input(s3, "gz", "day.jsonl.gz", body)
    plan, summary = run_job(app, {"job_id": "gz", "format": "csv"})
    assert plan["parts"] == 1 and summary["status"] == "completed_with_errors"
    assert (summary["rows"], summary["scored"], summary["errors"]) == (500, 499, 1)
    output = names.batch_output_prefix(MODEL, "gz")
    table = list(csv.DictReader(io.StringIO(s3.get_object(
        Bucket=DATA, Key=names.batch_part_key(output, "day.jsonl.gz", 0, "csv"))["Body"].read().decode())))
    assert len(table) == 499 and table[0]["id"] == "j0" and "j10" not in {r["id"] for r in table}
    (error,) = s3.get_object(Bucket=DATA, Key=names.batch_errors_key(output, "day.jsonl.gz", 0))["Body"].read().splitlines()
    assert json.loads(error) == {"file": "day.jsonl.gz", "row": 11, "id": "j10",
                                 "errors": [f"{names_[0]}: expected a number, got string"]}


def test_a_part_this_run_did_not_score_is_failed_even_with_an_earlier_run_s_stats(aws, breast_cancer_dir: Path) -> None:
    s3, app = aws
    put_input(s3, "job", "a.csv", rows(6000, breast_cancer_dir))
    _, first = run_job(app, {"job_id": "job"})
    assert first["status"] == "succeeded" and first["parts"] >= 2
    _, second = run_job(app, {"job_id": "job"}, fail_parts={1})
    assert second["status"] == "failed" and second["parts_failed"] == ["a.csv part 1: not scored (a child failed)"]
