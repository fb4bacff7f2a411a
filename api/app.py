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
from api.replica import ReadRouting
from api.routes import BASE, ROUTES, Deps
from ledger.application import TaskLedger
from projections.queries import TaskView
from projections.replica import replica_of


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_request_id() -> str:
    return uuid4().hex


def create_app(ledger: TaskLedger, view: TaskView, auth: Authenticator, *,
               clock: Callable[[], datetime] = utc_now, request_ids: Callable[[], str] = new_request_id,
               min_position_wait: float = 5.0, lag_budget_events: int = 1000,
               multiprocess_metrics: bool = False, limiter: LoginLimiter | None = None) -> falcon.App:
    """The native API as a WSGI app; failed logins are limited per process by `limiter` (a default one).

    A `view` that reads from a replica (projections.replica) gets each request routed (docs/replicas.md)."""
    limiter = limiter or LoginLimiter()
    routed = replica_of(view)
    routing = (ReadRouting(tuple(facade.WIRE.paths for facade in facades.FACADES)),) if routed else ()
    app = falcon.App(middleware=(RequestMetrics(), RequestIds(request_ids), *routing,
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
    # The dashboard reads the primary: its pages after an action show the action without a position to wait for.
    ui.mount(app, ui.UiDeps(ledger, routed.primary if routed else view, auth, limiter, BASE))
    return app
