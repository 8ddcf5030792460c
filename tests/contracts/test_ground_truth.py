"""The ground-truth record: CSV and JSON Lines labels files, malformed rows counted, a later label in force."""
from __future__ import annotations

import pytest

from contracts.ground_truth import GroundTruth, LabelFileError, latest, parse_line, read_labels


def test_csv_with_time_and_json_lines_read_alike(tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("id,label,time\np1,yes,2026-01-01T00:00:00Z\np2,no,\n")
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text('{"id": "p1", "label": "yes", "time": "2026-01-01T00:00:00Z"}\n\n{"id": "p2", "label": "no"}\n')
    expected = [GroundTruth(id="p1", label="yes", time="2026-01-01T00:00:00Z"), GroundTruth(id="p2", label="no")]
    assert read_labels(csv_file).records == expected
    assert read_labels(jsonl).records == expected


def test_json_labels_keep_their_type():
    assert parse_line(b'{"id": "a", "label": 3.5}').label == 3.5


@pytest.mark.parametrize("line", ['{"id": "a"}', '{"id": "", "label": "x"}', '{"id": 7, "label": "x"}',
                                  '{"id": "a", "label": "x", "time": "yesterday"}', "[1]", "not json"])
def test_malformed_lines_raise(line):
    with pytest.raises(ValueError):
        parse_line(line)


def test_malformed_rows_are_counted_not_dropped_silently(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("id,label,time\np1,yes\n,no\np3,\np4,no,not-a-time\np5,yes\n")
    labels = read_labels(path)
    assert [r.id for r in labels.records] == ["p1", "p5"] and labels.malformed == 3
    path = tmp_path / "l.jsonl"
    path.write_text('{"id": "p1", "label": 1}\n{"id": "p2"}\nnot json\n')
    labels = read_labels(path)
    assert len(labels.records) == 1 and labels.malformed == 2


@pytest.mark.parametrize("text, message", [
    ("key,value\na,1\n", r"no .id. or .label. column \(columns: key, value\)"),
    ("id,target\na,1\n", "no 'label' column"),
    ('{"key": 1}\n', "no line is a label record"),
    ("\n", "is empty"),
])
def test_files_without_id_and_label_are_refused(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(LabelFileError, match=message):
        read_labels(path)


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(LabelFileError, match="cannot read the labels file"):
        read_labels(tmp_path / "absent.csv")


def test_a_later_label_replaces_an_earlier_one():
    records = [GroundTruth(id="a", label="no"), GroundTruth(id="b", label="no"), GroundTruth(id="a", label="yes")]
    in_force, replaced = latest(records)
    assert in_force["a"].label == "yes" and replaced == 1


def test_a_later_time_wins_over_file_order():
    records = [GroundTruth(id="a", label="new", time="2026-01-02T00:00:00+00:00"),
               GroundTruth(id="a", label="old", time="2026-01-01T00:00:00"),  # no zone: UTC
               GroundTruth(id="b", label="first", time="2026-01-01T00:00:00Z"), GroundTruth(id="b", label="untimed")]
    in_force, replaced = latest(records)
    assert in_force["a"].label == "new" and in_force["b"].label == "untimed" and replaced == 2
