"""`/v1/task/{taskId}/results/{bufferId}/{token}`: output pages by token, acknowledgements, closing a buffer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import falcon

from api.facades.common import FacadeReply, write_reply
from api.facades.longpoll import client_gone
from api.facades.openlookeng import wire
from api.facades.openlookeng.store import DONE, poll_intervals
from api.facades.openlookeng.tasks import OpenLooKengResource
from api.facades.openlookeng.wire import refuse

PAGES = "application/X-presto-pages"
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
DEFAULT_WAIT = 1.0
MAX_WAIT = 2.0
MAX_TOKEN = 2**63 - 1
_BUFFER = re.compile(r"[A-Za-z0-9._-]{1,128}")


@dataclass(frozen=True)
class Batch:
    """Pages read from one token on, and whether the buffer will ever give more."""

    token: int
    data: list[str]
    complete: bool

    def reply(self) -> FacadeReply:
        headers = {"X-Presto-Page-Sequence-Id": str(self.token),
                   "X-Presto-Page-End-Sequence-Id": str(self.token + len(self.data)),
                   "X-Presto-Buffer-Complete": "true" if self.complete else "false"}
        if not self.data:
            return FacadeReply(204, None, headers, None)
        return FacadeReply(200, "".join(self.data).encode("utf-8"), headers, PAGES)


class Results(OpenLooKengResource):
    """`GET .../results/{bufferId}/{token}`: 200 with pages, or 204 when none is ready within the wait."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str, buffer_id: str,
               token: str) -> None:
        who = self.read(req)
        tid, buffer, start = wire.check_task_id(task_id), _buffer(buffer_id), _token(token)
        max_bytes = wire.header_data_size(req.get_header("X-Presto-Max-Size"), "X-Presto-Max-Size",
                                          DEFAULT_MAX_SIZE)
        wait = wire.header_duration(req.get_header("X-Presto-Max-Wait"), "X-Presto-Max-Wait")
        wait = min(MAX_WAIT, DEFAULT_WAIT if wait is None else wait)
        with self.tasks.long_polls.slot(who.name) as granted:
            batch = self._read(tid, buffer, start, max(1, max_bytes), wait if granted else 0.0,
                               client_gone(req.env))
        write_reply(req, resp, batch.reply(), None)

    def _read(self, tid: str, buffer: str, start: int, max_bytes: int, wait: float,
              gone: Callable[[], bool]) -> Batch:
        deadline, pauses = time.monotonic() + wait, poll_intervals()
        while True:
            doc = self.tasks.require(tid)
            buf = (doc.get("buffers") or {}).get(buffer)
            if buf is not None and buf["closed"]:
                return Batch(start, [], True)  # a closed (aborted) buffer serves nothing more
            pages = self.deps.view.output_pages(UUID(doc["id"]), buffer, start, max_bytes)
            ended = doc["state"] in DONE or bool(buf and buf["finished"])
            if pages or ended or time.monotonic() >= deadline or gone():
                return Batch(start, [p["data"] for p in pages], _complete(doc, buf, start, pages))
            time.sleep(min(next(pauses), max(0.0, deadline - time.monotonic())))


class Acknowledge(OpenLooKengResource):
    """`GET .../results/{bufferId}/{token}/acknowledge`: 204 (reads are not recorded; pages stay in the ledger)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str, buffer_id: str,
               token: str) -> None:
        self.read(req)
        tid = wire.check_task_id(task_id)
        _buffer(buffer_id)
        _token(token)
        self.tasks.require(tid)
        resp.status = falcon.HTTP_204


class ResultsBuffer(OpenLooKengResource):
    """`DELETE .../results/{bufferId}`: closes the buffer (an `OutputClosed` event), 204."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: str, buffer_id: str) -> None:
        who = self.control(req, "change tasks")
        tid, buffer = wire.check_task_id(task_id), _buffer(buffer_id)
        closed = self.tasks.close_buffer(tid, buffer, self.caller(req, who))
        if closed is not None:
            self.written(resp, closed)
        resp.status = falcon.HTTP_204


def _complete(doc: dict[str, Any], buf: dict[str, Any] | None, start: int, pages: list[dict[str, Any]]) -> bool:
    """No page will ever follow: the last page was just served, or the buffer (or task) ended and none remain."""
    if any(p["last"] for p in pages):
        return True
    end = start + len(pages)
    if buf is None:
        return doc["state"] in DONE
    return (bool(buf["finished"]) or doc["state"] in DONE) and end >= buf["pages"]


def _buffer(raw: str) -> str:
    """An output buffer id: an integer as openLooKeng 1.x sends, or any ledger buffer name (the doc's `out`)."""
    if _BUFFER.fullmatch(raw) is None:
        raise refuse(404, "A buffer id is 1 to 128 letters, digits, '.', '_' or '-'.")
    return raw


def _token(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_TOKEN:
        raise refuse(404, "A token is a page sequence number: an integer from 0 to 2^63-1.")
    return int(raw)
