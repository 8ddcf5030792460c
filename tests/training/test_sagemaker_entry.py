"""The SageMaker container entry against a temporary /opt/ml layout."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contracts import artifact
from training.sagemaker_entry import main

SM_VARIABLES = ("SM_CHANNEL_TRAIN", "SM_CHANNEL_TEST", "SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR")


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An /opt/ml tree; the SM_* variables the entry sets are restored afterwards."""
    for name in SM_VARIABLES:
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    (tmp_path / "input" / "config").mkdir(parents=True)
    return tmp_path


def _hyperparameters(root: Path, **values: str) -> None:
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(values))


def _channel(root: Path, name: str, source: Path) -> None:
    (root / "input" / "data" / name).mkdir(parents=True)
    shutil.copy(source, root / "input" / "data" / name / "data.csv")


def test_success_writes_the_artifact_and_report(opt_ml, data_dir):
    _channel(opt_ml, "train", data_dir / "binary.csv")
    _hyperparameters(opt_ml, **{"target": "label", "model-name": "tiny", "categorical": "color", "task": "binary",
                                "run-id": "run-42", "seed": "7"})
    assert main(["train", "--root", str(opt_ml)]) == 0
    meta = artifact.open_artifact(opt_ml / "model").metadata
    assert meta.model_version == "run-42" and meta.hyperparameters["seed"] == 7
    assert json.loads((opt_ml / "output" / "data" / "training-report.json").read_text())["model_version"] == "run-42"
    assert not (opt_ml / "output" / "failure").exists()


def test_test_channel_is_used(opt_ml, data_dir, monkeypatch):
    _channel(opt_ml, "train", data_dir / "regression.csv")
    _channel(opt_ml, "test", data_dir / "regression.csv")
    _hyperparameters(opt_ml, target="price", task="", categorical="")  # empty: infer the task, no categoricals
    monkeypatch.setenv("SM_ROOT", str(opt_ml))
    assert main([]) == 0
    meta = artifact.read_metadata(opt_ml / "model")
    assert meta.rows == {"train": 120, "test": 120} and meta.task == "regression"


def test_bad_data_writes_the_failure_file(opt_ml, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,label\n1,x\n2,x\n")
    _channel(opt_ml, "train", bad)
    _hyperparameters(opt_ml, target="label")
    assert main(["--root", str(opt_ml)]) == 1
    failure = (opt_ml / "output" / "failure").read_text()
    assert "data.csv: the data has 2 row(s)" in failure and "one class only" in failure
    assert not (opt_ml / "model").exists()


def test_unknown_hyperparameter_is_a_failure(opt_ml, data_dir):
    _channel(opt_ml, "train", data_dir / "binary.csv")
    _hyperparameters(opt_ml, target="label", colour="red")
    assert main(["--root", str(opt_ml)]) == 2
    assert "unrecognized arguments: --colour red" in (opt_ml / "output" / "failure").read_text()


def test_the_model_choice_reaches_training(opt_ml, data_dir):
    """What the validate step returns, as SageMaker writes it: algorithm, a JSON string of hyperparameters, the search."""
    _channel(opt_ml, "train", data_dir / "binary.csv")
    _hyperparameters(opt_ml, **{"target": "label", "categorical": "color", "algorithm": "random_forest",
                                "hyperparameters": '{"n_estimators": 20}', "search": "2", "search-seconds": "300.0"})
    assert main(["train", "--root", str(opt_ml)]) == 0
    meta = artifact.read_metadata(opt_ml / "model")
    assert meta.hyperparameters["algorithm"] == "random_forest" and meta.hyperparameters["params"]["n_estimators"] == 20
    assert meta.search is not None and len(meta.search.candidates) == 2 and meta.search.budget_seconds == 300


def test_an_unknown_hyperparameter_fails_the_job_by_name(opt_ml, data_dir):
    _channel(opt_ml, "train", data_dir / "binary.csv")
    _hyperparameters(opt_ml, target="label", algorithm="linear", hyperparameters='{"depth": 3}')
    assert main(["train", "--root", str(opt_ml)]) == 1
    assert "unknown hyperparameter 'depth' for linear" in (opt_ml / "output" / "failure").read_text()


def test_the_data_set_lineage_reaches_the_metadata(opt_ml, data_dir):
    """The validate step's "lineage" hyperparameter (the BuildDataset step's brief) lands in metadata.json as it is."""
    lineage = {"data_uri": "s3://data/datasets/tiny/versions/run-42/train.csv", "data_sha256": "ab" * 32, "rows": 160,
               "production_rows": 20, "recent_rows": 10, "window": {"first": "2026-11-30T00:00:00Z",
                                                                    "last": "2026-12-01T00:00:00Z"},
               "lineage_uri": "s3://data/datasets/tiny/versions/run-42/lineage.json"}
    _channel(opt_ml, "train", data_dir / "binary.csv")
    _hyperparameters(opt_ml, **{"target": "label", "categorical": "color", "lineage": json.dumps(lineage)})
    assert main(["train", "--root", str(opt_ml)]) == 0
    meta = artifact.open_artifact(opt_ml / "model").metadata
    assert meta.lineage is not None and meta.lineage.model_dump(exclude_none=True) == lineage
    assert "lineage" not in meta.hyperparameters  # where the data came from is not how the model was fit


def test_no_lineage_and_a_bad_one(opt_ml, data_dir):
    _channel(opt_ml, "train", data_dir / "binary.csv")
    _hyperparameters(opt_ml, **{"target": "label", "categorical": "color", "lineage": "{}"})
    assert main(["train", "--root", str(opt_ml)]) == 0
    assert artifact.read_metadata(opt_ml / "model").lineage is None
    _hyperparameters(opt_ml, **{"target": "label", "categorical": "color", "lineage": '{"rows": "many"}'})
    assert main(["train", "--root", str(opt_ml)]) == 1
    assert (opt_ml / "output" / "failure").read_text().startswith("train: --lineage is not a data set lineage")
