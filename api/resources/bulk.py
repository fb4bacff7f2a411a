"""`/bulk/{action}`: an operator's action on every task a filter selects (docs/api.md, Bulk actions).

A run walks its selection in creation order, one transaction per chunk (one event per task, each in the
task's own stream, all with the bulk's request id). Each answer covers a part bounded in time; `cursor`
continues where it stopped, so an interrupted run is resumed by sending the last cursor again. The
selection is fixed when the run starts: tasks created later are not in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import falcon

from api.parsing import caller
from api.problems import Problem
from api.representations import task_doc
from api.resources.tasks import task_filter
from api.schemas import DEFAULT_BULK_MAX, MAX_BULK
from ledger import commands as c
from ledger.application import TaskLedger
from ledger.state import BULK_ACCEPTS
from ledger.errors import LedgerError
from projections.queries import TaskFilter, TaskView

CHUNK = 500  # tasks per transaction
PART_SECONDS = 5.0  # an answer comes after about this long; the caller goes on with its cursor
SHOWN = 50  # tasks a dry run shows; skipped tasks an answer lists


@dataclass(frozen=True)
class Progress:
    """What a cursor carries from one part to the next."""

    bulk_id: str
    action: str
    selection: str  # fingerprint of the query string
    started: str  # ISO instant: tasks created from then on are not in the selection
    matched: int
    after: str | None  # the view's cursor
    acted: int = 0
    skipped: int = 0

    def encode(self) -> str:
        raw = json.dumps(self.__dict__, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, action: str, selection: str) -> Progress:
        try:
            given = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            progress = cls(**given)
            datetime.fromisoformat(progress.started)
            if not all(isinstance(v, int) for v in (progress.matched, progress.acted, progress.skipped)):
                raise TypeError
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
            raise _bad_cursor("is not a cursor of a bulk action") from None
        if progress.action != action or progress.selection != selection:
            raise _bad_cursor(f"belongs to another bulk action ({progress.action} of another selection): "
                              "send it with the query string and action it came with")
        return progress


def _bad_cursor(rule: str) -> Problem:
    return Problem(400, "invalid-cursor", f"cursor {rule}", errors=[{"field": "cursor", "rule": rule}])


def selection_of(req: falcon.Request) -> str:
    """The query string's filter, whatever the order of its parameters."""
    pairs = sorted((k, v) for k, values in req.params.items() for v in (values if isinstance(values, list) else [values]))
    return hashlib.sha256(urlencode(pairs).encode()).hexdigest()[:32]


class BulkAction:
    """`POST /bulk/{pause|resume|cancel|abort|drop}?<the filter of GET /tasks>`."""

    def __init__(self, ledger: TaskLedger, view: TaskView, action: str) -> None:
        self.ledger, self.view, self.action = ledger, view, action

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        flt = task_filter(req.context.query)
        selection = selection_of(req)
        if body.get("cursor") is not None:
            progress = Progress.decode(body["cursor"], self.action, selection)
        elif body.get("dry_run", False):
            resp.media = self._dry_run(req, flt, body)
            return
        else:
            progress = self._start(req, flt, selection, body.get("max", DEFAULT_BULK_MAX))
        resp.media = self._run(req, resp, progress, flt, body)

    def _accepts(self, body: dict[str, Any]) -> tuple[str, ...] | None:
        """The states this action accepts; None: any (a forced drop)."""
        return None if self.action == "drop" and body.get("force") else BULK_ACCEPTS[self.action]

    def _start(self, req: falcon.Request, flt: TaskFilter, selection: str, most: int) -> Progress:
        """A run's start: its selection fixed and within `max`, or refused before anything is written."""
        started = self.ledger.clock().isoformat()
        matched = sum(self.view.count_by_state(_frozen(flt, started), most + 1).values())
        if matched > most:
            rule = (f"more than {most} tasks match; raise max (at most {MAX_BULK}) or narrow the filter "
                    "(dry_run: true counts them)")
            raise Problem(422, "bulk-over-max", f"max {rule}", errors=[{"field": "max", "rule": rule}])
        return Progress(req.context.request_id, self.action, selection, started, matched, None)

    def _dry_run(self, req: falcon.Request, flt: TaskFilter, body: dict[str, Any]) -> dict[str, Any]:
        """How many tasks the selection holds, by state; how many the action would change; the first of them."""
        most = body.get("max", DEFAULT_BULK_MAX)
        accepts = self._accepts(body)
        frozen = _frozen(flt, self.ledger.clock().isoformat())
        by_state = dict(sorted(self.view.count_by_state(frozen, MAX_BULK + 1).items()))
        matched = sum(by_state.values())
        would_act = sum(n for state, n in by_state.items() if accepts is None or state in accepts)
        states = flt.states if accepts is None else tuple(s for s in (flt.states or accepts) if s in accepts)
        empty = accepts is not None and not states  # the filter's states and the accepted ones do not meet
        shown = [] if empty else self.view.list(replace(frozen, states=states), limit=SHOWN, count=False).items
        return {"bulk_id": req.context.request_id, "action": self.action, "dry_run": True, "done": True,
                "cursor": None, "matched": matched, "matched_is_lower_bound": matched > MAX_BULK,
                "by_state": by_state, "would_act": would_act, "would_skip": matched - would_act,
                "max": most, "within_max": matched <= most, "items": [task_doc(d) for d in shown],
                "acted": 0, "skipped": 0, "skipped_items": []}

    def _run(self, req: falcon.Request, resp: falcon.Response, progress: Progress, flt: TaskFilter,
             body: dict[str, Any]) -> dict[str, Any]:
        accepts = self._accepts(body)
        who = c.Caller(caller(req).actor, progress.bulk_id)
        frozen = _frozen(flt, progress.started)
        deadline = time.monotonic() + PART_SECONDS
        after, acted, skipped, position = progress.after, 0, 0, 0
        skipped_items: list[dict[str, Any]] = []
        done = False
        while not done and (not acted + skipped or time.monotonic() < deadline):  # a chunk at least
            page = self.view.list(frozen, sort="created_at", cursor=after, limit=CHUNK, count=False)
            chosen = []
            for doc in page.items:
                if accepts is None or doc["state"] in accepts:
                    chosen.append(UUID(doc["id"]))
                else:
                    skipped += 1
                    _note(skipped_items, doc["id"], doc["state"], f"{doc['state']} does not accept {self.action}")
            if chosen:
                outcomes = self.ledger.act_on_many(c.BulkAction(self.action, tuple(chosen), body.get("reason"),
                                                                bool(body.get("force", False))), who)
                for task_id, outcome in zip(chosen, outcomes):
                    if isinstance(outcome, LedgerError):
                        skipped += 1
                        _note(skipped_items, str(task_id), getattr(outcome, "state", None), str(outcome))
                    else:
                        acted += 1
                        position = max(position, outcome.position)
            after = page.next_cursor
            done = after is None
        progress = replace(progress, after=after, acted=progress.acted + acted, skipped=progress.skipped + skipped)
        if position:
            resp.set_header("Ledger-Position", str(position))
        return {"bulk_id": progress.bulk_id, "action": self.action, "dry_run": False, "done": done,
                "cursor": None if done else progress.encode(), "matched": progress.matched,
                "acted": progress.acted, "skipped": progress.skipped, "part": {"acted": acted, "skipped": skipped},
                "skipped_items": skipped_items}


def _frozen(flt: TaskFilter, started: str) -> TaskFilter:
    """The selection as of the run's start: tasks created from then on are left out."""
    moment = datetime.fromisoformat(started)
    before = moment if flt.created_before is None else min(flt.created_before, moment)
    return replace(flt, created_before=before)


def _note(items: list[dict[str, Any]], task_id: str, state: str | None, reason: str) -> None:
    if len(items) < SHOWN:
        items.append({"task_id": task_id, "state": state, "reason": reason})
