"""Where the facade finds and changes openLooKeng tasks: reads from the task view, writes through the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from api.facades.common import FacadeDeps, scan
from api.facades.longpoll import LongPolls
from api.facades.openlookeng import updates
from api.facades.openlookeng.taskinfo import NAMESPACE, PREFIX, STATES, TASK_TYPE, task_id, wire_state
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
from ledger.errors import (
    ConcurrentWriteError,
    DuplicateTaskError,
    IllegalTransitionError,
    LeaseMismatchError,
    TaskNotFoundError,
    VersionMismatchError,
)
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


DONE = (*st.TERMINAL, st.FAILED)
MAX_ATTEMPTS = 8  # merges of one update onto a task that concurrent requests keep changing
VERBS = {"CANCELED": "canceled", "ABORTED": "aborted"}


class OpenLooKengTasks:
    """The openLooKeng tasks: those of `openlookeng:*` namespaces, addressed as `openlookeng:default`."""

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps
        self.long_polls = LongPolls()  # per worker process: task-status and results polls together

    # ------------------------------------------------------------------ reads
    def all(self) -> list[dict[str, Any]]:
        """Every current task of every openLooKeng namespace, oldest first."""
        return scan(self.deps.view, TaskFilter(namespace_prefix=PREFIX))[0]

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
    def upsert(self, tid: str, update: dict[str, Any], who: Caller) -> Written | TaskState:
        """Creates the task on its first update; later ones merge into its input (`updates.merge`). A done
        task, or an update that changes nothing, records nothing; a refused body creates nothing."""
        updates.check(update)
        for _ in range(MAX_ATTEMPTS):
            state = self._state(tid)
            if state is None:
                created = self._create(tid, updates.merge(None, update), who)
                if created is not None:
                    return created
                continue  # created by a concurrent request meanwhile: merge into that one
            if state.state in DONE:
                return state  # as the real server ignores updates of done tasks
            merged = updates.merge(state.input, update)
            if merged == state.input:
                return state
            written = self._update(state, merged, who)
            if written is not None:
                return written
        raise refuse(409, f"Task {tid} was changed by other requests while this update was merged; retry.")

    def _create(self, tid: str, update: dict[str, Any], who: Caller) -> Written | None:
        try:
            return self.deps.ledger.create_task(CreateTask(
                NAMESPACE, name=tid, type=TASK_TYPE, input=update, external_id=tid), who)
        except DuplicateTaskError:
            return None

    def _update(self, state: TaskState, merged: dict[str, Any], who: Caller) -> Written | None:
        """The merged input written if the task is still the version it was merged onto; else None (merge
        again: another update, or an end, came in between)."""
        try:
            return self.deps.ledger.update_task(
                UpdateTask(UUID(state.id), {"input": merged}, expected_version=state.version), who)
        except (VersionMismatchError, ConcurrentWriteError, IllegalTransitionError):
            return None

    def end(self, tid: str, target: str, who: Caller) -> Written | TaskState:
        """Moves the task to a done state; a task already done is answered unchanged. A move the ledger
        refuses is a 409 said in openLooKeng's terms."""
        state = self._require_state(tid)
        if state.state in DONE:
            return state
        try:
            return self._end(state, target, who)
        except IllegalTransitionError:
            now = self._require_state(tid)
            if now.state in DONE:
                return now  # it ended meanwhile: answered like any done task
            raise refuse(409, refused_end(tid, now.state, target)) from None
        except LeaseMismatchError:
            raise refuse(409, f"Task {tid} was taken over by another worker while this request ran; "
                              "retry.") from None

    def _end(self, state: TaskState, target: str, who: Caller) -> Written:
        ledger, uuid = self.deps.ledger, UUID(state.id)
        if target == "CANCELED":
            return ledger.cancel_task(CancelTask(uuid, "DELETE /v1/task?targetState=CANCELED"), who)
        if target == "ABORTED":
            return ledger.abort_task(AbortTask(uuid, "DELETE /v1/task?targetState=ABORTED"), who)
        if target == "FINISHED":
            return ledger.complete_task(CompleteTask(uuid, state.lease_epoch), who)
        return ledger.fail_task(FailTask(uuid, state.lease_epoch, "failed through DELETE /v1/task "
                                         "(targetState=FAILED)", retry=False, confirm_cancel=False), who)

    def close_buffer(self, tid: str, buffer: str, who: Caller) -> Written | None:
        """Closes the buffer (None when it was closed already)."""
        state = self._require_state(tid)
        if state.buffers.get(buffer, {}).get("closed"):
            return None
        return self.deps.ledger.close_output(CloseOutput(UUID(state.id), buffer), who)

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


def refused_end(tid: str, state: str, target: str) -> str:
    """Why a task cannot be moved to `target` now, in openLooKeng's states (never the ledger's)."""
    if target in VERBS:
        return f"Task {tid} is {STATES[state]}; it cannot be {VERBS[target]} now."
    if state == st.CANCELLING:
        return (f"Task {tid} is being canceled (it shows RUNNING until its worker confirms); "
                f"it can no longer be moved to {target}.")
    return f"Task {tid} is {STATES[state]}; only a RUNNING task can be moved to {target}."
