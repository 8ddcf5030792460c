"""Request bodies from bytes: a typed one-pass decode for well-formed bodies, a lenient one for the rest.

The typed decoder (msgspec structs compiled from the feature schema) parses and checks a body
in one C pass: exact feature names, numbers in range, null only where allowed, known categories.
Anything it refuses goes to the lenient parse and the value-by-value checks in validation.py,
which accept what the rules accept (integer category codes, unseen categories) and name every
problem; so the typed pass is only a shortcut, never a second set of rules.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec

from contracts.schema import FeatureSchema
from inference.input_rules import BATCH_FIELD, MAX_ABS, MIN_BATCH, SINGLE_FIELD, FeatureRule, RowRules
from inference.validation import Issue, NonFinite, RequestError, json_type

_decode = msgspec.json.Decoder().decode
encode = msgspec.json.Encoder().encode
_astuple = msgspec.structs.astuple
_Number = Annotated[float, msgspec.Meta(ge=-MAX_ABS, le=MAX_ABS)]


def parse_json(body: bytes) -> Any:
    """Any JSON; the standard parser as a second try reads NaN/Infinity so validation can name the field."""
    try:
        return _decode(body)
    except RecursionError:  # nesting past the parser's depth: a client error, never a 500
        raise RequestError(400, [Issue(("body",), "the body is not valid JSON here: it is nested too deeply",
                                       "json_invalid")], "bad_json") from None
    except msgspec.DecodeError as fast_error:
        try:
            doc = json.loads(body, parse_constant=NonFinite)
            json.dumps(doc, ensure_ascii=False, default=lambda _: None).encode()  # lone surrogates fail here
            return doc
        except (ValueError, RecursionError, UnicodeError):
            problem = str(fast_error) if body.strip() else "the body is empty"
            raise RequestError(400, [Issue(("body",), f"the body is not valid JSON: {problem}", "json_invalid")], "bad_json") from None


def unwrap(doc: Any, key: str, expected: type, what: str) -> Any:
    """doc[key] from a body that must be exactly {key: <expected>}."""
    if type(doc) is dict and len(doc) == 1 and type(doc.get(key)) is expected:
        return doc[key]
    if type(doc) is not dict:
        issues = [Issue(("body",), f"expected an object with {key!r}, got {json_type(doc)}", "type_error.object")]
    else:
        issues = [Issue(("body", name), "unexpected field", "value_error.extra") for name in doc if name != key]
        if key not in doc:
            issues.append(Issue(("body", key), "field required", "missing"))
        elif type(doc[key]) is not expected:
            issues.append(Issue(("body", key), f"expected {what}, got {json_type(doc[key])}", f"type_error.{expected.__name__}"))
    raise RequestError(422, issues, "validation")


class TypedBodies:
    """Decoders of {"features": row} and {"instances": [row, ...]} for one schema."""

    def __init__(self, schema: FeatureSchema, max_batch: int) -> None:
        rules = RowRules(schema).features
        if any(rule.categorical and not rule.categories for rule in rules):
            # A category list to check against is needed: leave such bodies to the lenient path.
            self._one = self._batch = None
            return
        # Fields are named f0, f1, ... and renamed to the features: a feature's name need not be an identifier.
        row = msgspec.defstruct("Row", [(f"f{k}", _field_type(rule)) for k, rule in enumerate(rules)],
                                forbid_unknown_fields=True, rename={f"f{k}": rule.name for k, rule in enumerate(rules)})
        one = msgspec.defstruct("One", [("row", row)], forbid_unknown_fields=True, rename={"row": SINGLE_FIELD})
        rows = Annotated[list[row], msgspec.Meta(min_length=MIN_BATCH, max_length=max_batch)]  # type: ignore[valid-type]
        batch = msgspec.defstruct("Batch", [("rows", rows)], forbid_unknown_fields=True, rename={"rows": BATCH_FIELD})
        self._one = msgspec.json.Decoder(one).decode
        self._batch = msgspec.json.Decoder(batch).decode

    def one(self, body: bytes) -> list[tuple] | None:
        """The row's values in schema order (None = missing), or None when the body needs the lenient path."""
        if self._one is None:
            return None
        try:
            return [_astuple(self._one(body).row)]
        except msgspec.DecodeError:  # ValidationError is one
            return None

    def batch(self, body: bytes) -> list[tuple] | None:
        if self._batch is None:
            return None
        try:
            return [_astuple(row) for row in self._batch(body).rows]
        except msgspec.DecodeError:
            return None


def _field_type(rule: FeatureRule) -> Any:
    """The msgspec type of one feature: the values the lenient checks take as they are (no integer codes, no unseen categories)."""
    kind: Any = Literal[rule.categories] if rule.categorical else _Number
    return kind | None if rule.nullable else kind
