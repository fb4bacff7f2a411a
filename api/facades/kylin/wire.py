"""Kylin's wire conventions: the v2 envelope or bare v1 JSON, its error body, its callers and roles."""

from __future__ import annotations

import json
import re
from typing import Any

import falcon

from api import jsonwire
from api.facades.common import FacadeReply, Refusal, Wire
from api.problems import Problem
from ledger import errors as le

FACADE = "kylin"
V2_MEDIA = "application/vnd.apache.kylin-v2+json"
V1_MEDIA = "application/json"
SUCCESS = "000"
UNDEFINED = "999"


def is_v2(req: falcon.Request) -> bool:
    """Kylin routes a request to its v2 controllers when Accept names the v2 media type."""
    return V2_MEDIA in (req.get_header("Accept") or "").lower()


def media_type(req: falcon.Request) -> str:
    return f"{V2_MEDIA if is_v2(req) else V1_MEDIA};charset=UTF-8"


def answer(req: falcon.Request, resp: falcon.Response, data: Any) -> None:
    """200 with the data: inside the envelope for v2, bare for v1."""
    body = {"code": SUCCESS, "data": data, "msg": ""} if is_v2(req) else data
    resp.status = falcon.HTTP_200
    resp.content_type = media_type(req)
    resp.data = jsonwire.dumps(body)


class KylinWire(Wire):
    """Kylin's ErrorResponse (v2 media type or plain JSON, as the request asked), Spring's statuses and texts."""

    name = FACADE
    paths = re.compile(r"/kylin/api(/|$)")
    ledger_status = {
        le.TaskNotFoundError: 404, le.TaskDroppedError: 404, le.IllegalTransitionError: 400,
        le.InvalidValueError: 400, le.ConcurrentWriteError: 409, le.DuplicateTaskError: 409,
    }

    def render(self, req: falcon.Request, refusal: Refusal) -> FacadeReply:
        """`exception` is what kylinpy shows as the error's text."""
        message = refusal.message or ""
        body = {"code": UNDEFINED, "data": None, "msg": message, "stacktrace": "", "exception": message,
                "url": req.url}
        return FacadeReply(refusal.status, json.dumps(body), refusal.headers, content_type=media_type(req))

    def unauthenticated(self, req: falcon.Request) -> str:
        return "Unauthorized: this endpoint needs valid credentials (HTTP Basic or a bearer token)"

    def forbidden(self, role: str, roles: frozenset[str], action: str) -> str:
        return f"Access is denied: role '{role}' may not do this; allowed roles: {', '.join(sorted(roles))}"

    def not_allowed(self, req: falcon.Request, allowed: tuple[str, ...]) -> str:
        return f"Request method '{req.method}' not supported"

    def unknown_path(self, req: falcon.Request) -> Refusal:
        return Refusal(404, f"No handler found for {req.method} {req.path}")

    def http_refusal(self, req: falcon.Request, error: falcon.HTTPError) -> Refusal:
        refusal = super().http_refusal(req, error)
        if isinstance(error, Problem) and refusal.status not in (413, 415, 429, 503):
            refusal.status = 400  # Kylin answers bad input with 400
        return refusal


WIRE = KylinWire()
