"""The OpenAPI 3.1 document, generated from the route table and the marshmallow schemas the server validates with.

The rules of `api.rules` (bounds, lengths, printable text), the header and storage rules of `api.parsing` and
the statuses each operation can answer are stated here from their single source, so a client (or a fuzzer)
that sends what the document allows is not refused for the form of its request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.field_converter import make_type_list
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import fields as mf

from api import fields as af
from api.parsing import IDEMPOTENCY_KEY, IF_MATCH, MAX_BODY, MAX_DEPTH, MIN_POSITION, STORABLE_PATTERN, body_required
from api.representations import ProblemSchema
from api.resources.actions import BUFFER_NAME
from api.routes import Operation, Route
from api.rules import Between, Pattern, Printable, Size
from api.schemas import AsOf
from ledger.application import REPLAY_LOOKBACK
from ledger.state import MAX_JSON_DEPTH

TITLE = "taskledger native API"
VERSION = "1.0.0"
DESCRIPTION = f"""The event-sourced ledger of long-running tasks.

Errors are `application/problem+json` (RFC 9457). Validation errors list `errors: [{{field, rule}}]`:
400 for an unparseable, absent (where required) or non-object body, a bad query parameter or header,
422 for a body field that breaks a rule. Every write answers `ETag` (the task version) and `Ledger-Position`;
send that position as `Ledger-Min-Position` on a later read to read your write.
`X-Request-Id` is honoured (up to 128 printable ASCII characters) or generated, and always echoed.

No text anywhere in a request may hold a NUL character (PostgreSQL text cannot store it); caller JSON
(`input`, `result`, `stats`, label values) nests at most {MAX_JSON_DEPTH} levels and a body at most
{MAX_DEPTH}; a body has at most {MAX_BODY} bytes. Rules no schema can state are the ledger's own and
answer 422 `invalid-value` naming the field: a cron expression that does not parse or never fires, an
unknown time zone, a step index beyond the task's steps, removing the schedule of a recurring task.
"""
FIELD = re.compile(r"\{(\w+)(?::(\w+)[^}]*)?\}")
CONVERTER_SCHEMAS = {"uuid": {"type": "string", "format": "uuid"}, "int": {"type": "integer", "minimum": 0}}
# Path parameters the resources check beyond their converter (a name that breaks the rule is a 404).
PATH_SCHEMAS = {"buffer": {"type": "string", "pattern": f"^{BUFFER_NAME.pattern}$"}}
JSON_VALUE = {"$ref": "#/components/schemas/JsonValue"}
STORABLE = {"pattern": STORABLE_PATTERN}


def _header_pattern(regex: re.Pattern[str]) -> str:
    return f"^{regex.pattern}$"


HEADERS = {
    "Idempotency-Key": ("Retrying the request with the same key and body returns the first answer "
                        "(with `Idempotent-Replayed: true`) and records nothing; another body with that key "
                        "is a 422 `idempotency-key-reused`. Keys belong to the authenticated user. A create "
                        "answers the task as first created; a complete or fail answers the write receipt of "
                        f"its first attempt, looked for among the task's last {REPLAY_LOOKBACK} events (older, "
                        "the retry gets the refusal the task's state gives, such as 409). 1 to 255 printable "
                        "ASCII characters.",
                        {"type": "string", "pattern": _header_pattern(IDEMPOTENCY_KEY)}),
    "If-Match": ('The task\'s ETag (`"3"`, `W/"3"` or `3`): the update applies only at that version, else 412 '
                 "`version-mismatch`; `*` means any version. Optional.",
                 {"type": "string", "pattern": _header_pattern(IF_MATCH)}),
    "Ledger-Min-Position": ("Wait (bounded) until the read models reached this log position; 503 "
                            "`projection-lagging` with `Retry-After` if they do not in time. A position beyond the "
                            "log's head (no write answered it yet) is a 400 `position-beyond-head` at once.",
                            {"type": "string", "pattern": _header_pattern(MIN_POSITION)}),
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "required": True,
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
CHALLENGE = {"WWW-Authenticate": {"description": "The schemes accepted: Basic and Bearer", "required": True,
                                  "schema": {"type": "string"}}}
ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Malformed request: a bad query parameter or header, an unparseable or absent body (`errors` names "
          "it); `invalid-cursor`; `position-beyond-head`", {}),
    401: ("Missing or invalid credentials", CHALLENGE),
    403: ("Role not allowed", {}),
    404: ("Not found: the task, the version, the token, or a malformed id in the path", {}),
    409: ("Conflict with the task's state or lease, or (users) the name exists", {}),
    410: ("The task was dropped (its history is still readable)", {}),
    412: ("If-Match does not match the task's version", {}),
    413: (f"Body over {MAX_BODY} bytes", {}),
    415: ("Body is not JSON", {}),
    422: ("A body field breaks a rule (`errors` names it)", {}),
    429: ("Too many failed logins from this address or for this user name (`too-many-failed-logins`)",
          RETRY_AFTER),
    503: ("The database does not answer (`database-unavailable`) or the read models lag (`projection-lagging`)",
          RETRY_AFTER),
}


class _Converter(OpenAPIConverter):
    """apispec's converter, plus the object-level rules a body schema declares (`BodySchema.json_schema`)."""

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        result: dict[str, Any] = super().schema2jsonschema(schema)
        result.update(getattr(schema, "json_schema", {}))
        return result


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


def build_openapi(routes: Iterable[Route]) -> dict[str, Any]:
    plugin = _Plugin()
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.1.0", plugins=[plugin],
                   info={"description": DESCRIPTION})
    plugin.map_to_openapi_type(AsOf, "string", None)
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(request_rules)
    spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.schema("JsonValue", component=_json_value())
    for route in routes:
        spec.path(path=openapi_path(route.template), parameters=_path_parameters(route.template),
                  operations={op.method.lower(): _operation(op, route.template) for op in route.operations})
    document: dict[str, Any] = spec.to_dict()
    return document


def openapi_path(template: str) -> str:
    """`/tasks/{task_id:uuid}` → `/tasks/{task_id}`."""
    return FIELD.sub(r"{\1}", template)


def request_rules(self: Any, field: mf.Field, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The rules of a request field (`api.fields`, `api.rules`) in JSON Schema keywords; response fields pass."""
    if isinstance(field, af.JsonValue):
        return {**JSON_VALUE}
    if isinstance(field, AsOf):
        return {"anyOf": [{"pattern": f"^{AsOf.VERSION.pattern}$", "maxLength": AsOf.MAX_DIGITS},
                          {"format": "date-time"}]}
    types = set(make_type_list(ret.get("type")))
    keywords: dict[str, Any] = {}
    for rule in field.validators:
        if isinstance(rule, Between):
            keywords.update(_between(rule))
        elif isinstance(rule, Size):
            keywords.update(_size(rule, types))
        elif isinstance(rule, (Printable, Pattern)):
            keywords["pattern"] = rule.pattern
    if isinstance(field, af.Str) and "pattern" not in keywords and "enum" not in ret:
        keywords.update(STORABLE)
    if isinstance(field, af.Object):
        keys = self.field2property(field.key_field) if field.key_field is not None else {**STORABLE}
        keys.pop("type", None)
        keywords["propertyNames"] = keys
        if field.value_field is None:
            keywords["additionalProperties"] = {**JSON_VALUE}
    return keywords


def _between(rule: Between) -> dict[str, Any]:
    keywords: dict[str, Any] = {}
    if rule.low is not None:
        keywords["exclusiveMinimum" if rule.exclusive_low else "minimum"] = rule.low
    if rule.high is not None:
        keywords["maximum"] = rule.high
    return keywords


def _size(rule: Size, types: set[str]) -> dict[str, Any]:
    unit = "Items" if "array" in types else "Properties" if "object" in types else "Length"
    keywords: dict[str, Any] = {f"min{unit}": rule.low} if rule.low else {}
    if rule.high is not None:
        keywords[f"max{unit}"] = rule.high
    return keywords


def _json_value() -> dict[str, Any]:
    """Any JSON value whose text (keys included) holds no NUL; the nesting bound is in the description."""
    return {"description": f"Any JSON value: no NUL in any string or key, nested at most {MAX_JSON_DEPTH} levels",
            "anyOf": [{"type": ["null", "boolean", "number"]}, {"type": "string", **STORABLE},
                      {"type": "array", "items": JSON_VALUE},
                      {"type": "object", "propertyNames": STORABLE, "additionalProperties": JSON_VALUE}]}


def _path_parameters(template: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True,
             "schema": PATH_SCHEMAS.get(name) or CONVERTER_SCHEMAS.get(converter, {"type": "string"})}
            for name, converter in FIELD.findall(template)]


def _operation(op: Operation, template: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": op.name, "summary": op.summary, "tags": [op.tag],
        "security": [] if op.roles is None else [{"basic": []}, {"bearer": []}],
        "description": "No authentication." if op.roles is None else f"Roles: {', '.join(sorted(op.roles))}.",
        "parameters": [{"name": h, "in": "header", "required": False, "description": HEADERS[h][0],
                        "schema": HEADERS[h][1]} for h in op.headers],
        "responses": {str(op.status): _success(op), **_also(op), **_errors(op, template)},
    }
    if op.query is not None:
        result["parameters"].append({"in": "query", "schema": op.query})
    if op.body is not None:
        required = body_required(op.body)
        result["requestBody"] = {
            "required": required is not None,
            "description": f"Required: {required}." if required else "Optional: an absent body means `{}`.",
            "content": {"application/json": {"schema": op.body}}}
    return result


def _success(op: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {"description": op.summary}
    if op.response is not None and op.status != 204:
        response["content"] = {"application/json": {"schema": op.response}}
    if op.writes:
        response["headers"] = {
            "ETag": {"description": "The task version after the write", "schema": {"type": "string"}},
            "Ledger-Position": {"description": "Event-log position of the write", "schema": {"type": "string"}},
        }
    if "Idempotency-Key" in op.headers:
        response.setdefault("headers", {})["Idempotent-Replayed"] = {
            "description": "`true` when this is the first answer given again to a retry with the same "
                           "Idempotency-Key (nothing was recorded); absent otherwise",
            "schema": {"type": "string", "enum": ["true"]}}
    return response


def _also(op: Operation) -> dict[str, Any]:
    """Further answers the route table names: bodiless successes, or problems with their own description."""
    problem = {"application/problem+json": {"schema": "Problem"}}
    return {str(code): {"description": text, **({"content": problem} if code >= 400 else {})}
            for code, text in op.also}


def _errors(op: Operation, template: str) -> dict[str, Any]:
    """Every problem status the gate, the handlers and the resources can answer on this operation."""
    codes = {400, 404}
    if "{task_id" in template and op.method != "GET" or op.name == "getTask":
        codes |= {410}
    if op.roles is not None:
        codes |= {401, 403, 429, 503}  # 503: the account store (or the ledger) does not answer
    if op.body is not None:
        codes |= {413, 415, 422}
    if op.writes:
        codes |= {409}
    if "If-Match" in op.headers:
        codes |= {412}
    if op.reads_view:
        codes |= {503}
    problem = {"application/problem+json": {"schema": "Problem"}}
    return {str(c): {"description": ERRORS[c][0], "content": problem,
                     **({"headers": ERRORS[c][1]} if ERRORS[c][1] else {})}
            for c in sorted(codes) if str(c) not in {str(code) for code, _ in op.also}}
