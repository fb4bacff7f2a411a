"""Strict marshmallow fields: JSON types are not coerced, and every rule reads as a short sentence."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, pre_load

COMMON = {"required": "is required", "null": "must not be null", "validator_failed": "is not valid"}
# A '+' in a query string decodes to a space; a client that forgot to escape the offset meant '+'.
_SPACED_OFFSET = re.compile(r"^(.*T[0-9:.]+) ([0-9]{2}:?[0-9]{2})$")


class Str(fields.String):
    default_error_messages = {**COMMON, "invalid": "must be a string"}


class Int(fields.Integer):
    """A JSON integer: a number without a fractional part (`3` or `3.0`, as JSON Schema counts); `1.5`, `"1"`
    and `true` are refused."""

    default_error_messages = {**COMMON, "invalid": "must be an integer", "too_large": "is too large"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)


class Number(fields.Float):
    """A finite JSON number; strings and booleans are refused."""

    default_error_messages = {**COMMON, "invalid": "must be a number", "too_large": "is too large",
                              "special": "must be a finite number"}

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._validated(value)


class Bool(fields.Boolean):
    """A JSON `true` or `false`, nothing else."""

    default_error_messages = {**COMMON, "invalid": "must be true or false"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Object(fields.Dict):
    default_error_messages = {**COMMON, "invalid": "must be a JSON object"}


class Array(fields.List):
    default_error_messages = {**COMMON, "invalid": "must be a JSON array"}


class JsonValue(fields.Raw):
    """Any JSON value, null included."""

    default_error_messages = {**COMMON}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)


class QueryInt(fields.Integer):
    default_error_messages = {**COMMON, "invalid": "must be an integer", "too_large": "is too large"}


class QueryBool(fields.Boolean):
    default_error_messages = {**COMMON, "invalid": "must be true or false"}
    truthy = {"true", "1"}
    falsy = {"false", "0"}


class QueryTime(fields.AwareDateTime):
    """An ISO-8601 instant with a UTC offset (`Z` or `+02:00`)."""

    default_error_messages = {**COMMON, "invalid": "must be an ISO-8601 time with a UTC offset",
                              "invalid_awareness": "must include a UTC offset"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str):
            value = _SPACED_OFFSET.sub(r"\1+\2", value)
        return super()._deserialize(value, attr, data, **kwargs)


class BodySchema(Schema):
    """Base of request-body schemas: unknown fields are refused by name."""

    error_messages = {"unknown": "is not a known field", "type": "must be a JSON object"}
    # Object-level rules of a `validates_schema` method, in JSON Schema keywords for the OpenAPI document.
    json_schema: ClassVar[dict[str, Any]] = {}


class QuerySchema(BodySchema):
    """Base of query-string schemas: a parameter given twice is refused unless it is a list."""

    error_messages = {"unknown": "is not a known query parameter", "type": "must be a query string"}

    @pre_load
    def _single_values(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        repeated = {name: ["must be given only once"] for name, value in data.items()
                    if isinstance(value, list) and not isinstance(self.fields.get(name), fields.List)}
        if repeated:
            raise ValidationError(repeated)
        return data
