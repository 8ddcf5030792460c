"""A bounded hyperparameter search: N candidates from the algorithm's space, scored by k-fold
cross-validation on the training rows, within a time budget.

Only the training rows take part: the held-out split stays unseen until the final model is scored,
so its metrics are not biased by the choice. The folds are stratified for classifiers and seeded,
and the candidates come from `model_space.sample_candidates` with the same seed: one seed, one
search. The budget is checked before each candidate starts, so the search may overrun it by one
candidate's time; the first candidate (the configured point) always runs.
"""
from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from contracts.artifact import SearchCandidate, SearchSummary
from contracts.schema import FeatureSchema, Task
from training.dataset import DataError
from training.evaluate import PRIMARY_METRIC
from training.model_space import Value, sample_candidates
from training.pipeline_model import ModelParams, build_pipeline

DEFAULT_FOLDS = 5


def folds_for(y: np.ndarray, task: Task, folds: int, seed: int):
    """Seeded k-fold splitter, stratified for classifiers; fewer folds when the smallest class is small."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "regression":
        k = min(folds, len(y))
        splitter = KFold
    else:
        _, counts = np.unique(y.astype(str), return_counts=True)
        k = min(folds, int(counts.min()))
        splitter = StratifiedKFold
    if k < 2:
        raise DataError(f"a search needs at least 2 rows of every class in the training rows for "
                        f"2-fold cross-validation; found {k}")
    return splitter(n_splits=k, shuffle=True, random_state=seed)


def run_search(X: np.ndarray, y: np.ndarray, *, schema: FeatureSchema, task: Task, algorithm: str,
               candidates: int, seed: int, budget_seconds: float, fixed: Mapping[str, Value] | None = None,
               folds: int = DEFAULT_FOLDS, clock=time.perf_counter) -> SearchSummary:
    """Score up to `candidates` hyperparameter sets by cross-validation; the best is `summary.best`."""
    from sklearn.model_selection import cross_val_score

    metric = PRIMARY_METRIC[task]
    splitter = folds_for(y, task, folds, seed)
    started = clock()
    tried: list[SearchCandidate] = []
    planned = sample_candidates(algorithm, candidates, seed, fixed)
    for params in planned:
        if tried and clock() - started >= budget_seconds:
            break
        began = clock()
        pipeline = build_pipeline(schema, task, algorithm=algorithm, seed=seed, params=ModelParams(**params))
        if "n_jobs" in pipeline.named_steps["model"].get_params():
            # A forest's threads add their trees' votes in whatever order they finish: the last bits of the
            # probabilities, and so tied ranks in ROC AUC, would differ between two runs of the same seed.
            pipeline.set_params(model__n_jobs=1)
        # The primary metrics are scikit-learn scorer names; binary roc_auc scores the second (sorted)
        # class, the positive one in training.evaluate too.
        scores = cross_val_score(pipeline, X, y, scoring=metric, cv=splitter, error_score="raise")
        tried.append(SearchCandidate(params=params, cv_mean=float(np.mean(scores)), cv_std=float(np.std(scores)),
                                     seconds=round(clock() - began, 3)))
    best = max(range(len(tried)), key=lambda i: (tried[i].cv_mean, -i))  # the first of equals
    return SearchSummary(metric=metric, folds=splitter.get_n_splits(), seed=seed, requested=candidates,
                         budget_seconds=budget_seconds, stopped_by_budget=len(tried) < len(planned),
                         seconds=round(clock() - started, 3), best=best, candidates=tried)
