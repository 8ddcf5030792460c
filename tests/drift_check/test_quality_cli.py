"""`mlops quality` on files: a trained model, its captured predictions (gzip and plain), labels; exit codes
0 ok, 1 degraded, 2 bad input, 3 insufficient labels, each with its message."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from contracts.artifact import MANIFEST, open_artifact
from contracts.capture_record import record_line
from demo.data import TARGET, write_breast_cancer_csv
from mlops import cli
from training.dataset import feature_matrix, read_csv, typed_columns
from training.train import TrainConfig, train


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> dict:
    """The breast-cancer model, every row's capture record split over a gzip and a plain file, the true labels."""
    root = tmp_path_factory.mktemp("quality")
    data = write_breast_cancer_csv(root / "bc.csv")
    model_dir = train(data, root / "model", TrainConfig(target=TARGET, model_name="bc")).model_dir
    model = open_artifact(model_dir)
    table = read_csv(data)
    schema = model.metadata.feature_schema
    X = feature_matrix(schema, typed_columns(table, schema))
    estimator, classes = model.load_estimator(), model.metadata.classes
    lines = [record_line(time=f"2026-01-01T00:00:{i % 60:02d}Z", request_id="r", model_name="bc", model_version="v",
                         features={}, prediction=str(p), probability=dict(zip(classes, map(float, row))), id=f"p{i}")
             for i, (p, row) in enumerate(zip(estimator.predict(X), estimator.predict_proba(X)))]
    captures = root / "captures"
    captures.mkdir()
    (captures / "part-1.gz").write_bytes(gzip.compress(b"".join(lines[:300])))
    (captures / "part-2").write_bytes(b"".join(lines[300:]))
    return {"root": root, "model": model_dir, "captures": captures, "truth": table.column(TARGET), "classes": classes}


def write_labels(path: Path, truth: list[str], classes: list[str], *, flip_every: int = 0, rows: int | None = None) -> Path:
    other = {classes[0]: classes[1], classes[1]: classes[0]}
    pairs = [(f"p{i}", other[t] if flip_every and i % flip_every == 0 else t) for i, t in enumerate(truth[:rows])]
    path.write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in pairs))
    return path


def quality(served: dict, labels: Path, *extra: str) -> tuple[int, dict | None]:
    out = served["root"] / "report.json"
    out.unlink(missing_ok=True)
    code = cli.main(["quality", "--model-dir", str(served["model"]), "--captures", str(served["captures"]),
                     "--labels", str(labels), "--output", str(out), *extra])
    return code, json.loads(out.read_text()) if out.exists() else None


def test_labels_as_good_as_training_are_ok_with_an_html_page(served, capsys):
    html = served["root"] / "report.html"
    code, report = quality(served, write_labels(served["root"] / "ok.csv", served["truth"], served["classes"]),
                           "--html", str(html))
    assert code == 0 and report["status"] == "ok", report["reason"]
    assert report["matched"] == report["predictions"] == 569 and report["unmatched_labels"] == 0
    assert report["baseline"].keys() == {"accuracy", "f1", "roc_auc"} and report["intervals"]["roc_auc"]
    assert report["estimated_calibrated"] is True
    assert abs(report["estimated"]["accuracy"] - report["realized"]["accuracy"]) < 0.05
    assert "quality: ok: roc_auc" in capsys.readouterr().out
    page = html.read_text()
    assert "<script" not in page and "Model quality bc" in page


def test_wrong_labels_are_degraded(served):
    code, report = quality(served, write_labels(served["root"] / "bad.csv", served["truth"], served["classes"],
                                                flip_every=3))
    assert code == 1 and report["status"] == "degraded" and "accuracy" in report["degraded_metrics"]


def test_too_few_labels_exit_3(served):
    labels = write_labels(served["root"] / "few.csv", served["truth"], served["classes"], rows=50)
    code, report = quality(served, labels)
    assert code == 3 and report["status"] == "insufficient_labels" and report["matched"] == 50
    assert quality(served, labels, "--min-labels", "40")[0] == 0


def bad(served: dict, tmp_path: Path, **change: str) -> list[str]:
    args = {"--model-dir": str(served["model"]), "--captures": str(served["captures"]),
            "--labels": str(write_labels(tmp_path / "l.csv", served["truth"], served["classes"])),
            "--output": str(tmp_path / "r.json")} | change
    return ["quality", *(x for kv in args.items() for x in kv)]


@pytest.mark.parametrize("change, message", [
    ({"--model-dir": "."}, f"is not a usable model artifact: {MANIFEST} is missing"),
    ({"--captures": "absent"}, "captures absent: no such file or directory"),
    ({"--labels": "absent.csv"}, "cannot read the labels file absent.csv"),
])
def test_bad_input_exits_2_with_a_message(served, tmp_path, capsys, change, message):
    assert cli.main(bad(served, tmp_path, **change)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_labels_without_id_and_label_columns_exit_2(served, tmp_path, capsys):
    labels = tmp_path / "nolabel.csv"
    labels.write_text("id,diagnosis\np1,malignant\n")
    assert cli.main(bad(served, tmp_path, **{"--labels": str(labels)})) == 2
    assert "no 'label' column (columns: id, diagnosis)" in capsys.readouterr().err


def test_a_corrupt_capture_file_exits_2(served, tmp_path, capsys):
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(b'{"id": "p1"}\n' * 100)[:40])
    assert cli.main(bad(served, tmp_path, **{"--captures": str(broken)})) == 2
    assert f"cannot read the capture file {broken}" in capsys.readouterr().err


def test_a_bad_floor_exits_2(served, tmp_path, capsys):
    assert cli.main([*bad(served, tmp_path), "--floor", "accuracy"]) == 2
    assert "--floor 'accuracy' is not METRIC=NUMBER" in capsys.readouterr().err
    assert cli.main([*bad(served, tmp_path), "--floor", "rmse=1"]) == 2
    assert "no floor for rmse" in capsys.readouterr().err


def test_an_unwritable_output_exits_2(served, tmp_path, capsys):
    args = bad(served, tmp_path, **{"--output": str(tmp_path / "no" / "such" / "r.json")})
    assert cli.main(args) == 2
    assert "quality: cannot write the report" in capsys.readouterr().err
