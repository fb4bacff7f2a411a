"""Operations: liveness, readiness, projection status and the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import falcon

from api.problems import Problem
from projections.queries import TaskView
from projections.replica import replica_of

log = logging.getLogger(__name__)
# A projection held at a gap this long by one open transaction makes the service not ready.
STALL_SECONDS = 5.0


class Health:
    """`/healthz`: the process answers; nothing else is checked."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "time": self.clock().isoformat()}


class Ready:
    """`/readyz`: the database answers and every projection is within the lag budget."""

    def __init__(self, view: TaskView, lag_budget_events: int) -> None:
        self.view, self.budget = view, lag_budget_events

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        projections = self._projections()
        reasons = [f"projection {p['name']} is {p['lag_events']} events behind (budget {self.budget})"
                   for p in projections if p["lag_events"] > self.budget]
        reasons += [held(p) for p in projections if stalled(p)]
        if reasons:
            raise Problem(503, "not-ready", "; ".join(reasons), reasons=reasons)
        resp.media = {"status": "ready", "projections": projections}
        routed = replica_of(self.view)
        if routed is not None:  # a replica that is down or behind is reported, not a reason: GETs fail over
            resp.media["replica"] = routed.replica_status()

    def _projections(self) -> list[dict[str, Any]]:
        try:
            self.view.ping()
            return self.view.status()
        # Readiness reports any failure to reach the database as "not ready" instead of a 500.
        except Exception as error:  # noqa: BLE001
            log.warning("readiness check failed: %s", type(error).__name__)
            reason = f"the database is not reachable ({type(error).__name__})"
            raise Problem(503, "not-ready", reason, reasons=[reason]) from None


def stalled(projection: dict[str, Any]) -> bool:
    """Whether a projection has waited at a gap for a transaction open longer than STALL_SECONDS."""
    by = projection.get("held_by") or {}
    return float(by.get("open_seconds") or 0) >= STALL_SECONDS


def held(projection: dict[str, Any]) -> str:
    by = projection["held_by"]
    return (f"projection {projection['name']} waits at position {projection['held_at']} for transaction of "
            f"pid {by['pid']} ({by.get('application_name') or 'no application name'}, database "
            f"{by.get('database')}, {by.get('state')}) open {by['open_seconds']:.0f} s: end that transaction "
            f"(pg_terminate_backend) or give its sessions an idle_in_transaction_session_timeout")


class ProjectionStatus:
    """`/projections`: position, head and lag of every projection."""

    def __init__(self, view: TaskView) -> None:
        self.view = view

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"projections": self.view.status()}


class OpenApiDocument:
    """`/openapi.json`: generated once from the route table and the schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
