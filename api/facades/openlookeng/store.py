"""Where the facade finds and changes openLooKeng tasks: reads from the task view, writes through the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from api.facades.common import FacadeDeps, wait_own_write
from api.facades.longpoll import LongPolls
from api.representations import written_doc
from api.facades.openlookeng.taskinfo import NAMESPACE, PREFIX, TASK_TYPE, task_id, wire_state
from api.facades.openlookeng.wire import refuse
from ledger import state as st
from ledger.application import external_task_id
from ledger.commands import (
    AbortTask,
    CancelTask,
    Caller,
    CloseOutput,
    CompleteTask,
    CreateTask,
    FailTask,
    UpdateTask,
    Written,
)
from ledger.errors import DuplicateTaskError, TaskNotFoundError
from ledger.state import TaskState
from projections.queries import TaskFilter

POLL_INTERVAL = 0.025  # a waiting poll reads again after 25 ms, doubling to at most POLL_INTERVAL_MAX
POLL_INTERVAL_MAX = 0.2


def poll_intervals() -> Iterator[float]:
    """Pauses between the reads of a long poll: quick at first, then at most 5 reads a second."""
    interval = POLL_INTERVAL
    while True:
        yield interval
        interval = min(POLL_INTERVAL_MAX, interval * 2)
LIST_PAGE = 500
DONE = (*st.TERMINAL, st.FAILED)


class OpenLooKengTasks:
    """The openLooKeng tasks: those of `openlookeng:*` namespaces, addressed as `openlookeng:default`."""

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps
        self.long_polls = LongPolls()  # per worker process: task-status and results polls together

    # ------------------------------------------------------------------ reads
    def all(self) -> list[dict[str, Any]]:
        """Every current task of every openLooKeng namespace, oldest first."""
        docs: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.deps.view.list(TaskFilter(namespace_prefix=PREFIX), cursor=cursor, limit=LIST_PAGE)
            docs += page.items
            if page.next_cursor is None:
                return docs
            cursor = page.next_cursor

    def require(self, tid: str) -> dict[str, Any]:
        """The view document of a task: its openLooKeng id in `openlookeng:default`, else its ledger id."""
        doc = self.deps.view.find_external(NAMESPACE, tid)
        if doc is None and _is_uuid(tid):
            doc = _own(self.deps.view.get(UUID(tid)), tid)
        if doc is None:
            raise refuse(404, f"Task {tid} is not known.")
        if doc["dropped"]:
            raise refuse(410, f"Task {tid} was dropped; its history is still readable in the native API.")
        return doc

    def wait_change(self, tid: str, current: str, wait: float,
                    gone: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        """The task once its wire state differs from `current`, or as it is when the wait ends (or the client
        has gone: the answer is then written to no one)."""
        deadline = time.monotonic() + wait
        for pause in poll_intervals():
            doc = self.require(tid)
            remaining = deadline - time.monotonic()
            if wire_state(doc) != current or remaining <= 0 or gone():
                return doc
            time.sleep(min(pause, remaining))
        raise AssertionError("poll_intervals never ends")

    # ----------------------------------------------------------------- writes
    def upsert(self, tid: str, update: dict[str, Any], who: Caller) -> dict[str, Any]:
        """Creates the task on its first update; later updates replace its input (none once it is done)."""
        state = self._state(tid)
        if state is None:
            try:
                return self._written(self.deps.ledger.create_task(CreateTask(
                    NAMESPACE, name=tid, type=TASK_TYPE, input=update, external_id=tid), who))
            except DuplicateTaskError:
                state = self._require_state(tid)  # created by a concurrent request meanwhile
        if state.state in DONE or state.input == update:
            return state.to_dict()
        return self._written(self.deps.ledger.update_task(UpdateTask(UUID(state.id), {"input": update}), who))

    def end(self, tid: str, target: str, who: Caller) -> dict[str, Any]:
        """Moves the task to a done state; a task already done is answered unchanged."""
        state = self._require_state(tid)
        if state.state in DONE:
            return state.to_dict()
        ledger, uuid = self.deps.ledger, UUID(state.id)
        if target == "CANCELED":
            written = ledger.cancel_task(CancelTask(uuid, "DELETE /v1/task?targetState=CANCELED"), who)
        elif target == "ABORTED":
            written = ledger.abort_task(AbortTask(uuid, "DELETE /v1/task?targetState=ABORTED"), who)
        elif target == "FINISHED":
            written = ledger.complete_task(CompleteTask(uuid, state.lease_epoch), who)
        else:
            written = ledger.fail_task(FailTask(uuid, state.lease_epoch, "failed through DELETE /v1/task "
                                                "(targetState=FAILED)", retry=False), who)
        return self._written(written)

    def close_buffer(self, tid: str, buffer: str, who: Caller) -> None:
        state = self._require_state(tid)
        if state.buffers.get(buffer, {}).get("closed"):
            return
        wait_own_write(self.deps, self.deps.ledger.close_output(CloseOutput(UUID(state.id), buffer), who).position)

    def _written(self, written: Written) -> dict[str, Any]:
        wait_own_write(self.deps, written.position)
        return written_doc(written)

    def _require_state(self, tid: str) -> TaskState:
        state = self._state(tid)
        if state is None:
            raise refuse(404, f"Task {tid} is not known.")
        return state

    def _state(self, tid: str) -> TaskState | None:
        """The task as the event store has it (never lags), or None; a dropped task is refused."""
        candidates = [external_task_id(NAMESPACE, tid)] + ([UUID(tid)] if _is_uuid(tid) else [])
        for candidate in candidates:
            try:
                state = self.deps.ledger.current_task(candidate)
            except TaskNotFoundError:
                continue
            if _own(state.to_dict(), tid) is None:
                continue
            if state.dropped:
                raise refuse(410, f"Task {tid} was dropped; its history is still readable in the native API.")
            return state
        return None


def _own(doc: dict[str, Any] | None, tid: str) -> dict[str, Any] | None:
    """The document if it is an openLooKeng task this facade knows by `tid`."""
    if doc is None or not doc["namespace"].startswith(PREFIX) or task_id(doc) != tid:
        return None
    return doc


def _is_uuid(text: str) -> bool:
    try:
        return str(UUID(text)) == text.lower()
    except ValueError:
        return False
