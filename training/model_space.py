"""Which hyperparameters each algorithm takes: their types, valid ranges and search distributions.

The one definition that `mlops train`, the pipeline's validate step, the training container and the
CDK app's configuration check all use, so a bad name or value fails the same way everywhere, and
early. Pure Python (no scikit-learn): the CDK app and the validate step import it cheaply.
"""
from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_ALGORITHM = "linear"
# Spent on the search before the final refit; well inside the default 60-minute training job.
DEFAULT_SEARCH_SECONDS = 1800
MAX_SEARCH_CANDIDATES = 200

Value = int | float | None


class HyperparameterError(ValueError):
    """An unknown algorithm, an unknown hyperparameter for the algorithm, or a value out of range; names it."""


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: the values it accepts, and the distribution a search draws from.

    The search range is narrower than the valid one: it covers what is worth trying in a bounded
    search, while a user may still set any valid value by hand.
    """

    name: str
    kind: type  # int or float
    minimum: float
    maximum: float
    doc: str
    exclusive_minimum: bool = False  # floats that must stay above the minimum (l2, learning_rate)
    nullable: bool = False  # None (JSON null, "none") means "the estimator's own default"
    search_low: float = 0.0
    search_high: float = 0.0
    log: bool = False  # draw log-uniformly: scales such as 0.01-0.3 matter by ratio, not difference
    search_none: bool = False  # a nullable value the search also tries as None (unlimited tree depth)

    def check(self, algorithm: str, value: Any) -> Value:
        """The value as its type; raises HyperparameterError naming the algorithm and this hyperparameter."""
        where = f"hyperparameter {self.name!r} of {algorithm}"
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            if self.nullable:
                return None
            raise HyperparameterError(f"{where}: a value is required, got {value!r}")
        typed = _as_number(value, self.kind)
        if typed is None:
            expected = "an integer" if self.kind is int else "a number"
            raise HyperparameterError(f"{where}: expected {expected}{' or none' if self.nullable else ''}, got {value!r}")
        low_ok = typed > self.minimum if self.exclusive_minimum else typed >= self.minimum
        if not (low_ok and typed <= self.maximum):
            low = f"> {self.minimum:g}" if self.exclusive_minimum else f">= {self.minimum:g}"
            raise HyperparameterError(f"{where}: must be {low} and <= {self.maximum:g}, got {value!r}")
        return typed

    def sample(self, rng: random.Random) -> Value:
        """One draw from the search distribution."""
        if self.search_none and rng.random() < 0.25:
            return None
        low, high = self.search_low, self.search_high
        if self.log:
            drawn = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            drawn = rng.uniform(low, high)
        # Rounded so the recorded candidates read well and repeat exactly from their JSON.
        return int(round(drawn)) if self.kind is int else float(f"{drawn:.4g}")


def _as_number(value: Any, kind: type) -> Value:
    """value as kind, accepting the strings SageMaker and `-c` pass; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if kind is int:
        return int(value) if float(value).is_integer() else None
    return float(value)


L2 = Hyperparameter("l2", float, 0.0, 1e6, "L2 penalty, Ridge alpha; logistic regression C = 1 / l2 (default 1.0)",
                    exclusive_minimum=True, search_low=1e-3, search_high=100.0, log=True)
SOLVER_ITER = Hyperparameter("max_iter", int, 1, 100_000, "solver iterations of logistic regression (default 1000)",
                             nullable=True)
N_ESTIMATORS = Hyperparameter("n_estimators", int, 1, 10_000, "trees (default 200)", search_low=50,
                              search_high=500, log=True)
FOREST_DEPTH = Hyperparameter("max_depth", int, 1, 1000, "tree depth limit (default none: unlimited)", nullable=True,
                              search_low=3, search_high=30, log=True, search_none=True)
BOOSTED_DEPTH = Hyperparameter("max_depth", int, 1, 1000, "tree depth (default 3)", nullable=True,
                               search_low=2, search_high=8)
HIST_DEPTH = Hyperparameter("max_depth", int, 1, 1000, "tree depth limit (default none: leaves bound the trees)",
                            nullable=True, search_low=2, search_high=12, search_none=True)
LEARNING_RATE = Hyperparameter("learning_rate", float, 0.0, 10.0, "shrinkage of each tree (default 0.1)",
                               exclusive_minimum=True, search_low=0.01, search_high=0.3, log=True)
BOOSTING_ROUNDS = Hyperparameter("max_iter", int, 1, 100_000, "boosting rounds (default 100)", nullable=True,
                                 search_low=50, search_high=500, log=True)

# Per algorithm, its hyperparameters (the names training.pipeline_model.ModelParams reads for it).
SPACES: dict[str, tuple[Hyperparameter, ...]] = {
    "linear": (L2, SOLVER_ITER),
    "random_forest": (N_ESTIMATORS, FOREST_DEPTH),
    "extra_trees": (N_ESTIMATORS, FOREST_DEPTH),
    "gradient_boosting": (N_ESTIMATORS, LEARNING_RATE, BOOSTED_DEPTH),
    "hist_gradient_boosting": (LEARNING_RATE, BOOSTING_ROUNDS, HIST_DEPTH),
}
ALGORITHMS = tuple(SPACES)


def space(algorithm: str) -> tuple[Hyperparameter, ...]:
    """The algorithm's hyperparameters; HyperparameterError names an unknown algorithm."""
    try:
        return SPACES[algorithm]
    except (KeyError, TypeError):
        raise HyperparameterError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}") from None


def check(algorithm: str, hyperparameters: Mapping[str, Any] | None) -> dict[str, Value]:
    """The hyperparameters typed and range-checked for the algorithm; HyperparameterError names the first bad one."""
    accepted = {h.name: h for h in space(algorithm)}  # the algorithm is checked even without hyperparameters
    if hyperparameters is None:
        return {}
    if not isinstance(hyperparameters, Mapping):
        raise HyperparameterError(f"hyperparameters must be a JSON object of name: value, got {hyperparameters!r}")
    checked: dict[str, Value] = {}
    for name, value in hyperparameters.items():
        if name not in accepted:
            raise HyperparameterError(f"unknown hyperparameter {name!r} for {algorithm}; "
                                      f"it takes {', '.join(accepted)}")
        checked[name] = accepted[name].check(algorithm, value)
    return checked


def check_search(candidates: Any, seconds: Any) -> tuple[int, float]:
    """The search size (0 = no search) and time budget, typed; HyperparameterError names a bad one."""
    n = _as_number(candidates, int)
    if n is None or not 0 <= n <= MAX_SEARCH_CANDIDATES:
        raise HyperparameterError(f"search candidates must be an integer from 0 (no search) to "
                                  f"{MAX_SEARCH_CANDIDATES}, got {candidates!r}")
    budget = _as_number(seconds, float)
    if budget is None or budget <= 0:
        raise HyperparameterError(f"search seconds must be a number > 0, got {seconds!r}")
    return n, budget


def sample_candidates(algorithm: str, n: int, seed: int, fixed: Mapping[str, Value] | None = None) -> list[dict[str, Value]]:
    """n distinct hyperparameter sets for the algorithm, the same for the same seed.

    The first is `fixed` alone (the configured point, so a search never does worse than none on
    its own score); the others draw every hyperparameter `fixed` does not set. Fewer than n come
    back when the space holds fewer distinct points.
    """
    fixed = check(algorithm, fixed)
    free = [h for h in space(algorithm) if h.name not in fixed and (h.search_high > 0 or h.search_none)]
    rng = random.Random(seed)
    found = [dict(fixed)]
    seen = {_key(fixed)}
    for _ in range(n * 20):  # bounded: a small space runs out of new points
        if len(found) >= n:
            break
        candidate = {**{h.name: h.sample(rng) for h in free}, **fixed}
        if _key(candidate) not in seen:
            seen.add(_key(candidate))
            found.append(candidate)
    return found[:n]


def _key(params: Mapping[str, Value]) -> tuple:
    return tuple(sorted(params.items()))


def describe() -> str:
    """The spaces as text, for --help: each algorithm, its hyperparameters and their valid values."""
    lines = []
    for algorithm, params in SPACES.items():
        lines.append(f"  {algorithm}")
        for h in params:
            low = f"> {h.minimum:g}" if h.exclusive_minimum else f">= {h.minimum:g}"
            kind = "integer" if h.kind is int else "number"
            lines.append(f"    {h.name:<14} {h.doc}; {kind} {low}, <= {h.maximum:g}{' or none' if h.nullable else ''}")
    return "\n".join(lines)
