"""The OpenAPI 3 document, generated from the route table and the marshmallow schemas."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from api.representations import ProblemSchema
from api.schemas import AsOf
from api.routes import Operation, Route

TITLE = "taskledger native API"
VERSION = "1.0.0"
DESCRIPTION = """The event-sourced ledger of long-running tasks.

Errors are `application/problem+json` (RFC 9457). Validation errors list `errors: [{field, rule}]`:
400 for an unparseable body, a non-object body or a bad query parameter or header, 422 for a
body field that breaks a rule. Every write answers `ETag` (the task version) and `Ledger-Position`;
send that position as `Ledger-Min-Position` on a later read to read your write.
`X-Request-Id` is honoured (up to 128 printable characters) or generated, and always echoed.
"""
FIELD = re.compile(r"\{(\w+)(?::(\w+)[^}]*)?\}")
CONVERTER_SCHEMAS = {"uuid": {"type": "string", "format": "uuid"}, "int": {"type": "integer", "minimum": 0}}
HEADERS = {
    "Idempotency-Key": "Retrying a create with the same key and body returns the first answer "
                       "(with `Idempotent-Replayed: true`) and records nothing; another body with that key "
                       "is a 422.",
    "If-Match": 'The task\'s ETag (`"3"`): the update applies only at that version, else 412. Optional.',
    "Ledger-Min-Position": "Wait (bounded) until the read models reached this log position; 503 "
                           "`projection-lagging` with `Retry-After` if they do not in time.",
}
ERRORS = {
    400: "Malformed request", 401: "Missing or invalid credentials", 403: "Role not allowed", 404: "Not found",
    409: "Conflict with the task's state or lease", 410: "The task was dropped (its history is still readable)",
    412: "If-Match does not match", 413: "Body over 1 MiB", 415: "Body is not JSON", 422: "A field breaks a rule",
    503: "Read models lag",
}


def build_openapi(routes: Iterable[Route]) -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.0.3", plugins=[plugin],
                   info={"description": DESCRIPTION})
    plugin.map_to_openapi_type(AsOf, "string", None)
    spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    for route in routes:
        spec.path(path=openapi_path(route.template), parameters=_path_parameters(route.template),
                  operations={op.method.lower(): _operation(op, route.template) for op in route.operations})
    document: dict[str, Any] = spec.to_dict()
    return document


def openapi_path(template: str) -> str:
    """`/tasks/{task_id:uuid}` → `/tasks/{task_id}`."""
    return FIELD.sub(r"{\1}", template)


def _path_parameters(template: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True,
             "schema": CONVERTER_SCHEMAS.get(converter, {"type": "string"})}
            for name, converter in FIELD.findall(template)]


def _operation(op: Operation, template: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": op.name, "summary": op.summary, "tags": [op.tag],
        "security": [] if op.roles is None else [{"basic": []}, {"bearer": []}],
        "description": "No authentication." if op.roles is None else f"Roles: {', '.join(sorted(op.roles))}.",
        "parameters": [{"name": h, "in": "header", "required": False, "description": HEADERS[h],
                        "schema": {"type": "string"}} for h in op.headers],
        "responses": {str(op.status): _success(op), **{str(c): {"description": d} for c, d in op.also},
                      **_errors(op, template)},
    }
    if op.query is not None:
        result["parameters"].append({"in": "query", "schema": op.query})
    if op.body is not None:
        result["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    return result


def _success(op: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {"description": op.summary}
    if op.response is not None and op.status != 204:
        response["content"] = {"application/json": {"schema": op.response}}
    if op.writes:
        response["headers"] = {
            "ETag": {"description": "The task version after the write", "schema": {"type": "string"}},
            "Ledger-Position": {"description": "Event-log position of the write", "schema": {"type": "integer"}},
        }
    return response


def _errors(op: Operation, template: str) -> dict[str, Any]:
    codes = {400, 404}
    if "{task_id" in template and op.method != "GET" or op.name == "getTask":
        codes |= {410}
    if op.roles is not None:
        codes |= {401, 403}
    if op.body is not None:
        codes |= {413, 415, 422}
    if op.writes:
        codes |= {409}
    if "If-Match" in op.headers:
        codes |= {412}
    if op.reads_view:
        codes |= {503}
    problem = {"application/problem+json": {"schema": "Problem"}}
    return {str(c): {"description": ERRORS[c], "content": problem} for c in sorted(codes)}
