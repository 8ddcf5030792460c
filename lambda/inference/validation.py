"""Checking request rows against the input rules (inference.input_rules) and building the input matrix.

The common case (every row well-formed) costs a few C-level calls per row; a row
that fails them is re-checked value by value to name each problem.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from contracts.schema import MISSING_CATEGORY, FeatureSchema
from inference.input_rules import MAX_ABS, RowRules, as_category

MAX_ISSUES = 50  # enough to fix a request; a 1,000-row batch of bad rows stays readable
NUMBER_TYPES = frozenset({float, int})
STRING_TYPES = frozenset({str})
JSON_TYPE_NAMES = {str: "string", bool: "boolean", int: "integer", float: "number",
                   dict: "object", list: "array", type(None): "null"}

Loc = tuple[str | int, ...]


class NonFinite:
    """A NaN/Infinity literal from a lenient JSON parse, kept so validation can name its field."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


JSON_TYPE_NAMES[NonFinite] = "non-finite number"


@dataclass(frozen=True)
class Issue:
    """One problem with the request, in FastAPI's validation-error shape."""

    loc: Loc
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class RequestError(Exception):
    """The request cannot be served as sent: a 4xx with the issues found."""

    def __init__(self, status: int, issues: list[Issue], kind: str) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, i.loc))}: {i.msg}" for i in issues))
        self.status = status
        self.issues = issues
        self.kind = kind  # the ErrorKind metric dimension


@dataclass
class Rows:
    """Validated rows: the model input matrix, the rows as sent, and warnings for the caller."""

    X: np.ndarray
    raw: list[Any]  # per row: a dict of features, or the values in schema order (None = missing)
    names: list[str]
    warnings: list[str] = field(default_factory=list)

    def features(self, i: int) -> dict[str, Any]:
        """Row i as captured: feature name → value (None = missing)."""
        row = self.raw[i]
        return row if type(row) is dict else dict(zip(self.names, row))


def json_type(value: Any) -> str:
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _picker(keys: list[Any]) -> Callable[[Any], tuple]:
    """itemgetter that always returns a tuple (itemgetter of one key returns the bare item)."""
    if len(keys) == 1:
        only = keys[0]
        return lambda values: (values[only],)
    return itemgetter(*keys) if keys else (lambda values: ())


class FeatureReader:
    """Precomputed per-feature checks for one schema."""

    def __init__(self, schema: FeatureSchema, *, strict_categories: bool = False) -> None:
        self.rules = RowRules(schema, strict_categories)
        self._rules = rules = self.rules.features
        self.names = self.rules.names
        self.n_features = len(self.names)
        self.strict_categories = self.rules.strict_categories
        self.num_idx = [j for j, rule in enumerate(rules) if not rule.categorical]
        self.cat_idx = [j for j, rule in enumerate(rules) if rule.categorical]
        self.numeric_only = not self.cat_idx
        self._get = _picker(self.names)
        self._num = _picker(self.num_idx)
        self._cat = _picker(self.cat_idx)
        self._allowed = [rules[j].allowed for j in self.cat_idx]
        self._known = frozenset(self.names)
        self._num_pos = {j: k for k, j in enumerate(self.num_idx)}
        self._nullable_cat_idx = [j for j in self.cat_idx if rules[j].nullable]

    def from_values(self, tuples: list[tuple]) -> Rows:
        """The matrix of rows already checked (decoding.TypedBodies), None marking a missing value."""
        return Rows(X=self._build(tuples), raw=tuples, names=self.names)

    def _build(self, tuples: list[tuple]) -> np.ndarray:
        """One array for all rows: float64 if every feature is numeric, else object with float numeric columns."""
        if self.numeric_only:
            return np.array(tuples, dtype=np.float64).reshape(len(tuples), self.n_features)  # None becomes NaN
        X = np.array(tuples, dtype=object).reshape(len(tuples), self.n_features)
        for j in self._nullable_cat_idx:
            column = X[:, j]
            column[np.equal(column, None)] = MISSING_CATEGORY
        X[:, self.num_idx] = X[:, self.num_idx].astype(np.float64)
        return X

    def read(self, rows: list[Any], prefix: Loc, indexed: bool, row_locs: list[Loc] | None = None) -> Rows:
        """Check the rows (loc of row i: prefix + (i,) when indexed, else prefix) and build the matrix.

        row_locs: each row's own loc instead, for rows sent inside an object (an instance's "features").
        """
        where = row_locs.__getitem__ if row_locs is not None else (lambda i: _loc(prefix, indexed, i))
        tuples: list[tuple] = []
        features: list[dict[str, Any]] = []
        issues: list[Issue] = []
        warnings: list[str] = []
        nulls: list[tuple[int, int]] = []
        for i, row in enumerate(rows):
            values = self._fast(row)
            if values is None:
                checked = self._slow(row, i, where(i), issues, warnings, nulls)
                if checked is None:
                    if len(issues) >= MAX_ISSUES:
                        break
                    continue
                values, row = checked
            tuples.append(values)
            features.append(row)
        if issues:
            raise RequestError(422, issues[:MAX_ISSUES], "validation")
        X = self._matrix(tuples, where, nulls)
        return Rows(X=X, raw=features, names=self.names, warnings=warnings)

    def _fast(self, row: Any) -> tuple | None:
        """The row's values in schema order when they pass every check, else None."""
        if type(row) is not dict or len(row) != self.n_features:
            return None
        try:
            values = self._get(row)
        except KeyError:
            return None
        if self.numeric_only:
            return values if set(map(type, values)) <= NUMBER_TYPES else None
        if not set(map(type, self._num(values))) <= NUMBER_TYPES:
            return None
        cats = self._cat(values)
        if not set(map(type, cats)) <= STRING_TYPES:
            return None
        for value, allowed in zip(cats, self._allowed):
            if value not in allowed:
                return None
        return values

    def _slow(self, row: Any, i: int, loc: Loc, issues: list[Issue], warnings: list[str],
              nulls: list[tuple[int, int]]) -> tuple[tuple, dict[str, Any]] | None:
        """Check a row value by value, recording every problem; (values, row as captured) when none."""
        if type(row) is not dict:
            issues.append(Issue(loc, f"expected an object of feature values, got {json_type(row)}", "type_error.object"))
            return None
        before = len(issues)
        for name in row:
            if name not in self._known:
                issues.append(Issue(loc + (name,), UNKNOWN_MSG, "value_error.unknown_feature"))
        values: list[Any] = []
        captured: dict[str, Any] = {}
        for j, name in enumerate(self.names):
            if name not in row:
                issues.append(Issue(loc + (name,), MISSING_MSG, "value_error.missing"))
                continue
            value = self._check_value(j, row[name], loc, issues, warnings)
            captured[name] = None if value is _NULL else value
            if value is _NULL:
                nulls.append((i, j))
                value = MISSING_CATEGORY if self._rules[j].categorical else math.nan
            values.append(value)
        return (tuple(values), captured) if len(issues) == before else None

    def _check_value(self, j: int, value: Any, row_loc: Loc, issues: list[Issue], warnings: list[str]) -> Any:
        rule = self._rules[j]
        loc = row_loc + (rule.name,)
        if value is None:
            if rule.nullable:
                return _NULL
            issues.append(Issue(loc, "null is not allowed: training saw no missing values for this feature", "value_error.null"))
            return None
        if not rule.categorical:
            return _check_number(value, loc, issues)
        category = as_category(value)
        if category is None:
            issues.append(Issue(loc, f"expected a string (a category), got {json_type(value)}", "type_error.str"))
            return None
        if category not in rule.allowed:
            if self.strict_categories:
                issues.append(Issue(loc, f"unknown category {category!r}: not seen in training", "value_error.category"))
                return None
            row = next((part for part in reversed(row_loc) if type(part) is int), None)
            where = "" if row is None else f"row {row}, "
            warnings.append(f"{where}{rule.name}: category {category!r} was not seen in training; the model ignores it")
        return category

    def _matrix(self, tuples: list[tuple], where: Callable[[int], Loc],
                nulls: list[tuple[int, int]]) -> np.ndarray:
        """One array for all rows; non-finite numbers that were not nulls are refused here."""
        try:
            X = self._build(tuples)
        except OverflowError:
            issues = [Issue(where(i) + (self.names[j],), RANGE_MSG, "value_error.number")
                      for i, j in _overflows(tuples, self.num_idx)]
            raise RequestError(422, issues[:MAX_ISSUES], "validation") from None
        # NaN from an allowed null is fine; other non-finite or absurdly large numbers are refused.
        numbers = X if self.numeric_only else X[:, self.num_idx].astype(np.float64)
        in_range = np.abs(numbers) <= MAX_ABS  # NaN compares False
        if not in_range.all():
            allowed = {(i, self._num_pos[j]) for i, j in nulls if j in self._num_pos}
            bad = [(int(i), int(k)) for i, k in np.argwhere(~in_range) if (int(i), int(k)) not in allowed]
            if bad:
                issues = [Issue(where(i) + (self.names[self.num_idx[k]],),
                                RANGE_MSG if np.isfinite(numbers[i, k]) else NON_FINITE_MSG, "value_error.number")
                          for i, k in bad[:MAX_ISSUES]]
                raise RequestError(422, issues, "validation")
        return X


_NULL = object()  # a null the schema allows: becomes NaN or MISSING_CATEGORY
UNKNOWN_MSG = "unknown feature: not in the model's feature schema (GET /model-info)"
MISSING_MSG = "missing feature: every feature of the schema is required (null where missing values are allowed)"
NON_FINITE_MSG = "expected a finite number: NaN and infinity are not allowed"
RANGE_MSG = f"number out of range: at most {MAX_ABS:g} in absolute value"


def _loc(prefix: Loc, indexed: bool, i: int) -> Loc:
    return prefix + (i,) if indexed else prefix


def _check_number(value: Any, loc: Loc, issues: list[Issue]) -> Any:
    kind = type(value)
    if kind is float or kind is int:
        return value
    if kind is NonFinite:
        issues.append(Issue(loc, f"{NON_FINITE_MSG} (got {value.text})", "value_error.number"))
    else:
        issues.append(Issue(loc, f"expected a number, got {json_type(value)}", "type_error.number"))
    return None


def _overflows(tuples: list[tuple], num_idx: list[int]) -> list[tuple[int, int]]:
    found = []
    for i, values in enumerate(tuples):
        for j in num_idx:
            try:
                float(values[j])
            except OverflowError:
                found.append((i, j))
    return found
