"""The BuildDataset step on moto: configured rows plus labelled production rows, the recent split, the lineage."""
from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from contracts import names
from contracts.capture_record import CaptureRecord, record_line
from contracts.ground_truth import GroundTruth
from pipeline.production_data import (
    MIN_RECENT_ROWS,
    BuildSettings,
    Counts,
    build_dataset,
    csv_of,
    production_rows,
    recent_count,
    written_faithfully,
)
from tests.training.training_helpers import binary_rows, multiclass_rows, regression_rows, write_csv
from training.dataset import parse_csv

DATA, CAPTURE = "mlops-test-data", "mlops-test-capture"
MODEL, RUN = "tiny-binary", "run-7"
NOW = datetime.now(UTC).replace(microsecond=0)
CONFIGURED_KEY = f"datasets/{MODEL}/train.csv"
CONFIGURED = f"s3://{DATA}/{CONFIGURED_KEY}"


@pytest.fixture
def s3(tmp_path: Path):
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (DATA, CAPTURE):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=DATA, Key=CONFIGURED_KEY,
                          Body=write_csv(tmp_path / "binary.csv", *binary_rows(40)).read_bytes())
        yield client


def settings(**overrides) -> BuildSettings:
    return BuildSettings(**({"data_bucket": DATA, "production_labels": True, "recent_share": 0.0, "horizon_days": 14,
                             "capture_bucket": CAPTURE} | overrides))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def put_captures(s3, records: list[tuple[datetime, str, dict]], model: str = MODEL, name: str = "part") -> None:
    """Capture records (prediction time, id, features) in their hour partitions, gzip JSON Lines like Firehose's."""
    by_hour: dict[str, list[bytes]] = {}
    for moment, id_, features in records:
        key = f"{names.capture_prefix(model)}{moment:%Y/%m/%d/%H}/{name}-{moment:%Y%m%d%H}.gz"
        by_hour.setdefault(key, []).append(record_line(
            time=iso(moment), request_id="req", model_name=model, model_version="1", features=features,
            prediction="yes", probability={"no": 0.4, "yes": 0.6}, id=id_))
    for key, lines in by_hour.items():
        s3.put_object(Bucket=CAPTURE, Key=key, Body=gzip.compress(b"".join(lines)))


def feedback(name: str) -> str:
    """A key under labels/<model>/ where the labels Firehose stream delivers: feedback/YYYY/MM/DD/HH/<name>."""
    return f"feedback/{NOW:%Y/%m/%d/%H}/{name}"


def put_labels(s3, key: str, labels: list[dict], *, gz: bool = True, model: str = MODEL) -> None:
    body = "".join(json.dumps(label) + "\n" for label in labels).encode()
    s3.put_object(Bucket=CAPTURE, Key=f"{names.labels_prefix(model)}{key}", Body=gzip.compress(body) if gz else body)


def read(s3, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def rows_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def test_rows_join_by_id_with_the_last_capture_and_the_latest_label(s3):
    put_captures(s3, [
        (NOW - timedelta(hours=3), "p1", {"a": 1.5, "b": None, "color": "red"}),
        (NOW - timedelta(hours=2), "p1", {"a": 2.5, "b": 0.5, "color": "blue"}),  # the last of p1: used
        (NOW - timedelta(hours=1), "p2", {"a": 3, "b": None, "color": "green", "extra": 9}),
        (NOW - timedelta(hours=1), "p3", {"a": 0.1, "b": 0.2, "color": "red"}),  # never labelled
        (NOW - timedelta(minutes=30), "p5", {"a": 0.1, "b": 0.2, "color": "red"}),
    ])
    put_labels(s3, feedback("labels-1.gz"), [
        {"id": "p1", "label": "no", "time": iso(NOW - timedelta(minutes=50))},
        {"id": "p1", "label": "yes", "time": iso(NOW - timedelta(minutes=20))},  # the latest: in force
        {"id": "p2", "label": "yes", "time": iso(NOW - timedelta(minutes=20))},
        {"id": "p4", "label": "no", "time": iso(NOW - timedelta(minutes=20))},  # no captured prediction
        {"id": "p5", "label": "maybe", "time": iso(NOW - timedelta(minutes=20))},  # not a class of the data
    ])
    s3.put_object(Bucket=CAPTURE, Key=f"{names.labels_prefix(MODEL)}bulk/broken.csv", Body=b"foo,bar\n1,2\n")
    broken_capture = f"{names.capture_prefix(MODEL)}{NOW - timedelta(hours=1):%Y/%m/%d/%H}/broken.gz"
    s3.put_object(Bucket=CAPTURE, Key=broken_capture, Body=b"\x1f\x8bnot gzip")

    result = build_dataset(s3, settings(), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED, target="label", now=NOW)

    prefix = f"s3://{DATA}/{names.dataset_version_prefix(MODEL, RUN)}"
    assert (result.data_uri, result.recent_uri) == (prefix + "train.csv", None)
    configured = rows_of(read(s3, CONFIGURED))
    train = rows_of(read(s3, result.data_uri))
    # the configured header and rows as they are, then the production rows by prediction time
    assert train[0] == configured[0] == ["a", "b", "color", "label"]
    assert train[:-2] == configured
    assert train[-2:] == [["2.5", "0.5", "blue", "yes"], ["3", "", "green", "yes"]]  # null: empty; extra: dropped
    production = result.document["production"]
    assert {k: production[k] for k in ("labels_read", "labels_in_force", "matched", "unmatched", "invalid",
                                       "training_rows", "recent_rows", "unreadable")} == {
        "labels_read": 5, "labels_in_force": 4, "matched": 2, "unmatched": 1, "invalid": 1, "training_rows": 2,
        "recent_rows": 0, "unreadable": 2}
    assert production["duplicates"] == {"captures": 1, "labels_replaced": 1}
    labels_error, capture_error = production["unreadable_objects"]
    assert labels_error.startswith(f"s3://{CAPTURE}/labels/{MODEL}/bulk/broken.csv: no 'id'")
    assert capture_error.startswith(f"s3://{CAPTURE}/{broken_capture}: ")
    assert production["window"] == {"first": iso(NOW - timedelta(hours=2))[:19] + "Z",
                                    "last": iso(NOW - timedelta(hours=1))[:19] + "Z"}
    assert production["capture_prefix"] == f"s3://{CAPTURE}/capture/{MODEL}/" and production["horizon_days"] == 14


def test_lineage_names_every_object_with_its_sha256(s3):
    put_captures(s3, [(NOW - timedelta(hours=1), "p1", {"a": 1, "b": 2, "color": "red"})])
    put_labels(s3, "bulk/labels.jsonl", [{"id": "p1", "label": "no"}], gz=False)  # no time: the upload's
    result = build_dataset(s3, settings(), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED, target="label", now=NOW)
    lineage = json.loads(read(s3, result.lineage_uri))
    assert lineage == result.document and result.lineage_uri.endswith(f"/versions/{RUN}/lineage.json")
    source = lineage["sources"][0]
    assert source == {"uri": CONFIGURED, "sha256": hashlib.sha256(read(s3, CONFIGURED)).hexdigest(), "rows": 40}
    train = lineage["outputs"]["train"]
    assert train == {"uri": result.data_uri, "sha256": hashlib.sha256(read(s3, result.data_uri)).hexdigest(), "rows": 41}
    assert lineage["outputs"]["recent"] is None and lineage["note"] is None and lineage["built_at"]
    assert (lineage["model_name"], lineage["run_id"]) == (MODEL, RUN)
    brief = result.output()["lineage"]
    assert brief == {"data_uri": result.data_uri, "data_sha256": train["sha256"], "rows": 41, "production_rows": 1,
                     "recent_rows": 0, "window": lineage["production"]["window"], "lineage_uri": result.lineage_uri}


def _many(s3, n: int) -> None:
    """n labelled predictions an hour apart, oldest first; feature a is the row's number."""
    put_captures(s3, [(NOW - timedelta(hours=n - i), f"p{i}", {"a": i, "b": 0.5, "color": "red"}) for i in range(n)])
    put_labels(s3, feedback("labels.gz"), [{"id": f"p{i}", "label": "yes" if i % 2 else "no"} for i in range(n)])


def test_the_most_recent_share_is_kept_out_of_training(s3):
    _many(s3, 60)
    result = build_dataset(s3, settings(recent_share=0.2), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED,
                           target="label", now=NOW)
    recent = rows_of(read(s3, result.recent_uri))
    train = rows_of(read(s3, result.data_uri))
    assert recent[0] == train[0] and [r[0] for r in recent[1:]] == [str(i) for i in range(48, 60)]  # the newest 12
    assert [r[0] for r in train[41:]] == [str(i) for i in range(48)]  # the older 48 after the 40 configured rows
    assert result.lineage.recent_rows == 12 and result.lineage.production_rows == 48
    recent_out = result.document["outputs"]["recent"]
    assert recent_out == {"uri": result.recent_uri, "sha256": hashlib.sha256(read(s3, result.recent_uri)).hexdigest(),
                          "rows": 12}


def test_too_few_recent_rows_all_go_to_training(s3):
    _many(s3, 40)  # 20% of 40 is 8 < MIN_RECENT_ROWS
    result = build_dataset(s3, settings(recent_share=0.2), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED,
                           target="label", now=NOW)
    assert result.recent_uri is None and result.lineage.production_rows == 40
    assert (recent_count(49, 0.2), recent_count(50, 0.2), recent_count(100, 0.25)) == (0, MIN_RECENT_ROWS, 25)


def test_labels_and_predictions_beyond_the_horizon_are_left_out(s3):
    put_captures(s3, [(NOW - timedelta(days=20), "old", {"a": 1, "b": 2, "color": "red"}),
                      (NOW - timedelta(hours=5), "p1", {"a": 1, "b": 2, "color": "red"}),
                      (NOW - timedelta(hours=5), "p2", {"a": 1, "b": 2, "color": "red"})])
    put_labels(s3, feedback("labels.gz"), [
        {"id": "old", "label": "no"},  # its prediction is 20 days old: unmatched
        {"id": "p1", "label": "no", "time": iso(NOW - timedelta(days=15))},  # arrived before the horizon
        {"id": "p2", "label": "yes"}])
    result = build_dataset(s3, settings(), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED, target="label", now=NOW)
    production = result.document["production"]
    assert (production["stale_labels"], production["unmatched"], production["matched"]) == (1, 1, 1)
    # Much later, every label object was written before the horizon: none is read.
    later = build_dataset(s3, settings(), model_name=MODEL, run_id="run-8", data_uri=CONFIGURED, target="label",
                          now=NOW + timedelta(days=30))
    assert later.data_uri == CONFIGURED and later.document["production"]["label_objects"] == 0
    assert later.lineage.note.startswith("no labelled production rows in the last 14 days")


def test_with_production_labels_off_the_configured_data_is_used_as_it_is(s3):
    _many(s3, 5)
    result = build_dataset(s3, settings(production_labels=False), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED,
                           target="label", now=NOW)
    assert (result.data_uri, result.recent_uri) == (CONFIGURED, None)
    lineage = json.loads(read(s3, result.lineage_uri))  # still written: every run has lineage
    assert lineage["note"] == "PRODUCTION_LABELS is off: the run trains on the configured data as it is"
    assert lineage["production"] is None and lineage["outputs"]["train"] == lineage["sources"][0]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=DATA, Prefix="datasets/")["Contents"]]
    assert sorted(listed) == [CONFIGURED_KEY, f"{names.dataset_version_prefix(MODEL, RUN)}lineage.json"]  # no copy


def test_without_labels_the_configured_data_is_used_and_the_lineage_says_why(s3):
    result = build_dataset(s3, settings(), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED, target="label", now=NOW)
    assert result.data_uri == CONFIGURED and result.lineage.production_rows == 0
    assert result.lineage.note == ("no labelled production rows in the last 14 days (labels in force 0, unmatched 0, "
                                   "invalid 0)")
    assert result.document["production"]["labels_read"] == 0


def test_numeric_classes_take_the_csv_text(s3, tmp_path):
    """Classes "0", "1", "2" in the CSV: labels 1 and 2.0 are "1" and "2"; 5 is no class of the data."""
    s3.put_object(Bucket=DATA, Key="datasets/tiny-multi/train.csv",
                  Body=write_csv(tmp_path / "multi.csv", *multiclass_rows(30)).read_bytes())
    put_captures(s3, [(NOW - timedelta(hours=2), "p1", {"size": 9.5, "shape": "round", "count": 3}),
                      (NOW - timedelta(hours=1), "p2", {"size": 14.0, "shape": None, "count": 1}),
                      (NOW - timedelta(hours=1), "p3", {"size": 1.0, "shape": "flat", "count": 1})], model="tiny-multi")
    put_labels(s3, feedback("l.gz"), [{"id": "p1", "label": 1}, {"id": "p2", "label": 2.0}, {"id": "p3", "label": 5}],
               model="tiny-multi")
    result = build_dataset(s3, settings(), model_name="tiny-multi", run_id=RUN,
                           data_uri=f"s3://{DATA}/datasets/tiny-multi/train.csv", target="kind", now=NOW)
    assert rows_of(read(s3, result.data_uri))[-2:] == [["9.5", "round", "3", "1"], ["14.0", "", "1", "2"]]
    assert result.document["production"]["invalid"] == 1


def test_regression_labels_must_be_finite_numbers(s3, tmp_path):
    s3.put_object(Bucket=DATA, Key="datasets/tiny-reg/train.csv",
                  Body=write_csv(tmp_path / "reg.csv", *regression_rows(30)).read_bytes())
    put_captures(s3, [(NOW - timedelta(hours=4 - i), f"p{i}", {"u": 0.25 * i, "v": -1.0}) for i in range(4)],
                 model="tiny-reg")
    s3.put_object(Bucket=CAPTURE, Key="labels/tiny-reg/bulk/prices.csv",
                  Body=b"id,label\np0,5012.5\np1,4990\np2,abc\np3,inf\n")
    result = build_dataset(s3, settings(), model_name="tiny-reg", run_id=RUN,
                           data_uri=f"s3://{DATA}/datasets/tiny-reg/train.csv", target="price", task="regression",
                           now=NOW)
    assert rows_of(read(s3, result.data_uri))[-2:] == [["0.0", "-1.0", "5012.5"], ["0.25", "-1.0", "4990"]]
    assert result.document["production"]["invalid"] == 2


def test_the_handler_reads_its_settings_and_returns_the_step_output(s3, monkeypatch, lambda_context):
    _many(s3, 60)
    for name, value in {"DATA_BUCKET": DATA, "CAPTURE_BUCKET": CAPTURE, "PRODUCTION_LABELS": "true",
                        "RECENT_SHARE": "0.25", "MODEL_QUALITY_HORIZON_DAYS": "7"}.items():
        monkeypatch.setenv(name, value)
    app = importlib.import_module("pipeline.app")
    out = app.build_dataset_handler({"model_name": MODEL, "run_id": RUN, "data_uri": CONFIGURED, "target": "label",
                                     "task": ""}, lambda_context)
    assert set(out) == {"data_uri", "recent_uri", "lineage_uri", "lineage"}
    assert out["lineage"]["recent_rows"] == 15 and out["lineage"]["production_rows"] == 45
    assert json.loads(read(s3, out["lineage_uri"]))["production"]["horizon_days"] == 7
    json.dumps(out)  # the state's JSON


def test_values_with_line_breaks_are_kept_and_a_row_that_would_not_read_back_is_counted(s3):
    header = ["a", "color", "label"]
    for value in ("bl\u2028ue", "gr\neen", "lone\rcr", "x\x85\x0b\x0c\x1c\x1d\x1e\u2029y", 'say "hi", twice'):
        assert written_faithfully(header, ["1.5", value, "yes"])
    assert not written_faithfully(header, ["1.5", "\ud800", "yes"])  # a lone surrogate: not UTF-8
    # a record built in memory (the capture decoder rejects such a string, so no capture object holds one)
    captures = {id_: (NOW, CaptureRecord(time=iso(NOW), request_id="r", model_name=MODEL, model_version="1",
                                         features={"a": 1.5, "color": color}, prediction="yes", id=id_))
                for id_, color in (("p1", "bl\u2028ue\nx"), ("p2", "\ud800"), ("p3", "red"))}
    labels = {id_: GroundTruth(id=id_, label="yes") for id_ in captures}
    counts = Counts()
    rows = production_rows(header, "label", ["no", "yes"], labels, captures, counts)
    assert [r.id for r in rows] == ["p1", "p3"] and (counts.matched, counts.unwritable) == (2, 1)
    assert counts.summary()["unwritable"] == 1
    table = parse_csv(csv_of(header, [r.cells for r in rows]), "train.csv")
    assert table.column("color") == ["bl\u2028ue\nx", "red"]


def test_only_a_labelled_ids_line_is_decoded_whole_and_malformed_lines_are_counted(s3):
    moment = NOW - timedelta(hours=1)
    good = record_line(time=iso(moment), request_id="r", model_name=MODEL, model_version="1",
                       features={"a": 1.5, "b": 2, "color": "red"}, prediction="yes", id="p1")
    lines = [
        good,
        good.replace(b'"id":"p1"', b'"id":"p2"').replace(b'{"a":1.5,"b":2,"color":"red"}', b"[1,2]"),  # labelled
        good.replace(b'"id":"p1"', b'"id":"p3"').replace(b'{"a":1.5,"b":2,"color":"red"}', b"[1,2]"),  # not labelled
        b"not json\n",
        json.dumps({"id": "p4", "time": iso(moment)}).encode() + b"\n",  # not a capture record
        good.replace(b'"id":"p1"', b'"id":"p5"').replace(iso(moment).encode(), b"yesterday"),
    ]
    key = f"{names.capture_prefix(MODEL)}{moment:%Y/%m/%d/%H}/part.gz"
    s3.put_object(Bucket=CAPTURE, Key=key, Body=gzip.compress(b"".join(lines)))
    put_labels(s3, feedback("labels.gz"), [{"id": p, "label": "yes", "time": iso(NOW - timedelta(minutes=5))}
                                          for p in ("p1", "p2", "p4", "p5")])
    result = build_dataset(s3, settings(), model_name=MODEL, run_id=RUN, data_uri=CONFIGURED, target="label", now=NOW)
    production = result.document["production"]
    assert (production["capture_records"], production["matched"], production["unmatched"]) == (6, 1, 3)
    # p3's features are skipped unread: its id is not labelled
    assert production["malformed"]["captures"] == 4
    assert rows_of(read(s3, result.data_uri))[-1] == ["1.5", "2", "red", "yes"]


def test_rows_of_plain_cells_are_counted_as_the_full_check_counts_them():
    values = ["", "0", "-1.5e-05", "3.25", "yes", "no", "True", "a_b", "+7", "x.y-z"]
    cells = [[values[(i * 7 + j * 3) % len(values)] for j in range(3)] + ["yes"] for i in range(30)]
    for header in (["a", "b", "color", "label"], ["a", "\ud800", "color", "label"], ["a", " b ", "c", "label"]):
        captures = {f"p{i}": (NOW, CaptureRecord(time=iso(NOW), request_id="r", model_name=MODEL, model_version="1",
                                                 features=dict(zip(header[:3], row[:3])), prediction="yes", id=f"p{i}"))
                    for i, row in enumerate(cells)}
        labels = {id_: GroundTruth(id=id_, label="yes") for id_ in captures}
        counts = Counts()
        rows = production_rows(header, "label", ["no", "yes"], labels, captures, counts)
        expected = [f"p{i}" for i, row in enumerate(cells) if written_faithfully(header, row)]
        assert sorted(r.id for r in rows) == sorted(expected) and counts.unwritable == len(cells) - len(expected)
    assert counts.unwritable == 0 and not written_faithfully(["a", "\ud800", "color", "label"], cells[0])
