"""Prediction ids: the client's own id for a row when it sends one, else `<request_id>-<row>`.

A ground-truth label refers to a prediction by its id (the design brief's prediction id), so the ids
of one request must be distinct: a duplicate is the client's 422 naming the rows, never two captured
predictions that a label cannot tell apart. A one-row /predict is row 0, so every default id has the
same form. The rules are input_rules' (ID_FIELD, MAX_ID_LENGTH, ID_CONTROL_CHARS); POST /feedback checks the
ids of labels with the same id_problem and duplicates (inference.feedback).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from inference.input_rules import ID_CONTROL_CHARS, MAX_ID_LENGTH
from inference.validation import Issue, Loc, json_type

_control = re.compile(ID_CONTROL_CHARS).search
_suffixes: list[str] = []  # "-0", "-1", …: formatting the row numbers of every batch again costs 3x the concatenation


def default_ids(request_id: str, n: int) -> list[str]:
    """The ids of n rows that came without one: distinct by their row number."""
    if n > len(_suffixes):
        _suffixes.extend(f"-{i}" for i in range(len(_suffixes), n))
    return [request_id + suffix for suffix in _suffixes[:n]]


def assign(given: list[Any], request_id: str, where: Callable[[int], Loc]) -> tuple[list[str], list[Issue]]:
    """The id of each row (given[i], None = none sent) and the problems with those sent.

    where(i): the loc of row i's id, e.g. ("body", "instances", i, "id"). Rows without ids at all: default_ids.
    """
    n = len(given)
    ids = default_ids(request_id, n)
    issues: list[Issue] = []
    sent = [i for i, value in enumerate(given) if value is not None]
    for i in sent:
        problem = id_problem(given[i])
        if problem is None:
            ids[i] = given[i]
        else:
            issues.append(Issue(where(i), *problem))
    if not issues and len(set(ids)) < n:
        issues = duplicates(ids, given, where)
    return ids, issues


def id_problem(value: Any, *, required: bool = False) -> tuple[str, str] | None:
    """(message, type) of what is wrong with an id as sent, or None.

    required: the id of a label (POST /feedback), which must name the prediction it belongs to.
    """
    if type(value) is not str:
        if type(value) in (int, float):
            hint = f': send it as a string, e.g. "{value}"'
        elif value is None and required:
            hint = ": a label names its prediction by the id the prediction answered with"
        else:
            hint = ""
        return f"expected a string, got {json_type(value)}{hint}", "type_error.str"
    if not value:
        if required:
            return "an id must not be empty: send the id the prediction answered with", "value_error.empty"
        return "an id must not be empty: leave it out (or null) to get <request_id>-<row>", "value_error.empty"
    if len(value) > MAX_ID_LENGTH:
        return f"an id is at most {MAX_ID_LENGTH} characters, got {len(value)}", "value_error.too_long"
    if _control(value):
        return "an id must not contain control characters (newline, tab, …)", "value_error.control_character"
    return None


def duplicates(ids: list[str], given: list[Any], where: Callable[[int], Loc]) -> list[Issue]:
    """One issue per later row repeating an earlier row's id, at the id the client sent (a default never repeats)."""
    first: dict[str, int] = {}
    issues = []
    for i, pid in enumerate(ids):
        j = first.setdefault(pid, i)
        if j != i:
            row = i if given[i] is not None else j
            issues.append(Issue(where(row), f"duplicate id {pid!r}: rows {j} and {i} both have it; the ids of a "
                                            "request must be distinct", "value_error.duplicate"))
    return issues
