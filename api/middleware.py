"""Middleware: request ids, and the gate that applies the route table before any responder runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import falcon

from api.auth import Authenticator, LoginLimiter, authenticate, authorize, identified
from api.parsing import load_body, load_query, wait_for_position
from api.routes import Operation, Route
from projections.queries import TaskView

MAX_REQUEST_ID = 128


class RequestIds:
    """Honours a sane incoming `X-Request-Id`, else makes one; echoes it on every response."""

    def __init__(self, new_id: Callable[[], str]) -> None:
        self.new_id = new_id

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = req.get_header("X-Request-Id")
        valid = given is not None and 0 < len(given) <= MAX_REQUEST_ID and given.isascii() and given.isprintable()
        req.context.request_id = given if valid else self.new_id()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        request_id = getattr(req.context, "request_id", None)
        if request_id is not None:
            resp.set_header("X-Request-Id", request_id)


class Gate:
    """Authenticates, checks the role, parses query and body, and waits for Ledger-Min-Position."""

    def __init__(self, routes: Iterable[Route], auth: Authenticator, view: TaskView, wait: float,
                 limiter: LoginLimiter | None = None) -> None:
        self.operations = {(route.template, op.method): op for route in routes for op in route.operations}
        self.auth, self.view, self.wait, self.limiter = auth, view, wait, limiter

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         params: dict[str, Any]) -> None:
        op = self.operations.get((req.uri_template or "", req.method))
        if op is None:
            return  # falcon answers 405 (or OPTIONS) itself
        if op.roles is not None:
            source = self.limiter.source_of(req) if self.limiter is not None else "-"
            req.context.principal = identified(req, authenticate(self.auth, req.get_header("Authorization"), source,
                                                                 self.limiter))
            authorize(req.context.principal, op.roles, _verb(op))
        req.context.query = load_query(op.query, req)
        req.context.body = load_body(op.body, req) if op.body is not None else {}
        if op.reads_view:
            wait_for_position(req, self.view, self.wait)


def _verb(op: Operation) -> str:
    return op.summary[:1].lower() + op.summary[1:]
