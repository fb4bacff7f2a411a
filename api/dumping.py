"""A response schema's dump, compiled once into plain functions.

marshmallow stays the one definition of what the API answers (OpenAPI is generated from it); this
only makes its dump of the hottest shape — a task document, on every write and every read — cost
what a dict comprehension costs. `tests/api/test_dumping.py` checks it against marshmallow's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, fields

Convert = Callable[[Any], Any]


def compile_dump(schema: Schema) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """`schema.dump(obj)` for mappings, without marshmallow's per-field machinery."""
    plan = [(name, field.attribute or name, _converter(field)) for name, field in schema.dump_fields.items()]

    def dump(obj: Mapping[str, Any]) -> dict[str, Any]:
        return {name: convert(obj[key]) for name, key, convert in plan if key in obj}

    return dump


def _converter(field: fields.Field) -> Convert:  # noqa: PLR0911 -- one branch per supported field type
    if isinstance(field, fields.Nested):
        nested = compile_dump(field.schema)
        return _or_none(nested)
    if isinstance(field, fields.List):
        inner = _converter(field.inner)
        return _or_none(lambda values: [inner(v) for v in values])
    if isinstance(field, fields.Dict):
        if field.key_field is None and field.value_field is None:
            return _or_none(dict)
        key = _converter(field.key_field) if field.key_field is not None else _same
        value = _converter(field.value_field) if field.value_field is not None else _same
        return _or_none(lambda mapping: {key(k): value(v) for k, v in mapping.items()})
    for kind, convert in SIMPLE:
        if type(field) is kind:
            return convert
    raise TypeError(f"no compiled dump for {type(field).__name__} fields; dump this schema with marshmallow")


def _same(value: Any) -> Any:
    return value


def _or_none(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _text(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _boolean(value: Any) -> Any:
    if value is None:
        return None
    if value in fields.Boolean.truthy:
        return True
    if value in fields.Boolean.falsy:
        return False
    return bool(value)


SIMPLE: tuple[tuple[type, Convert], ...] = (
    (fields.Raw, _same),
    (fields.String, _text),
    (fields.UUID, _or_none(str)),
    (fields.Integer, _or_none(int)),
    (fields.Float, _or_none(float)),
    (fields.Boolean, _boolean),
)
