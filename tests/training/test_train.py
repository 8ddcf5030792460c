"""Training: the three tasks, the artifact it writes, determinism, held-out channels and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contracts import artifact
from contracts.onnx_io import onnx_feed
from drift_check.stats import BASELINE_FORMAT
from tests.training.training_helpers import binary_rows, write_csv
from training.dataset import feature_matrix, read_csv, typed_columns
from training.pipeline_model import ALGORITHMS, ModelParams
from training.train import TrainConfig, main, train
from training.validate import DataValidationError


def _session(model_dir):
    import onnxruntime as ort

    return ort.InferenceSession(str(model_dir / artifact.MODEL_ONNX), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name, task, primary", [
    ("binary", "binary", "roc_auc"), ("multiclass", "multiclass", "f1_macro"),
    ("regression", "regression", "r2"), ("breast_cancer", "binary", "roc_auc"),
])
def test_each_task_trains_a_useful_model(trained, name, task, primary):
    meta = trained[name].metadata
    assert meta.task == task
    assert meta.metrics[primary] > 0.8, meta.metrics
    assert meta.onnx.included, meta.onnx.reason
    assert meta.rows["train"] > meta.rows["test"] > 0


def test_artifact_contract(trained):
    result = trained["binary"]
    art = artifact.open_artifact(result.model_dir)  # manifest verified
    meta = art.metadata
    assert meta.classes == ["no", "yes"]
    assert meta.feature_schema.feature("color").categories == ["blue", "green", "red"]
    assert meta.library_versions["scikit-learn"] and len(meta.training_data_sha256) == 64
    assert meta.model_version.endswith("-" + meta.training_data_sha256[:8])
    assert meta.hyperparameters["algorithm"] == "linear" and meta.hyperparameters["seed"] == 42
    baseline = art.baseline()
    assert baseline["format"] == BASELINE_FORMAT and baseline["classes"] == ["no", "yes"]
    assert set(baseline["features"]) == {"a", "b", "color"} and baseline["prediction"] is not None
    report = json.loads((result.model_dir.parent / "binary-output" / "training-report.json").read_text())
    assert report["metrics"] == meta.metrics and report["validation"]["passed"] is True


def test_numeric_looking_classes_stay_strings(trained, data_dir):
    meta = trained["multiclass"].metadata
    assert meta.classes == ["0", "1", "2"]
    estimator = artifact.open_artifact(trained["multiclass"].model_dir).load_estimator()
    table = read_csv(data_dir / "multiclass.csv")
    X = feature_matrix(meta.feature_schema, typed_columns(table, meta.feature_schema))
    assert set(estimator.predict(X[:20])) <= {"0", "1", "2"}


@pytest.mark.parametrize("name", ["binary", "multiclass", "regression"])
def test_onnx_agrees_with_the_pipeline(trained, data_dir, name):
    """Independent of the agreement check inside training: rerun it on every row of the data."""
    result = trained[name]
    meta = result.metadata
    table = read_csv(data_dir / f"{name}.csv")
    X = feature_matrix(meta.feature_schema, typed_columns(table, meta.feature_schema))
    estimator = artifact.open_artifact(result.model_dir).load_estimator()
    outputs = _session(result.model_dir).run(None, onnx_feed(meta.feature_schema, X))
    if meta.task == "regression":
        np.testing.assert_allclose(outputs[0].ravel(), estimator.predict(X), atol=1e-4, rtol=0)
    else:
        assert list(outputs[0]) == list(estimator.predict(X))
        np.testing.assert_allclose(outputs[1], estimator.predict_proba(X), atol=1e-4, rtol=0)


def test_same_data_and_hyperparameters_give_the_same_metrics(data_dir, tmp_path, trained):
    config = TrainConfig(target="label", model_name="tiny-binary", categorical=["color"], algorithm="random_forest",
                         params=ModelParams(n_estimators=30))
    first = train(data_dir / "binary.csv", tmp_path / "one", config).metadata
    second = train(data_dir / "binary.csv", tmp_path / "two", config).metadata
    assert first.metrics == second.metrics
    # the default algorithm, trained in the session fixture with the same config
    again = train(data_dir / "binary.csv", tmp_path / "three",
                  TrainConfig(target="label", model_name="tiny-binary", categorical=["color"])).metadata
    assert again.metrics == trained["binary"].metadata.metrics


def test_test_channel_replaces_the_split(tmp_path):
    header, rows = binary_rows(200, seed=3)
    train_csv = write_csv(tmp_path / "train" / "part.csv", header, rows[:150])
    test_csv = write_csv(tmp_path / "test.csv", header, rows[150:])
    result = train(train_csv.parent, tmp_path / "model", TrainConfig(target="label", categorical=["color"]),
                   test_path=test_csv)
    assert result.metadata.rows == {"train": 150, "test": 50}


def test_the_held_out_split_is_written_beside_the_model_for_evaluate(tmp_path, capsys):
    from training import evaluate

    header, rows = binary_rows(200, seed=5)
    csv = write_csv(tmp_path / "data.csv", header, rows)
    assert main(["--train", str(csv), "--model-dir", str(tmp_path / "out"), "--target", "label",
                 "--categorical", "color"]) == 0
    test_csv = tmp_path / "out.test.csv"
    assert json.loads(capsys.readouterr().out)["test_csv"] == str(test_csv)
    held_out = read_csv(test_csv)
    assert held_out.header == header and held_out.n_rows == artifact.read_metadata(tmp_path / "out").rows["test"] == 40
    # Not in the model directory, so not in model.tar.gz nor its manifest.
    assert not list((tmp_path / "out").glob("*.csv")) and "test.csv" not in str(artifact.verify_manifest(tmp_path / "out"))
    assert evaluate.main(["--candidate", str(tmp_path / "out"), "--test", str(test_csv)]) == 0
    assert json.loads(capsys.readouterr().out)["passed"]


def test_a_test_channel_writes_no_held_out_file(tmp_path):
    header, rows = binary_rows(200, seed=3)
    result = train(write_csv(tmp_path / "train.csv", header, rows[:150]), tmp_path / "model",
                   TrainConfig(target="label"), test_path=write_csv(tmp_path / "test.csv", header, rows[150:]))
    assert result.test_csv is None and not (tmp_path / "model.test.csv").exists()


def test_test_channel_missing_a_feature_is_named(tmp_path):
    header, rows = binary_rows(120)
    train_csv = write_csv(tmp_path / "train.csv", header, rows)
    test_csv = write_csv(tmp_path / "test.csv", ["a", "color", "label"], [[r[0], r[2], r[3]] for r in rows[:30]])
    with pytest.raises(ValueError, match="test channel test.csv has no column 'b'"):
        train(train_csv, tmp_path / "model", TrainConfig(target="label"), test_path=test_csv)


def test_bad_data_fails_before_training(tmp_path):
    header, rows = binary_rows(120)
    rows[7][0] = "n/a?"
    csv = write_csv(tmp_path / "train.csv", header, rows)
    with pytest.raises(DataValidationError, match=r"column 'a' is numeric but 'n/a\?' on line 9"):
        train(csv, tmp_path / "model", TrainConfig(target="label"))
    assert not (tmp_path / "model").exists()


def test_cli_trains_from_sm_variables_and_fails_with_exit_code(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(data_dir / "regression.csv"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output"))
    assert main(["--target", "price", "--model-name", "prices", "--model-version", "v7", "--test-size", "0.25"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_version"] == "v7" and summary["task"] == "regression"
    assert artifact.read_metadata(tmp_path / "model").rows["test"] == 30
    assert (tmp_path / "output" / "training-report.json").exists()
    assert main(["--target", "nope"]) == 1
    assert "target column 'nope' is not in the header" in capsys.readouterr().err
    assert main(["--target", "price", "--l2", "0"]) == 1
    assert "hyperparameter 'l2' of linear: must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["--target", "price", "--algorithm", "magic"])
    assert usage.value.code == 2


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_ships_an_onnx_model_that_serving_runs(data_dir, tmp_path, algorithm):
    """Trained as the pipeline trains it, opened as serving opens it: onnxruntime, same answers as scikit-learn."""
    from contracts.artifact import open_artifact
    from inference.runtime import open_model

    config = TrainConfig(target="kind", model_name="tiny-multi", categorical=["shape"], algorithm=algorithm,
                         params=ModelParams(n_estimators=20, max_iter=30))
    result = train(data_dir / "multiclass.csv", tmp_path / "model", config)
    onnx = result.metadata.onnx
    assert onnx.included and onnx.rows_checked == result.metadata.rows["test"], onnx.reason
    served = open_artifact(result.model_dir)
    model = open_model(served, "auto")
    table = read_csv(data_dir / "multiclass.csv")
    X = feature_matrix(served.metadata.feature_schema, typed_columns(table, served.metadata.feature_schema))
    assert model.name == "onnxruntime"
    np.testing.assert_allclose(model.run(X).proba, served.load_estimator().predict_proba(X), atol=onnx.probability_tolerance)


def test_an_artifact_without_lineage_still_loads_and_verifies(trained, tmp_path):
    """Artifacts written before metadata.lineage existed have no such key: they open as they did."""
    import shutil

    model_dir = shutil.copytree(trained["binary"].model_dir, tmp_path / "old")
    body = json.loads((model_dir / artifact.METADATA).read_text())
    assert body.pop("lineage") is None
    (model_dir / artifact.METADATA).write_text(json.dumps(body))
    artifact.write_manifest(model_dir)
    opened = artifact.open_artifact(model_dir)
    assert opened.metadata.lineage is None and opened.load_estimator() is not None


def test_the_lineage_hyperparameter_fits_sagemakers_limit():
    long_uri = "s3://data/" + "k" * 1200
    lineage = artifact.DatasetLineage(data_uri=long_uri, data_sha256="ab" * 32, rows=10, lineage_uri=long_uri,
                                      note="n" * 400, window={"first": "a", "last": "b"})
    text = lineage.hyperparameter()
    assert len(text) <= artifact.MAX_HYPERPARAMETER_CHARS
    kept = artifact.DatasetLineage.model_validate_json(text)
    assert (kept.data_uri, kept.data_sha256, kept.rows, kept.lineage_uri, kept.note) == (long_uri, "ab" * 32, 10, None, None)
    short = artifact.DatasetLineage(data_uri="s3://d/t.csv", note="off")
    assert json.loads(short.hyperparameter()) == {"data_uri": "s3://d/t.csv", "production_rows": 0, "recent_rows": 0,
                                                  "note": "off"}
