"""The Task aggregate: one event stream per task, every action a persisted event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import get_topic, resolve_topic

from ledger import recurrence as rec
from ledger import state as st
from ledger.errors import (
    IllegalTransitionError,
    InvalidValueError,
    LeaseMismatchError,
    NoRunDueError,
    TaskDroppedError,
)
from ledger.hashing import event_hash
from ledger.rules import ABSENT, check_limits, check_new_task, check_progress
from ledger.state import TaskState, check_json, dump_json, ecosystem, load_json

__all__ = ["Meta", "Task", "event_hash", "check_new_task", "is_task_event", "next_state", "StaleSnapshotError"]

# What a snapshot's state was computed by: the TaskState fields and the evolve rules. Bump the
# number whenever an `evolve` changes what it computes, so snapshots taken by older code are
# ignored (loads replay the events instead) rather than trusted.
SNAPSHOT_RULES = 1
SNAPSHOT_SCHEMA = f"{SNAPSHOT_RULES}:" + ",".join(TaskState.__dataclass_fields__)


class StaleSnapshotError(Exception):
    """A snapshot taken by code with other state rules: replay the events instead of trusting it."""


@dataclass(frozen=True)
class Meta:
    """Who asked for an action, through which API, in which request (and its Idempotency-Key), and when."""

    actor: str
    request_id: str
    facade: str
    at: datetime
    idempotency_key: str | None = None


class Chained:
    """Mixin for every task event: evolves the shared TaskState and links the hash chain."""

    timestamp: datetime
    originator_version: int

    def evolve(self, state: TaskState) -> None:
        """Applies this event's own change to the state (no checks: replay never re-validates)."""

    def evolve_state(self, state: TaskState, chain: bool = True) -> None:
        """Evolves the state; `chain=False` leaves chain_hash for a later event to set (batch replays)."""
        self.evolve(state)
        state.version = self.originator_version
        state.updated_at = self.timestamp.isoformat()
        if chain:
            state.chain_hash = event_hash(self)


class Task(Aggregate):
    """A long-running task whose whole life is recorded as events."""

    class Event(Chained, Aggregate.Event):
        actor: str
        request_id: str
        facade: str
        prev_hash: str
        # Fields added later with a None default, stored only when set: an event without them is stored and
        # hashed exactly as before they existed, and one stored before reads the class default.
        SPARSE: ClassVar[tuple[str, ...]] = ()

        def __post_init__(self) -> None:
            super().__post_init__()
            stored = vars(self)
            for name in self.SPARSE:
                if name in stored and stored[name] is None:
                    del stored[name]

        def apply(self, aggregate: Any) -> None:
            self.evolve_state(aggregate.state)

    class Created(Chained, Aggregate.Created):
        actor: str
        request_id: str
        facade: str
        prev_hash: str
        namespace: str
        external_id: str | None
        name: str
        type: str
        input_json: str
        submitter: str
        labels_json: str
        steps: list[str]
        max_retries: int
        heartbeat_timeout: float
        schedule_json: str
        idempotency: str | None

        def initial_state(self) -> TaskState:
            return TaskState(
                id=str(self.originator_id),
                namespace=self.namespace,
                facade=self.facade,
                external_ids={ecosystem(self.namespace, self.facade): self.external_id} if self.external_id else {},
                name=self.name,
                type=self.type,
                input=load_json(self.input_json),
                submitter=self.submitter,
                labels=load_json(self.labels_json),
                steps=[{"name": n, "status": "PENDING", "output": ""} for n in self.steps],
                max_retries=self.max_retries,
                heartbeat_timeout=self.heartbeat_timeout,
                schedule=load_json(self.schedule_json),
                created_at=self.timestamp.isoformat(),
                schedule_cursor=self.timestamp.isoformat() if self.schedule_json != "null" else None,
            )

        def apply(self, aggregate: Any) -> None:
            aggregate.state = self.initial_state()
            aggregate.idempotency = self.idempotency
            self.evolve_state(aggregate.state)

    def __init__(self) -> None:
        self.state: TaskState
        self.idempotency: str | None

    class Snapshot(BaseSnapshot):
        """The task's whole state at a version, as JSON text (caller JSON never meets the transcoder)."""

        @classmethod
        def take(cls, aggregate: Any) -> Task.Snapshot:
            return cls(originator_id=aggregate.id, originator_version=aggregate.version,  # type: ignore[call-arg]
                       timestamp=aggregate.modified_on, topic=get_topic(type(aggregate)),
                       state={"schema": SNAPSHOT_SCHEMA, "task": dump_json(aggregate.state.to_dict()),
                              "idempotency": aggregate.idempotency, "created_on": aggregate.created_on})

        def mutate(self, _: Any) -> Any:
            if self.state.get("schema") != SNAPSHOT_SCHEMA:
                raise StaleSnapshotError(f"snapshot schema {self.state.get('schema')!r} is not {SNAPSHOT_SCHEMA!r}")
            task = object.__new__(resolve_topic(self.topic))
            task.__dict__.update({"_id": self.originator_id, "_version": self.originator_version,
                                  "_created_on": self.state["created_on"], "_modified_on": self.timestamp,
                                  "_pending_events": [], "state": TaskState.from_dict(load_json(self.state["task"])),
                                  "idempotency": self.state["idempotency"]})
            return task

    @classmethod
    def create(cls, meta: Meta, task_id: Any, **fields: Any) -> Task:
        task = cls._create(cls.Created, id=task_id, timestamp=meta.at, actor=meta.actor,
                           request_id=meta.request_id, facade=meta.facade, prev_hash="", **fields)
        return task

    # ----------------------------------------------------------------- events
    class Updated(Event):
        changes_json: str

        def evolve(self, state: TaskState) -> None:
            changes = load_json(self.changes_json)
            rearm = "schedule" in changes and changes["schedule"] != state.schedule
            for key, value in changes.items():
                setattr(state, key, value)
            if rearm:
                rec.arm(state, self.timestamp.isoformat())

    class Started(Event):
        worker: str
        lease_epoch: int

        def evolve(self, state: TaskState) -> None:
            state.state = st.RUNNING
            state.worker = self.worker
            state.lease_epoch = self.lease_epoch
            state.last_heartbeat = self.timestamp.isoformat()
            state.started_at = state.started_at or self.timestamp.isoformat()
            state.ended_at = None
            state.error = None
            rec.take_run(state)

    class HeartbeatRecorded(Event):
        lease_epoch: int
        progress: float | None
        message: str | None
        stats_json: str | None

        def evolve(self, state: TaskState) -> None:
            state.last_heartbeat = self.timestamp.isoformat()
            if self.progress is not None:
                state.progress = self.progress
            if self.message is not None:
                state.message = self.message
            if self.stats_json is not None:
                state.stats = load_json(self.stats_json)

    class ProgressReported(Event):
        lease_epoch: int
        progress: float
        message: str | None

        def evolve(self, state: TaskState) -> None:
            state.progress = self.progress
            if self.message is not None:
                state.message = self.message

    class StepUpdated(Event):
        lease_epoch: int
        step: int
        status: str | None
        output: str | None
        append: bool

        def evolve(self, state: TaskState) -> None:
            step = state.steps[self.step]
            if self.status is not None:
                step["status"] = self.status
            if self.output is not None:
                step["output"] = step["output"] + self.output if self.append else self.output

    class OutputAppended(Event):
        lease_epoch: int
        buffer: str
        sequence: int
        data: str
        positions: int
        last: bool

        def evolve(self, state: TaskState) -> None:
            buf = state.buffers.setdefault(
                self.buffer, {"pages": 0, "bytes": 0, "positions": 0, "finished": False, "closed": False}
            )
            buf["pages"] += 1
            buf["bytes"] += len(self.data)
            buf["positions"] += self.positions
            buf["finished"] = buf["finished"] or self.last

    class OutputClosed(Event):
        buffer: str

        def evolve(self, state: TaskState) -> None:
            buf = state.buffers.setdefault(
                self.buffer, {"pages": 0, "bytes": 0, "positions": 0, "finished": True, "closed": False}
            )
            buf["closed"] = True

    class Paused(Event):
        reason: str | None

        def evolve(self, state: TaskState) -> None:
            state.state = st.PAUSED
            state.worker = None
            rec.requeue_run(state)

    class Resumed(Event):
        def evolve(self, state: TaskState) -> None:
            state.state = st.QUEUED
            state.worker = None
            state.ended_at = None
            rec.arm(state, self.timestamp.isoformat())

    class CancelRequested(Event):
        reason: str | None

        def evolve(self, state: TaskState) -> None:
            state.state = st.CANCELLING

    class Cancelled(Event):
        reason: str | None
        # Set when the worker confirmed a cancel by failing under its lease (with that request's key, if any).
        lease_epoch: int | None = None
        idempotency_key: str | None = None
        SPARSE = ("lease_epoch", "idempotency_key")

        def evolve(self, state: TaskState) -> None:
            state.state = st.CANCELLED
            state.worker = None
            state.ended_at = self.timestamp.isoformat()
            rec.end_runs(state)

    class Aborted(Event):
        reason: str | None

        def evolve(self, state: TaskState) -> None:
            state.state = st.ABORTED
            state.worker = None
            state.ended_at = self.timestamp.isoformat()
            rec.end_runs(state)

    class Completed(Event):
        lease_epoch: int
        result_json: str
        idempotency_key: str | None = None  # the request's Idempotency-Key: a retry with it is answered again
        SPARSE = ("idempotency_key",)

        def evolve(self, state: TaskState) -> None:
            state.result = load_json(self.result_json)
            state.progress = 100.0
            state.worker = None
            if state.current_run is not None:
                rec.finish_run(state)  # a recurring task waits for its next run
            else:
                state.state = st.SUCCEEDED
                state.ended_at = self.timestamp.isoformat()

    class Failed(Event):
        lease_epoch: int
        error: str
        requeued: bool
        idempotency_key: str | None = None  # the request's Idempotency-Key: a retry with it is answered again
        SPARSE = ("idempotency_key",)

        def evolve(self, state: TaskState) -> None:
            state.error = self.error
            state.worker = None
            if self.requeued:
                state.state = st.QUEUED
                state.retries += 1
                rec.requeue_run(state)
            elif state.current_run is not None:
                rec.finish_run(state)  # the run failed; the task waits for its next run
            else:
                state.state = st.FAILED
                state.ended_at = self.timestamp.isoformat()

    class Dropped(Event):
        force: bool

        def evolve(self, state: TaskState) -> None:
            state.dropped = True

    class RunTriggered(Event):
        """An occurrence of the schedule became a run waiting for a worker."""

        run: int
        time: str
        reason: str | None

        def evolve(self, state: TaskState) -> None:
            rec.trigger(state, self.run, self.time)

    class OccurrenceSkipped(Event):
        """An occurrence came while a run was waiting or in progress (reason `overlap` or `queue-full`)."""

        run: int
        time: str
        reason: str

        def evolve(self, state: TaskState) -> None:
            rec.count_occurrence(state, self.run, self.time)

    class OccurrencesMissed(Event):
        """Occurrences found too late (no scheduler ran then): numbered first_run, first_run + 1, …"""

        first_run: int
        times: list[str]

        def evolve(self, state: TaskState) -> None:
            rec.count_occurrence(state, self.first_run + len(self.times) - 1, self.times[-1])

    class LeaseExpired(Event):
        """No heartbeat came before the deadline: the lease is void (its epoch is retired) and the task moves on."""

        lease_epoch: int
        deadline: str
        outcome: str

        def evolve(self, state: TaskState) -> None:
            state.lease_epoch = self.lease_epoch + 1
            state.error = f"lease {self.lease_epoch} of {state.worker} expired at {self.deadline}"
            state.worker = None
            if self.outcome == rec.CANCELLED:
                state.state = st.CANCELLED
                state.ended_at = self.timestamp.isoformat()
                rec.end_runs(state)
            elif self.outcome == rec.RETRYING:
                state.state = st.QUEUED
                state.retries += 1
                rec.requeue_run(state)
            elif state.current_run is not None:
                rec.finish_run(state)
            else:
                state.state = st.FAILED
                state.ended_at = self.timestamp.isoformat()

    # --------------------------------------------------------------- commands
    UPDATABLE: ClassVar[tuple[str, ...]] = (
        "name", "input", "labels", "max_retries", "heartbeat_timeout", "schedule",
    )

    def _record(self, event_class: type[Task.Event], meta: Meta, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=meta.at, actor=meta.actor,
                           request_id=meta.request_id, facade=meta.facade,
                           prev_hash=self.state.chain_hash, **fields)

    def _require(self, action: str, allowed: tuple[str, ...]) -> None:
        if self.state.dropped:
            raise TaskDroppedError(self.id)
        if self.state.state not in allowed:
            raise IllegalTransitionError(self.id, self.state.state, action, allowed)

    def _require_lease(self, action: str, lease_epoch: int, allowed: tuple[str, ...] = (st.RUNNING,)) -> None:
        """A stale lease is refused as stale in every state, as heartbeats are (fencing of expired leases)."""
        if self.state.dropped:
            raise TaskDroppedError(self.id)
        if lease_epoch != self.state.lease_epoch:
            raise LeaseMismatchError(self.id, lease_epoch, self.state.lease_epoch, self.state.worker)
        self._require(action, allowed)

    def update(self, meta: Meta, changes: dict[str, Any]) -> None:
        self._require("update", (st.QUEUED, st.RUNNING, st.PAUSED, st.CANCELLING, st.FAILED))
        unknown = sorted(set(changes) - set(self.UPDATABLE))
        if unknown:
            raise InvalidValueError(unknown[0], "is not an updatable field")
        if "schedule" in changes:
            self._check_schedule_change(changes["schedule"])
        check_limits(changes.get("max_retries", ABSENT), changes.get("heartbeat_timeout", ABSENT))
        for field, value in changes.items():
            check_json(field, value)
        self._record(self.Updated, meta, changes_json=dump_json(changes))

    def _check_schedule_change(self, schedule: dict[str, Any] | None) -> None:
        """A recurring task stays recurring; a task becomes recurring only while no lease is held."""
        if schedule is None and self.state.schedule is not None:
            raise InvalidValueError("schedule", "cannot be removed from a recurring task; pause or cancel it")
        if schedule is not None and self.state.schedule is None and self.state.state in st.LEASED:
            raise IllegalTransitionError(self.id, self.state.state, "add a schedule while a worker holds the lease",
                                         (st.QUEUED, st.PAUSED, st.FAILED))

    def start(self, meta: Meta, worker: str) -> int:
        self._require("start", (st.QUEUED,))
        if self.state.schedule is not None and not self.state.pending_runs:
            raise NoRunDueError(self.id)
        epoch = self.state.lease_epoch + 1
        self._record(self.Started, meta, worker=worker, lease_epoch=epoch)
        return epoch

    def heartbeat(self, meta: Meta, lease_epoch: int, progress: float | None = None,
                  message: str | None = None, stats: dict[str, Any] | None = None) -> str:
        """Records a heartbeat if the lease is live and tells the worker what to do next."""
        s = self.state
        if lease_epoch != s.lease_epoch:
            raise LeaseMismatchError(self.id, lease_epoch, s.lease_epoch, s.worker)
        if s.dropped:
            return st.STOP
        if s.state not in st.LEASED:
            return {st.PAUSED: st.PAUSE, st.CANCELLED: st.CANCEL}.get(s.state, st.STOP)
        check_progress(progress)
        check_json("stats", stats)
        self._record(self.HeartbeatRecorded, meta, lease_epoch=lease_epoch, progress=progress,
                     message=message, stats_json=None if stats is None else dump_json(stats))
        return st.CANCEL if s.state == st.CANCELLING else st.CONTINUE

    def report_progress(self, meta: Meta, lease_epoch: int, progress: float, message: str | None = None) -> None:
        self._require_lease("report progress", lease_epoch)
        check_progress(progress)
        self._record(self.ProgressReported, meta, lease_epoch=lease_epoch, progress=progress, message=message)

    def update_step(self, meta: Meta, lease_epoch: int, step: int, status: str | None,
                    output: str | None, append: bool) -> None:
        self._require_lease("update a step", lease_epoch)
        if not 0 <= step < len(self.state.steps):
            raise InvalidValueError("step", f"must be between 0 and {len(self.state.steps) - 1}")
        if status is not None and status not in st.STEP_STATUSES:
            raise InvalidValueError("status", f"must be one of {', '.join(st.STEP_STATUSES)}")
        self._record(self.StepUpdated, meta, lease_epoch=lease_epoch, step=step, status=status,
                     output=output, append=append)

    def append_output(self, meta: Meta, lease_epoch: int, buffer: str, data: str,
                      positions: int, last: bool) -> int:
        self._require_lease("append output", lease_epoch)
        buf = self.state.buffers.get(buffer)
        if buf and (buf["finished"] or buf["closed"]):
            raise IllegalTransitionError(self.id, "output-finished", f"append to buffer {buffer!r}")
        sequence = buf["pages"] if buf else 0
        self._record(self.OutputAppended, meta, lease_epoch=lease_epoch, buffer=buffer,
                     sequence=sequence, data=data, positions=positions, last=last)
        return sequence

    def close_output(self, meta: Meta, buffer: str) -> None:
        if self.state.dropped:
            raise TaskDroppedError(self.id)
        self._record(self.OutputClosed, meta, buffer=buffer)

    def pause(self, meta: Meta, reason: str | None = None) -> None:
        self._require("pause", st.ACCEPTS["pause"])
        self._record(self.Paused, meta, reason=reason)

    def resume(self, meta: Meta) -> None:
        self._require("resume", st.ACCEPTS["resume"])
        self._record(self.Resumed, meta)

    def cancel(self, meta: Meta, reason: str | None = None, again: bool = True) -> None:
        """`again=False` (bulk): a task already CANCELLING is refused, not cancelled at once."""
        self._require("cancel", st.ACCEPTS["cancel"] if again else st.BULK_ACCEPTS["cancel"])
        if self.state.state == st.RUNNING:
            self._record(self.CancelRequested, meta, reason=reason)
        else:
            self._record(self.Cancelled, meta, reason=reason)

    def abort(self, meta: Meta, reason: str | None = None) -> None:
        self._require("abort", st.ACCEPTS["abort"])
        self._record(self.Aborted, meta, reason=reason)

    def complete(self, meta: Meta, lease_epoch: int, result: Any = None) -> None:
        self._require_lease("complete", lease_epoch)
        check_json("result", result)
        self._record(self.Completed, meta, lease_epoch=lease_epoch, result_json=dump_json(result),
                     idempotency_key=meta.idempotency_key)

    def fail(self, meta: Meta, lease_epoch: int, error: str, retry: bool = True, confirm_cancel: bool = True) -> None:
        """Fails the run (requeued while retries are left, unless `retry` is false). A task being cancelled is
        CANCELLED instead: failing under its lease is how its worker confirms that it stopped."""
        if confirm_cancel and self.state.state == st.CANCELLING:
            self._require_lease("fail", lease_epoch, st.LEASED)
            self._record(self.Cancelled, meta, reason=error, lease_epoch=lease_epoch,
                         idempotency_key=meta.idempotency_key)
            return
        self._require_lease("fail", lease_epoch)
        requeued = retry and self.state.retries < self.state.max_retries
        self._record(self.Failed, meta, lease_epoch=lease_epoch, error=error, requeued=requeued,
                     idempotency_key=meta.idempotency_key)

    def record_occurrences(self, meta: Meta, due: list[datetime], now: datetime, grace: timedelta,
                           complete: bool = True) -> int:
        """Records each due occurrence after the schedule's cursor as a run, skipped or missed; how many."""
        if not rec.schedule_active(self.state):
            return 0  # a stopped (paused) or ended schedule records nothing
        after = rec.cursor(self.state)
        fresh = [t for t in due if after < t <= now]
        outcomes = rec.plan(fresh, now, grace, self.state, complete)
        missed = [o.time for o in outcomes if o.kind == rec.MISSED]
        if missed:
            self._record(self.OccurrencesMissed, meta, first_run=self.state.occurrence_count + 1,
                         times=[rec.iso(t) for t in missed])
        for o in outcomes[len(missed):]:
            event = self.RunTriggered if o.kind == rec.RUN else self.OccurrenceSkipped
            self._record(event, meta, run=self.state.occurrence_count + 1, time=rec.iso(o.time), reason=o.reason)
        return len(outcomes)

    def expire_lease(self, meta: Meta, now: datetime) -> int | None:
        """Expires the lease if its heartbeats stopped for longer than heartbeat_timeout; the epoch it expired."""
        deadline = rec.lease_deadline(self.state)
        if self.state.dropped or deadline is None or now <= deadline:
            return None
        expired = self.state.lease_epoch
        self._record(self.LeaseExpired, meta, lease_epoch=expired, deadline=rec.iso(deadline),
                     outcome=rec.expiry_outcome(self.state))
        return expired

    def drop(self, meta: Meta, force: bool = False) -> None:
        if self.state.dropped:
            raise TaskDroppedError(self.id)
        droppable = st.ACCEPTS["drop"]
        if not force and self.state.state not in droppable:
            raise IllegalTransitionError(self.id, self.state.state, "drop without force", droppable)
        self._record(self.Dropped, meta, force=force)


def is_task_event(event: Any) -> bool:
    """Task events, as opposed to the ledger's own bookkeeping (id sequences) in the same log."""
    return isinstance(event, (Task.Event, Task.Created))


def next_state(state: TaskState | None, event: Any, chain: bool = True) -> TaskState:
    """The state after one more event: what replay does, for read models that keep only state.

    `chain=False` skips hashing this event: only the hash of a task's latest event is kept, so a
    batch that is followed by another event of the same task need not compute it.
    """
    if isinstance(event, Task.Created):
        fresh = event.initial_state()
        event.evolve_state(fresh, chain)
        return fresh
    if state is None or state.version != event.originator_version - 1:
        have = None if state is None else state.version
        raise ValueError(f"event {event.originator_version} of task {event.originator_id} "
                         f"does not follow stored version {have}")
    event.evolve_state(state, chain)
    return state
