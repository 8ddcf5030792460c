"""The validate step's split of a data set with production rows, and odd values from BuildDataset to the split."""
from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest
from moto import mock_aws

from contracts import names
from contracts.capture_record import record_line
from tests.training.training_helpers import binary_rows, load_event
from training.dataset import DataError, parse_csv
from training.train import DEFAULT_SEED, DEFAULT_TEST_SIZE, split_indices

DATA, CAPTURE, REPORTS, ARTIFACTS = "mlops-test-data", "mlops-test-capture", "mlops-test-reports", "mlops-test-artifacts"
MODEL = "tiny-binary"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch):
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (DATA, CAPTURE, REPORTS, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        for name, value in {"DATA_BUCKET": DATA, "REPORTS_BUCKET": REPORTS, "ARTIFACTS_BUCKET": ARTIFACTS,
                            "CAPTURE_BUCKET": CAPTURE, "PRODUCTION_LABELS": "true", "RECENT_SHARE": "0"}.items():
            monkeypatch.setenv(name, value)
        yield importlib.import_module("pipeline.app")


def _read(uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def rows_csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode()


def _text_rows(rows: list[list]) -> list[list[str]]:
    return [[str(v) for v in row] for row in rows]


def _validate(app, lambda_context, run_id: str, configured: list[list[str]], production: list[list[str]]) -> dict:
    """Validate train.csv = configured rows then production rows, with the lineage BuildDataset would pass."""
    body = rows_csv(binary_rows(1)[0], configured + production)
    key = f"datasets/{MODEL}/versions/{run_id}/train.csv"
    boto3.client("s3").put_object(Bucket=DATA, Key=key, Body=body)
    lineage = {"data_uri": f"s3://{DATA}/{key}", "data_sha256": hashlib.sha256(body).hexdigest(),
               "rows": len(configured) + len(production), "production_rows": len(production), "recent_rows": 0}
    event = load_event("pipeline_validate.json") | {"run_id": run_id, "data_uri": lineage["data_uri"],
                                                    "lineage": lineage}
    return app.validate_handler(event, lambda_context)


def _split(out: dict) -> dict[str, list[list[str]]]:
    """The split's rows, per part, as the training job reads them."""
    parts = {}
    for part in names.SPLIT_PARTS:
        table = parse_csv(_read(out[f"{part}_uri"] + names.SPLIT_FILE), part)
        parts[part] = [list(row) for row in zip(*table.columns)]
    return parts


def test_configured_rows_keep_their_side_and_production_rows_keep_theirs_across_runs(app, lambda_context):
    configured = _text_rows(binary_rows(1000, seed=3)[1])
    production = _text_rows(binary_rows(100, seed=4)[1])
    alone = _split(_validate(app, lambda_context, "run-1", configured, []))  # how the first model was split
    first = _split(_validate(app, lambda_context, "run-2", configured, production[:50]))
    second = _split(_validate(app, lambda_context, "run-3", configured, production))

    for run in (first, second):  # the configured rows exactly as on their own: none the live model trained on is held out
        assert run["test"][:len(alone["test"])] == alone["test"]
        assert run["train"][:len(alone["train"])] == alone["train"]
    # a production row keeps its side: one the previous run trained on is never in this run's hold-out
    assert set(map(tuple, first["test"])) <= set(map(tuple, second["test"]))
    assert not set(map(tuple, first["train"])) & set(map(tuple, second["test"]))
    held_out = len(second["test"]) - len(alone["test"])
    assert len(alone["test"]) == 200 and 5 <= held_out <= 40  # ~ test-size of the 100 production rows


def test_the_split_of_a_run_without_production_rows_is_as_it_always_was(app, lambda_context):
    configured = _text_rows(binary_rows(300, seed=5)[1])
    out = _validate(app, lambda_context, "run-1", configured, [])
    y = np.array([row[-1] for row in configured], dtype=object)
    train, test = split_indices(y, "binary", DEFAULT_TEST_SIZE, DEFAULT_SEED)
    header = binary_rows(1)[0]
    assert _read(out["train_uri"] + names.SPLIT_FILE) == rows_csv(header, [configured[i] for i in train])
    assert _read(out["test_uri"] + names.SPLIT_FILE) == rows_csv(header, [configured[i] for i in test])


def test_a_lineage_that_does_not_describe_the_data_fails_the_run(app, lambda_context):
    configured = _text_rows(binary_rows(200, seed=6)[1])
    body = rows_csv(binary_rows(1)[0], configured)
    boto3.client("s3").put_object(Bucket=DATA, Key="d/train.csv", Body=body)
    lineage = {"data_uri": f"s3://{DATA}/d/train.csv", "rows": 190, "production_rows": 20}
    event = load_event("pipeline_validate.json") | {"data_uri": lineage["data_uri"], "lineage": lineage}
    with pytest.raises(DataError, match="which rows are production rows is unknown"):
        app.validate_handler(event, lambda_context)


ODD = ["bl\u2028ue", "gr\neen", "a\r\nb", "lone\rcr", "x\x85\x0b\x0c\x1c\x1d\x1e\u2029y", 'say "hi", twice']


def test_a_value_with_line_breaks_survives_build_dataset_and_validate(app, lambda_context):
    header, configured = binary_rows(200, seed=7)
    config_key = f"incoming/{MODEL}/data.csv"
    boto3.client("s3").put_object(Bucket=DATA, Key=config_key, Body=rows_csv(header, _text_rows(configured)))
    captured = [{"a": 0.1 * i, "b": None if i % 5 == 0 else 0.5, "color": ODD[i] if i < len(ODD) else "red"}
                for i in range(40)]
    lines = b"".join(record_line(time=(NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"), request_id="r",
                                 model_name=MODEL, model_version="1", features=features, prediction="yes",
                                 probability={"no": 0.5, "yes": 0.5}, id=f"p{i}")
                     for i, features in enumerate(captured))
    s3 = boto3.client("s3")
    s3.put_object(Bucket=CAPTURE, Key=f"{names.capture_prefix(MODEL)}{NOW - timedelta(hours=2):%Y/%m/%d/%H}/part.gz",
                  Body=gzip.compress(lines))
    labels = "".join(json.dumps({"id": f"p{i}", "label": "yes" if i % 2 else "no"}) + "\n" for i in range(40))
    s3.put_object(Bucket=CAPTURE, Key=f"{names.labels_prefix(MODEL)}bulk/labels.jsonl", Body=labels.encode())

    dataset = app.build_dataset_handler({"model_name": MODEL, "run_id": "run-9", "data_uri": f"s3://{DATA}/{config_key}",
                                         "target": "label", "task": ""}, lambda_context)
    assert dataset["lineage"]["production_rows"] == 40 and dataset["lineage"]["rows"] == 240
    event = load_event("pipeline_validate.json") | {"run_id": "run-9", "data_uri": dataset["data_uri"],
                                                    "lineage": dataset["lineage"]}
    out = app.validate_handler(event, lambda_context)
    assert out["rows"] == 240
    split = _split(out)
    colors = [row[2] for part in split.values() for row in part]
    assert len(colors) == 240 and all(colors.count(value) == 1 for value in ODD)  # each read back as captured
    assert json.loads(_read(dataset["lineage_uri"]))["production"]["unwritable"] == 0
