"""The bounded hyperparameter search: cross-validated on the training rows, seeded, within its budget."""
from __future__ import annotations

import itertools
import json

import pytest

from contracts import artifact
from training.dataset import DataError, feature_matrix, read_csv, typed_columns
from training.search import run_search
from training.train import TrainConfig, main, train
from training.validate import target_array, validate_table


def _xy(path, target, categorical=()):
    table = read_csv(path)
    report = validate_table(table, target, categorical=set(categorical))
    schema = report.feature_schema
    return (feature_matrix(schema, typed_columns(table, schema)), target_array(table, target, report.task), schema,
            report.task)


@pytest.fixture(scope="module")
def binary(data_dir):
    return _xy(data_dir / "binary.csv", "label", ["color"])


def _search(binary, **kwargs):
    X, y, schema, task = binary
    options = {"algorithm": "random_forest", "candidates": 4, "seed": 3, "budget_seconds": 600.0} | kwargs
    return run_search(X, y, schema=schema, task=task, **options)


def test_every_candidate_is_recorded_and_the_best_chosen(binary):
    summary = _search(binary)
    assert summary.metric == "roc_auc" and summary.folds == 5 and summary.requested == 4
    assert len(summary.candidates) == 4 and not summary.stopped_by_budget
    assert summary.candidates[0].params == {}  # the configured point first
    means = [c.cv_mean for c in summary.candidates]
    assert summary.best == means.index(max(means))
    assert all(0 <= c.cv_mean <= 1 and c.cv_std >= 0 and c.seconds > 0 for c in summary.candidates)


def test_the_same_seed_gives_the_same_search(binary):
    first, again = _search(binary), _search(binary)
    assert [(c.params, c.cv_mean, c.cv_std) for c in first.candidates] == \
        [(c.params, c.cv_mean, c.cv_std) for c in again.candidates]
    assert first.best == again.best
    assert [c.params for c in _search(binary, seed=4).candidates] != [c.params for c in first.candidates]


def test_no_candidate_starts_once_the_budget_is_spent(binary):
    ticks = itertools.count(0, 10)  # every clock reading is 10 s later
    summary = _search(binary, candidates=6, budget_seconds=25, clock=lambda: next(ticks))
    # started at 0; candidate 1 runs 10→20, candidate 2 is checked at 30 >= 25 and never starts
    assert len(summary.candidates) == 1 and summary.stopped_by_budget and summary.best == 0


def test_regression_scores_r2_on_plain_folds(data_dir):
    X, y, schema, task = _xy(data_dir / "regression.csv", "price")
    summary = run_search(X, y, schema=schema, task=task, algorithm="linear", candidates=3, seed=0,
                         budget_seconds=60, folds=3)
    assert summary.metric == "r2" and summary.folds == 3 and len(summary.candidates) == 3
    assert {tuple(c.params) for c in summary.candidates[1:]} == {("l2",)}  # max_iter is not searched


def test_too_few_rows_of_a_class_to_fold_is_a_data_error(binary):
    X, y, schema, task = binary
    y = y.copy()
    y[:] = "no"
    y[0] = "yes"
    with pytest.raises(DataError, match="at least 2 rows of every class"):
        run_search(X, y, schema=schema, task=task, algorithm="linear", candidates=2, seed=0, budget_seconds=60)


def test_training_refits_the_best_and_records_the_search(data_dir, tmp_path):
    config = TrainConfig(target="kind", model_name="tiny-multi", categorical=["shape"], algorithm="extra_trees",
                         hyperparameters={"n_estimators": 30}, search_candidates=3, search_seconds=600)
    meta = train(data_dir / "multiclass.csv", tmp_path / "model", config).metadata
    search = meta.search
    assert search is not None and search.metric == "f1_macro" and len(search.candidates) == 3
    assert all(c.params["n_estimators"] == 30 for c in search.candidates)  # set, so held fixed
    best = search.candidates[search.best].params
    assert meta.hyperparameters["hyperparameters"] == best
    assert {k: meta.hyperparameters["params"][k] for k in best} == best  # the refit model's values
    assert meta.search_candidates == search.candidates
    # the artifact on disk holds it too (metadata.json), typed
    assert artifact.read_metadata(tmp_path / "model").search == search


def test_without_search_nothing_is_recorded(trained):
    assert trained["binary"].metadata.search is None and trained["binary"].metadata.search_candidates is None


def test_cli_search_flags(data_dir, tmp_path, capsys):
    args = ["--train", str(data_dir / "binary.csv"), "--model-dir", str(tmp_path / "m"), "--target", "label",
            "--categorical", "color", "--algorithm", "hist_gradient_boosting",
            "--hyperparameters", '{"max_iter": 40}', "--search", "3", "--search-seconds", "120"]
    assert main(args) == 0
    search = artifact.read_metadata(tmp_path / "m").search
    assert search.requested == 3 and search.budget_seconds == 120 and len(search.candidates) == 3
    assert all(c.params["max_iter"] == 40 for c in search.candidates)
    assert json.loads(capsys.readouterr().out)["model_dir"] == str(tmp_path / "m")


@pytest.mark.parametrize(("extra", "message"), [
    (["--algorithm", "random_forest", "--l2", "2"], "unknown hyperparameter 'l2' for random_forest"),
    (["--hyperparameters", '{"l2": 1}', "--l2", "2"], "hyperparameter 'l2' is given twice"),
    (["--hyperparameters", "l2=1"], "--hyperparameters is not valid JSON"),
    (["--max-iter", "lots"], "'max_iter' of linear: expected an integer or none, got 'lots'"),
    (["--search", "-2"], "search candidates must be an integer from 0"),
])
def test_cli_refuses_a_bad_model_choice_by_name(data_dir, tmp_path, capsys, extra, message):
    args = ["--train", str(data_dir / "binary.csv"), "--model-dir", str(tmp_path / "m"), "--target", "label"]
    assert main(args + extra) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # refused before any data was read or model written
