"""The application factory: wires collaborators into the route table; opens nothing, reads no environment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from uuid import uuid4

import falcon
import falcon.media

from api import facades, jsonwire, problems, ui, unavailable
from api.auth import Authenticator, LoginLimiter
from api.metrics import RequestMetrics
from api.middleware import Gate, RequestIds
from api.openapi import build_openapi
from api.routes import BASE, ROUTES, Deps
from ledger.application import TaskLedger
from projections.queries import TaskView


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_request_id() -> str:
    return uuid4().hex


def create_app(ledger: TaskLedger, view: TaskView, auth: Authenticator, *,
               clock: Callable[[], datetime] = utc_now, request_ids: Callable[[], str] = new_request_id,
               min_position_wait: float = 5.0, lag_budget_events: int = 1000,
               multiprocess_metrics: bool = False, limiter: LoginLimiter | None = None) -> falcon.App:
    """The native API as a WSGI app; failed logins are limited per process by `limiter` (a default one)."""
    limiter = limiter or LoginLimiter()
    app = falcon.App(middleware=(RequestMetrics(), RequestIds(request_ids),
                                 Gate(ROUTES, auth, view, min_position_wait, limiter)))
    json_handler = falcon.media.JSONHandler(dumps=jsonwire.dumps)
    app.resp_options.media_handlers.update({falcon.MEDIA_JSON: json_handler, problems.PROBLEM_JSON: json_handler})
    problems.register(app)
    unavailable.register(app)
    deps = Deps(ledger, view, auth, clock, min_position_wait, lag_budget_events, build_openapi(ROUTES),
                multiprocess_metrics)
    for route in ROUTES:
        app.add_route(route.template, route.make(deps))
    facades.mount(app, facades.FacadeDeps(ledger, view, auth, clock, min_position_wait, limiter))
    ui.mount(app, ui.UiDeps(ledger, view, auth, limiter, BASE))
    return app
