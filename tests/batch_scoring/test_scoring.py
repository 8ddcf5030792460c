"""Scoring files locally: the serving rules and runtime, every row accounted for, both output formats."""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from batch_scoring.cli import run_local
from batch_scoring.planner import PlanError
from contracts.artifact import open_artifact
from inference.runtime import open_model
from inference.validation import FeatureReader, RequestError
from tests.batch_scoring.batch_helpers import csv_text, errors, feature_names, jsonl_text, outputs, row_number


def score(model_dir: Path, tmp_path: Path, files: dict[str, bytes], *, part_bytes: int = 1 << 20,
          output_format: str = "jsonl", workers: int = 1):
    src = tmp_path / "in"
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    out = tmp_path / "out"
    summary = run_local(model_dir, src, out, output_format=output_format, workers=workers, part_bytes=part_bytes,
                        job_id="t", progress=False)
    return summary, out


def training_rows(model_dir: Path, n: int = 40) -> list[list[float]]:
    from sklearn.datasets import load_breast_cancer

    return [list(map(float, row)) for row in load_breast_cancer().data[:n]]


def api_messages(model_dir: Path, row: dict) -> list[str]:
    """What POST /predict would say about this row."""
    reader = FeatureReader(open_artifact(model_dir).metadata.feature_schema)
    with pytest.raises(RequestError) as caught:
        reader.read([row], (), indexed=False)
    return [f"{'.'.join(map(str, i.loc))}: {i.msg}" if i.loc else i.msg for i in caught.value.issues]


def test_predictions_are_the_runtime_s_and_ids_name_file_and_row(breast_cancer_dir: Path, tmp_path: Path) -> None:
    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir)
    summary, out = score(breast_cancer_dir, tmp_path, {"day.csv": csv_text(names, rows)})
    assert (summary.status, summary.rows, summary.scored, summary.errors) == ("succeeded", 40, 40, 0)
    scored = outputs(out / "day.csv")
    art = open_artifact(breast_cancer_dir)
    expected = open_model(art).run(np.array(rows))
    classes = art.metadata.classes
    assert [r.id for r in scored] == [f"day.csv:{i}" for i in range(1, 41)]
    assert [r.prediction for r in scored] == [classes[k] for k in expected.values]
    assert np.allclose([[r.probabilities[c] for c in classes] for r in scored], expected.proba, rtol=0, atol=1e-12)
    assert {r.model_version for r in scored} == {art.metadata.model_version}
    assert summary.model.source == "directory"


def test_bad_rows_go_to_the_errors_file_with_the_api_s_reasons(breast_cancer_dir: Path, tmp_path: Path) -> None:
    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir, 10)
    text = [[*r] for r in rows]
    text[1][0] = "abc"  # not a number
    text[3][2] = None  # empty: missing, and training saw no missing values
    text[5][4] = "inf"
    text[7][1] = "1e200"
    lines = csv_text(names, text).decode().splitlines()
    lines[9] = lines[9] + ",1"  # row 9: one field too many
    summary, out = score(breast_cancer_dir, tmp_path, {"d.csv": ("\n".join(lines) + "\n").encode()})
    assert (summary.status, summary.rows, summary.scored, summary.errors) == ("completed_with_errors", 10, 5, 5)
    refused = {e.row: e for e in errors(out / "d.csv")}
    assert sorted(refused) == [2, 4, 6, 8, 9]
    assert refused[2].errors == api_messages(breast_cancer_dir, dict(zip(names, text[1])))
    assert refused[4].errors == api_messages(breast_cancer_dir, dict(zip(names, text[3])))
    assert refused[6].errors == api_messages(breast_cancer_dir, dict(zip(names, rows[5][:4] + [float("inf")] + rows[5][5:])))
    assert refused[8].errors == ["mean_texture: number out of range: at most 1e+100 in absolute value"]
    assert refused[9].errors == [f"expected {len(names)} fields as in the header, got {len(names) + 1}"]
    assert refused[2].id == "d.csv:2" and refused[2].file == "d.csv"
    assert sorted([row_number(r.id) for r in outputs(out / "d.csv")] + list(refused)) == list(range(1, 11))


def test_the_fast_and_general_csv_paths_agree(breast_cancer_dir: Path, tmp_path: Path) -> None:
    """An id column with a quoted value sends a chunk through the csv module: same predictions."""
    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir, 20)
    plain = csv_text(["id", *names, "extra"], [[f"r{i}", *r, "x"] for i, r in enumerate(rows)])
    quoted = plain.replace(b"r3,", b'"r,3",', 1)
    _, out1 = score(breast_cancer_dir, tmp_path / "a", {"p.csv": plain})
    _, out2 = score(breast_cancer_dir, tmp_path / "b", {"p.csv": quoted})
    first, second = outputs(out1 / "p.csv"), outputs(out2 / "p.csv")
    assert [r.id for r in first][:5] == ["r0", "r1", "r2", "r3", "r4"]
    assert [r.id for r in second][3] == "r,3"
    assert [(r.prediction, r.probabilities) for r in first] == [(r.prediction, r.probabilities) for r in second]


def test_parts_gzip_and_several_files_add_up(breast_cancer_dir: Path, tmp_path: Path) -> None:
    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir, 200)
    data = csv_text(names, rows)
    summary, out = score(breast_cancer_dir, tmp_path, {"a/x.csv": data, "b.csv.gz": gzip.compress(data)},
                         part_bytes=3000, workers=2)
    assert summary.files == 2 and summary.parts > 5 and summary.rows == 400 and summary.scored == 400
    assert [row_number(r.id) for r in outputs(out / "a/x.csv")] == list(range(1, 201))
    assert [r.prediction for r in outputs(out / "a/x.csv")] == [r.prediction for r in outputs(out / "b.csv.gz")]
    assert json.loads((out / "_summary.json").read_text())["rows"] == 400


def test_json_lines_rules_are_the_api_s(breast_cancer_dir: Path, tmp_path: Path) -> None:
    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir, 6)
    docs = [dict(zip(names, r)) | {"id": f"o-{i}", "note": "ignored"} for i, r in enumerate(rows)]
    docs[1][names[0]] = "12.5"  # a string where a number belongs
    docs[2][names[1]] = True
    del docs[3][names[2]]
    lines = jsonl_text(docs).splitlines()
    lines[4] = b"{not json"
    lines.insert(5, b"[1, 2]")
    summary, out = score(breast_cancer_dir, tmp_path, {"d.jsonl": b"\n".join(lines) + b"\n"})
    assert (summary.rows, summary.scored, summary.errors) == (7, 2, 5)
    refused = {e.row: e.errors for e in errors(out / "d.jsonl")}
    for row in (2, 3, 4):
        doc = {k: v for k, v in docs[row - 1].items() if k in names}
        assert refused[row] == api_messages(breast_cancer_dir, doc)
    assert refused[5][0].startswith("the line is not valid JSON")
    assert refused[6] == ["expected a JSON object per line, got list"]
    assert [r.id for r in outputs(out / "d.jsonl")] == ["o-0", "o-5"]


def test_categories_missing_values_and_warnings(mixed_dir: Path, tmp_path: Path) -> None:
    header = ["size", "color", "count", "code"]
    rows = [[10.5, "red", 1, "1"], [None, None, 2, "2"], [12.0, "purple", 3, "1"], [9.0, "blue", "x", "2"]]
    summary, out = score(mixed_dir, tmp_path, {"m.csv": csv_text(header, rows)})
    assert (summary.rows, summary.scored, summary.errors) == (4, 3, 1)
    scored = outputs(out / "m.csv")
    assert [row_number(r.id) for r in scored] == [1, 2, 3]
    assert scored[2].warnings == ["color: category 'purple' was not seen in training; the model ignores it"]
    assert scored[0].warnings is None
    assert errors(out / "m.csv")[0].errors == ["count: expected a number, got string"]
    art = open_artifact(mixed_dir)
    X = np.array([[10.5, "red", 1.0, "1"], [np.nan, "__missing__", 2.0, "2"], [12.0, "purple", 3.0, "1"]], dtype=object)
    X[:, [0, 2]] = X[:, [0, 2]].astype(float)
    expected = open_model(art).run(X)
    assert [r.prediction for r in scored] == [art.metadata.classes[k] for k in expected.values]


def test_regression_and_csv_output(regression_dir: Path, tmp_path: Path) -> None:
    rows = [[0.5, -1.0], [1.5, 2.0], [0.0, 0.0]]
    summary, out = score(regression_dir, tmp_path, {"r.csv": csv_text(["a", "b", "id"], [[*r, f"k{i}"] for i, r in enumerate(rows)])},
                         output_format="csv")
    assert summary.output_format == "csv" and summary.scored == 3
    table = list(csv.DictReader(io.StringIO((out / "r.csv" / "part-00000.csv").read_text())))
    assert list(table[0]) == ["id", "prediction", "model_version"]
    expected = open_model(open_artifact(regression_dir)).run(np.array(rows)).values
    assert [r["id"] for r in table] == ["k0", "k1", "k2"]
    assert np.allclose([float(r["prediction"]) for r in table], expected)


def test_csv_output_of_a_classifier_quotes_what_needs_it(breast_cancer_dir: Path, tmp_path: Path) -> None:
    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir, 3)
    _, out = score(breast_cancer_dir, tmp_path, {"x,y.csv": csv_text(names, rows)}, output_format="csv")
    table = list(csv.DictReader(io.StringIO((out / "x,y.csv" / "part-00000.csv").read_text())))
    classes = open_artifact(breast_cancer_dir).metadata.classes
    assert [r["id"] for r in table] == ["x,y.csv:1", "x,y.csv:2", "x,y.csv:3"]
    assert abs(sum(float(table[0][f"probability_{c}"]) for c in classes) - 1) < 1e-9


def test_a_header_without_the_features_fails_the_file(breast_cancer_dir: Path, tmp_path: Path) -> None:
    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir, 3)
    summary, out = score(breast_cancer_dir, tmp_path, {"ok.csv": csv_text(names, rows),
                                                       "bad.csv": csv_text(names[1:], [r[1:] for r in rows])})
    assert summary.status == "failed" and summary.rows == 3
    assert summary.parts_failed == [f"bad.csv part 0: bad.csv: the header has no column {names[0]!r} "
                                    f"(the model's features: {', '.join(names)})"]
    assert not (out / "bad.csv" / "part-00000.jsonl").exists()


def test_an_unknown_file_type_is_refused_before_anything_is_scored(breast_cancer_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="notes.txt: unknown file type"):
        score(breast_cancer_dir, tmp_path, {"notes.txt": b"hello"})


def test_stray_bad_rows_anywhere_in_big_chunks_cost_only_their_own_rows(breast_cancer_dir: Path, tmp_path: Path) -> None:
    """Bad rows at random places (first, last, neighbours) in chunks the fast path is cut around: every row accounted."""
    import random

    names, rows = feature_names(breast_cancer_dir), training_rows(breast_cancer_dir, 300)
    rng = random.Random(9)
    text = [[f"k{i}", *rows[i % len(rows)]] for i in range(3000)]
    bad = sorted({0, 1, 2, 1499, 1500, 2999, *rng.sample(range(3000), 12)})
    for i in bad:
        text[i][1 + i % len(names)] = "bad"
    text[7][0] = ""  # no id: named by file and row
    data = csv_text(["id", *names], text)
    summary, out = score(breast_cancer_dir, tmp_path, {"b.csv": data})  # one chunk: the cuts happen inside it
    assert (summary.rows, summary.errors, summary.scored) == (3000, len(bad), 3000 - len(bad))
    assert sorted(e.row for e in errors(out / "b.csv")) == [i + 1 for i in bad]
    scored = outputs(out / "b.csv")
    expected_ids = [f"k{i}" if i != 7 else "b.csv:8" for i in range(3000) if i not in bad]
    assert [r.id for r in scored] == expected_ids
