"""The hyperparameter spaces: one definition checks input everywhere and draws the search's candidates."""
from __future__ import annotations

import dataclasses

import pytest

from contracts.schema import Feature, FeatureSchema, FeatureType
from training import model_space
from training.model_space import HyperparameterError, check, check_search, sample_candidates
from training.pipeline_model import ModelParams, build_pipeline


def test_every_name_is_a_model_param():
    fields = {f.name for f in dataclasses.fields(ModelParams)}
    for algorithm, params in model_space.SPACES.items():
        assert {h.name for h in params} <= fields, algorithm


@pytest.mark.parametrize(("algorithm", "given", "message"), [
    ("xgboost", {}, "unknown algorithm 'xgboost'; choose one of linear, random_forest"),
    ("xgboost", None, "unknown algorithm 'xgboost'"),
    ("linear", {"n_estimators": 10}, "unknown hyperparameter 'n_estimators' for linear; it takes l2, max_iter"),
    ("random_forest", {"learning-rate": 0.1}, "unknown hyperparameter 'learning-rate' for random_forest"),
    ("linear", {"l2": 0}, "hyperparameter 'l2' of linear: must be > 0"),
    ("gradient_boosting", {"n_estimators": 0}, "hyperparameter 'n_estimators' of gradient_boosting: must be >= 1"),
    ("hist_gradient_boosting", {"max_iter": 2.5}, "'max_iter' of hist_gradient_boosting: expected an integer"),
    ("linear", {"l2": "much"}, "'l2' of linear: expected a number, got 'much'"),
    ("linear", {"l2": True}, "'l2' of linear: expected a number"),
    ("linear", {"l2": None}, "'l2' of linear: a value is required"),
    ("linear", [("l2", 1)], "hyperparameters must be a JSON object"),
])
def test_bad_input_is_refused_by_name(algorithm, given, message):
    with pytest.raises(HyperparameterError, match=message):
        check(algorithm, given)


def test_values_are_typed_from_strings_and_none_means_the_default():
    assert check("hist_gradient_boosting", {"max_iter": "300", "learning_rate": "0.05", "max_depth": "none"}) == {
        "max_iter": 300, "learning_rate": 0.05, "max_depth": None}
    assert check("random_forest", {"n_estimators": 100.0}) == {"n_estimators": 100}
    assert check("linear", None) == {}


def test_candidates_are_deterministic_for_a_seed_and_distinct():
    first = sample_candidates("gradient_boosting", 12, seed=7)
    assert first == sample_candidates("gradient_boosting", 12, seed=7)
    assert first != sample_candidates("gradient_boosting", 12, seed=8)
    assert len({tuple(sorted(c.items())) for c in first}) == 12
    assert first[0] == {}  # the configured point comes first
    for candidate in first:  # every draw is a valid value
        assert check("gradient_boosting", candidate) == candidate


def test_set_hyperparameters_are_held_fixed():
    candidates = sample_candidates("hist_gradient_boosting", 6, seed=1, fixed={"max_iter": 50})
    assert candidates[0] == {"max_iter": 50}
    assert all(c["max_iter"] == 50 for c in candidates)
    assert {"learning_rate", "max_depth"} <= set(candidates[1])


def test_a_space_with_nothing_to_search_yields_the_configured_point_only():
    assert sample_candidates("linear", 5, seed=0, fixed={"l2": 2.0}) == [{"l2": 2.0}]


def test_search_settings_are_checked():
    assert check_search("8", "60") == (8, 60.0)
    with pytest.raises(HyperparameterError, match="search candidates must be an integer from 0"):
        check_search(-1, 60)
    with pytest.raises(HyperparameterError, match="search seconds must be a number > 0"):
        check_search(4, 0)


def test_sampled_candidates_build_pipelines():
    schema = FeatureSchema(target="y", features=[Feature(name="x", type=FeatureType.NUMERIC)])
    for algorithm in model_space.ALGORITHMS:
        for params in sample_candidates(algorithm, 3, seed=0):
            build_pipeline(schema, "binary", algorithm=algorithm, params=ModelParams(**params))
