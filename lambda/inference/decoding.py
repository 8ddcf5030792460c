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
from inference.input_rules import BATCH_FIELD, ID_FIELD, MAX_ABS, MIN_BATCH, SINGLE_FIELD, FeatureRule, RowRules
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


def unwrap(doc: Any, key: str, expected: type, what: str, optional: tuple[str, ...] = ()) -> Any:
    """doc[key] from a body that must be {key: <expected>}, with any of the optional fields beside it."""
    if type(doc) is dict and type(doc.get(key)) is expected and (len(doc) == 1 or doc.keys() <= {key, *optional}):
        return doc[key]
    if type(doc) is not dict:
        issues = [Issue(("body",), f"expected an object with {key!r}, got {json_type(doc)}", "type_error.object")]
    else:
        issues = [Issue(("body", name), "unexpected field", "value_error.extra") for name in doc
                  if name != key and name not in optional]
        if key not in doc:
            issues.append(Issue(("body", key), "field required", "missing"))
        elif type(doc[key]) is not expected:
            issues.append(Issue(("body", key), f"expected {what}, got {json_type(doc[key])}", f"type_error.{expected.__name__}"))
    raise RequestError(422, issues, "validation")


class TypedBodies:
    """Decoders of {"id": …, "features": row} and {"instances": [row, ...]} for one schema.

    Instances are all rows or all {"id", "features"} pairs here (msgspec takes no union of two object
    types); a batch mixing them takes the lenient path. Ids are only typed as strings: their rules are
    prediction_ids', applied after either path.
    """

    def __init__(self, schema: FeatureSchema, max_batch: int) -> None:
        rules = RowRules(schema).features
        if any(rule.categorical and not rule.categories for rule in rules):
            # A category list to check against is needed: leave such bodies to the lenient path.
            self._one = self._batch = None
            return
        # Fields are named f0, f1, ... and renamed to the features: a feature's name need not be an identifier.
        row = msgspec.defstruct("Row", [(f"f{k}", _field_type(rule)) for k, rule in enumerate(rules)],
                                forbid_unknown_fields=True, rename={f"f{k}": rule.name for k, rule in enumerate(rules)})
        one = msgspec.defstruct("One", [("row", row), ("id", str | None, None)], forbid_unknown_fields=True,
                                rename={"row": SINGLE_FIELD, "id": ID_FIELD})
        bounds = msgspec.Meta(min_length=MIN_BATCH, max_length=max_batch)
        batch = msgspec.defstruct("Batch", [("rows", Annotated[list[row], bounds])],  # type: ignore[valid-type]
                                  forbid_unknown_fields=True, rename={"rows": BATCH_FIELD})
        pairs = msgspec.defstruct("Pairs", [("pairs", Annotated[list[one], bounds])],  # type: ignore[valid-type]
                                  forbid_unknown_fields=True, rename={"pairs": BATCH_FIELD})
        self._one = msgspec.json.Decoder(one).decode
        self._batch = msgspec.json.Decoder(batch).decode
        self._pairs = msgspec.json.Decoder(pairs).decode

    def one(self, body: bytes) -> tuple[list[tuple], list[str | None]] | None:
        """The row's values in schema order (None = missing) and its id as sent (None: none), or None when
        the body needs the lenient path."""
        if self._one is None:
            return None
        try:
            decoded = self._one(body)
        except msgspec.DecodeError:  # ValidationError is one
            return None
        return [_astuple(decoded.row)], [decoded.id]

    def batch(self, body: bytes) -> tuple[list[tuple], list[str | None] | None] | None:
        """Each row's values and, for pairs, the ids as sent (None: rows without ids)."""
        if self._batch is None:
            return None
        try:
            return [_astuple(row) for row in self._batch(body).rows], None
        except msgspec.DecodeError:
            pass
        try:  # fails at the first instance for a batch of rows: cheap beside the lenient path that follows
            pairs = self._pairs(body).pairs
        except msgspec.DecodeError:
            return None
        return [_astuple(pair.row) for pair in pairs], [pair.id for pair in pairs]


def _field_type(rule: FeatureRule) -> Any:
    """The msgspec type of one feature: the values the lenient checks take as they are (no integer codes, no unseen categories)."""
    kind: Any = Literal[rule.categories] if rule.categorical else _Number
    return kind | None if rule.nullable else kind
