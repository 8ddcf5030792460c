"""The evaluation gate: pass, reject, no production, and the CLI's exit codes."""
from __future__ import annotations

import json

import pytest

from tests.training.training_helpers import write_csv
from training.evaluate import gate, main
from training.pipeline_model import ModelParams
from training.train import TrainConfig, train


@pytest.fixture(scope="module")
def weak_model(data_dir, tmp_path_factory):
    """A breast-cancer model trained on two uninformative features: a poor candidate."""
    from training.dataset import read_csv

    table = read_csv(data_dir / "breast_cancer.csv")
    keep = ["mean_fractal_dimension", "texture_error", "diagnosis"]
    rows = list(zip(*(table.column(name) for name in keep)))
    root = tmp_path_factory.mktemp("weak")
    csv = write_csv(root / "weak.csv", keep, [list(r) for r in rows])
    config = TrainConfig(target="diagnosis", model_name="breast-cancer", params=ModelParams(l2=1000.0))
    return train(csv, root / "model", config).model_dir


def _run(capsys, *args: str) -> tuple[int, dict]:
    code = main(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_no_production_passes_on_the_floor(capsys, trained, data_dir, bc_tarball, tmp_path):
    code, decision = _run(capsys, "--candidate", str(bc_tarball[0]), "--test", str(data_dir / "breast_cancer.csv"),
                          "--out", str(tmp_path / "d.json"))
    assert code == 0 and decision["passed"] and decision["production"] is None
    assert decision["reason"].startswith("no production model; candidate roc_auc")
    assert json.loads((tmp_path / "d.json").read_text()) == decision


def test_equal_candidate_passes_against_production(capsys, trained, data_dir, bc_tarball):
    code, decision = _run(capsys, "--candidate", str(bc_tarball[0]), "--production", str(trained["breast_cancer"].model_dir),
                          "--test", str(data_dir / "breast_cancer.csv"))
    assert code == 0 and decision["candidate"] == decision["production"]
    assert decision["threshold"] == pytest.approx(decision["production"]["roc_auc"] - 0.01)


def test_worse_candidate_is_rejected(capsys, trained, data_dir, weak_model):
    code, decision = _run(capsys, "--candidate", str(weak_model), "--production", str(trained["breast_cancer"].model_dir),
                          "--test", str(data_dir / "breast_cancer.csv"))
    assert code == 1 and not decision["passed"]
    assert decision["candidate"]["roc_auc"] < decision["threshold"]
    assert "< production" in decision["reason"]


def test_floor_rejects_without_production(capsys, data_dir, weak_model):
    code, decision = _run(capsys, "--candidate", str(weak_model), "--test", str(data_dir / "breast_cancer.csv"),
                          "--floor", "0.99")
    assert code == 1 and "< floor 0.99" in decision["reason"]


def test_production_of_another_schema_falls_back_to_the_floor(capsys, trained, data_dir, weak_model, tmp_path):
    """The weak model's test data lacks most of production's features: production cannot be scored."""
    from training.dataset import read_csv

    table = read_csv(data_dir / "breast_cancer.csv")
    keep = ["mean_fractal_dimension", "texture_error", "diagnosis"]
    test_csv = write_csv(tmp_path / "narrow.csv", keep, [list(r) for r in zip(*(table.column(n) for n in keep))])
    code, decision = _run(capsys, "--candidate", str(weak_model), "--production", str(trained["breast_cancer"].model_dir),
                          "--test", str(test_csv), "--floor", "0.1")
    assert code == 0 and decision["production"] is None
    assert "production cannot be scored on this data" in decision["reason"] and "has no column 'mean_radius'" in decision["reason"]


def test_errors_exit_2(capsys, tmp_path, data_dir, bc_tarball):
    assert main(["--candidate", str(tmp_path / "nothing.tar.gz"), "--test", str(data_dir / "breast_cancer.csv")]) == 2
    assert "no such model" in capsys.readouterr().err
    tampered = tmp_path / "model.tar.gz"
    tampered.write_bytes(b"not a tarball")
    assert main(["--candidate", str(tampered), "--test", str(data_dir / "breast_cancer.csv")]) == 2
    assert "cannot be extracted" in capsys.readouterr().err
    assert main(["--candidate", str(bc_tarball[0]), "--test", str(data_dir / "binary.csv")]) == 2
    assert "has no column" in capsys.readouterr().err


@pytest.mark.parametrize("task, candidate, production, passed", [
    ("binary", {"roc_auc": 0.905}, {"roc_auc": 0.91}, True),
    ("binary", {"roc_auc": 0.89}, {"roc_auc": 0.91}, False),
    ("multiclass", {"f1_macro": 0.45}, None, False),
    ("regression", {"r2": 0.6}, {"r2": 0.2}, True),
    ("binary", {"accuracy": 1.0}, None, False),  # AUC undefined: never a pass
])
def test_gate_rule(task, candidate, production, passed):
    assert gate(task, candidate, production, tolerance=0.01, floor=0.5)[0] is passed



# ------------------------------------------------------------------ the recent labelled production rows


def _recent_csv(data_dir, path, *, flip: bool = False, only: str | None = None, rows: int = 60):
    """Breast-cancer rows as recent production rows: labels flipped (today's data disagrees), or one class only."""
    from training.dataset import read_csv

    table = read_csv(data_dir / "breast_cancer.csv")
    body = [list(r) for r in zip(*table.columns)]
    swap = {"malignant": "benign", "benign": "malignant"}
    if flip:
        body = [[*r[:-1], swap[r[-1]]] for r in body]
    if only:
        body = [r for r in body if r[-1] == only]
    return write_csv(path, table.header, body[:rows])


def test_better_on_the_hold_out_but_worse_on_recent_rows_is_rejected(capsys, trained, data_dir, weak_model, tmp_path):
    """The good model against the weak one: far better on the hold-out, worse on recent rows whose labels turned."""
    recent = _recent_csv(data_dir, tmp_path / "recent.csv", flip=True)
    code, decision = _run(capsys, "--candidate", str(trained["breast_cancer"].model_dir), "--production", str(weak_model),
                          "--test", str(data_dir / "breast_cancer.csv"), "--recent", str(recent))
    assert code == 1 and not decision["passed"]
    assert decision["holdout"]["passed"] and decision["holdout"]["rows"] == 569
    block = decision["recent"]
    assert (block["rows"], block["metric"], block["passed"]) == (60, "roc_auc", False)
    assert block["candidate"] < block["production"] - 0.01 == pytest.approx(block["threshold"])
    assert decision["reason"].startswith("rejected on the 60 most recent labelled production rows: candidate roc_auc")
    assert "(hold-out: candidate roc_auc" in decision["reason"]


def test_as_good_on_recent_rows_passes_and_both_comparisons_are_recorded(capsys, trained, data_dir, bc_tarball, tmp_path):
    recent = _recent_csv(data_dir, tmp_path / "recent.csv")
    code, decision = _run(capsys, "--candidate", str(bc_tarball[0]), "--production", str(trained["breast_cancer"].model_dir),
                          "--test", str(data_dir / "breast_cancer.csv"), "--recent", str(recent))
    assert code == 0 and decision["passed"]
    for name in ("holdout", "recent"):
        block = decision[name]
        assert block["passed"] and block["candidate"] == block["production"], name
        assert block["candidate_metrics"] == block["production_metrics"]
    assert decision["recent"]["rows"] == 60 and len(decision["recent"]["sha256"]) == 64
    assert "; recent production rows (60): candidate roc_auc" in decision["reason"]


def test_recent_rows_of_one_class_compare_accuracy(capsys, trained, data_dir, weak_model, tmp_path):
    """No ROC AUC on one class: the comparison falls back to accuracy instead of failing or crashing."""
    recent = _recent_csv(data_dir, tmp_path / "recent.csv", only="malignant")
    code, decision = _run(capsys, "--candidate", str(trained["breast_cancer"].model_dir), "--production", str(weak_model),
                          "--test", str(data_dir / "breast_cancer.csv"), "--recent", str(recent))
    block = decision["recent"]
    assert block["metric"] == "accuracy" and "roc_auc" not in block["candidate_metrics"]
    assert "roc_auc is undefined on these rows, a class is missing: accuracy compared" in block["reason"]
    assert code == (0 if block["passed"] else 1) and block["candidate"] == block["candidate_metrics"]["accuracy"]


def test_without_production_the_recent_rows_are_scored_and_reported(capsys, trained, data_dir, tmp_path):
    recent = _recent_csv(data_dir, tmp_path / "recent.csv", flip=True)
    code, decision = _run(capsys, "--candidate", str(trained["breast_cancer"].model_dir),
                          "--test", str(data_dir / "breast_cancer.csv"), "--recent", str(recent))
    assert code == 0 and decision["passed"]  # nothing to compare with on the recent rows; the floor is the hold-out's
    block = decision["recent"]
    assert block["passed"] and block["production"] is None and block["threshold"] is None
    assert block["candidate"] < 0.5 and "no production scores to compare with" in block["reason"]


@pytest.mark.parametrize(("task", "candidate", "production", "passed", "metric"), [
    ("binary", {"roc_auc": 0.8, "accuracy": 0.7}, {"roc_auc": 0.805, "accuracy": 0.9}, True, "roc_auc"),
    ("binary", {"roc_auc": 0.7, "accuracy": 0.9}, {"roc_auc": 0.8, "accuracy": 0.7}, False, "roc_auc"),
    ("binary", {"accuracy": 0.6}, {"accuracy": 0.8}, False, "accuracy"),
    ("regression", {"rmse": 1.0}, {"rmse": 1.0}, True, "r2"),  # R² undefined (one row): not compared
    ("multiclass", {"f1_macro": 0.5}, None, True, "f1_macro"),
])
def test_recent_rule(task, candidate, production, passed, metric):
    from training.evaluate import compare_recent

    name, _, _, _, ok, reason = compare_recent(task, candidate, production, tolerance=0.01)
    assert (ok, name) == (passed, metric), reason
