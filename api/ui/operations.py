"""`/ui/operations`: every projection's position, head and lag (what `GET /ledger/v1/projections` answers,
judged as `/readyz` judges it), and the watchdog's newest lease expiries.

Both are bounded reads of the projections: `TaskView.status()` (a tracking row per projection, the log's
head, and at a gap the oldest open transaction) and `TaskView.lease_expiries(limit)`, the newest runs the
watchdog ended, read backwards along their own small partial index (`task_runs_lease_expired`).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import falcon

from api.fields import QueryInt, QuerySchema
from api.resources.ops import STALL_SECONDS, held, stalled
from api.rules import Between
from api.ui.pages import Pages, _params, form_query, page
from api.ui.schedules import moment

EXPIRIES = 20  # lease expiries shown unless `limit` asks for another number (up to 500)
UTC = ZoneInfo("UTC")


class OperationsQuery(QuerySchema):
    limit = QueryInt(validate=Between(1, 500))


def projection_row(projection: dict[str, Any]) -> dict[str, Any]:
    """A projection's status as the page shows it: `ok`, `lagging`, or `held` (waiting at a gap in the log
    for an open transaction; `stalled` once that transaction has been open STALL_SECONDS, when /readyz
    says not ready)."""
    waiting = projection.get("held_at") is not None
    status = "held" if waiting else "lagging" if projection.get("lag_events") else "ok"
    late = waiting and bool(projection.get("held_by")) and stalled(projection)
    return {**projection, "status": status, "stalled": late, "held_text": held(projection) if late else None}


def expiry_row(expiry: dict[str, Any]) -> dict[str, Any]:
    return {**expiry, "expired": moment(expiry.get("ended_at"), UTC),
            "deadline_at": moment(expiry.get("deadline"), UTC)}


class Operations:
    """`/ui/operations`: projections and lease expiries, for every signed-in role."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.pages.viewer(req)
        query, errors = form_query(OperationsQuery(), _params(req))
        if errors:
            self.pages.render(req, resp, "operations.html", 400, who, errors=errors,
                              projections=[], expiries=[], head=None, limit=EXPIRIES, stall_seconds=STALL_SECONDS,
                              api=f"{self.pages.deps.base}/projections")
            return
        view, limit = self.pages.deps.view, query.get("limit", EXPIRIES)
        projections = [projection_row(p) for p in view.status()]
        self.pages.render(req, resp, "operations.html", 200, who, errors=[], projections=projections,
                          head=projections[0]["head"] if projections else view.head(),
                          expiries=[expiry_row(e) for e in view.lease_expiries(limit)], limit=limit,
                          stall_seconds=STALL_SECONDS,
                          api=f"{self.pages.deps.base}/projections")
