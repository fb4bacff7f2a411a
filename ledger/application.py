"""TaskLedger: the application service. Each method loads a task, asks it to act, appends, answers."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError

from ledger import commands as c
from ledger import recurrence as rec
from ledger.domain import Meta, Task, is_task_event
from ledger.rules import check_new_task
from ledger.sequence import IdSequence
from ledger.errors import (
    ConcurrentWriteError,
    DuplicateTaskError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    LeaseMismatchError,
    LedgerError,
    NoTaskAvailableError,
    TaskDroppedError,
    TaskNotFoundError,
    VersionMismatchError,
)
from ledger.history import describe_event
from ledger.schedule import Calendar, normalize_schedule
from ledger.state import TaskState, dump_json, ecosystem
from ledger.store import DEFAULT_CACHE_SIZE, DEFAULT_SNAPSHOT_INTERVAL
from ledger.streams import WRITE_ATTEMPTS, Acted, Pending, StreamApplication

TASK_IDS = uuid5(NAMESPACE_URL, "urn:taskledger:task")
# Occurrences one write records at most (a long gap is recorded over several scheduler ticks).
OCCURRENCES_PER_WRITE = 1000
# A complete or fail retried under its Idempotency-Key looks for its first answer among this many of the
# task's latest events (and only when refused: an accepted one cannot have been recorded before).
REPLAY_LOOKBACK = 100
# What a complete or fail meets once an earlier attempt of it was recorded.
REPEAT_REFUSALS = (IllegalTransitionError, LeaseMismatchError, TaskDroppedError)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# Namespaces of these ecosystems number their tasks 1, 2, 3… per namespace (HugeGraph task ids).
SEQUENTIAL_ECOSYSTEMS = ("hugegraph",)


def external_task_id(namespace: str, external_id: str) -> UUID:
    """Deterministic id of a task known by an external id, so the event store enforces uniqueness."""
    return uuid5(TASK_IDS, f"external\n{namespace}\n{external_id}")


def sequence_id(scope: str) -> UUID:
    return uuid5(TASK_IDS, f"sequence\n{scope}")


def idempotent_task_id(actor: str, key: str) -> UUID:
    return uuid5(TASK_IDS, f"idempotency\n{actor}\n{key}")


class TaskLedger(StreamApplication):
    """Records every task action as an event and answers history questions from the event store."""

    name = "TaskLedger"

    def __init__(self, env: dict[str, str] | None = None, clock: Callable[[], datetime] = utc_now,
                 calendar: Calendar | None = None, *, cache_size: int = DEFAULT_CACHE_SIZE,
                 snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL) -> None:
        super().__init__(env, cache_size=cache_size, snapshot_interval=snapshot_interval)
        self.clock = clock
        self.calendar = calendar

    # ------------------------------------------------------------------ writes
    def create_task(self, cmd: c.CreateTask, caller: c.Caller) -> c.Written:
        check_new_task(cmd.max_retries, cmd.heartbeat_timeout, input=cmd.input, labels=cmd.labels)
        cmd = dataclasses.replace(cmd, schedule=normalize_schedule(cmd.schedule, self.calendar))
        fingerprint = _fingerprint(cmd, caller)
        task_id, cmd = self._identity(cmd, caller)
        task = Task.create(self._meta(caller), task_id, **self._created_fields(cmd, caller, fingerprint))
        appended = self.streams.append([self._append_of(Pending(task))])
        if task_id in appended.stale:
            return self._replay_create(task_id, cmd, fingerprint)
        self.cache.put(task_id, task)
        return c.Written(task_id, task.version, appended.positions[task_id][-1], state=task.state.copy())

    def update_task(self, cmd: c.UpdateTask, caller: c.Caller) -> c.Written:
        changes = dict(cmd.changes)
        if "schedule" in changes:
            changes["schedule"] = normalize_schedule(changes["schedule"], self.calendar)

        def act(task: Task) -> None:
            if cmd.expected_version is not None and cmd.expected_version != task.version:
                raise VersionMismatchError(task.id, cmd.expected_version, task.version)
            task.update(self._meta(caller), changes)
        return self._act(cmd.task_id, act, retry=cmd.expected_version is None)

    def start_task(self, cmd: c.StartTask, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: {"lease_epoch": t.start(self._meta(caller), cmd.worker)})

    def claim_task(self, cmd: c.ClaimTask, caller: c.Caller) -> c.Written:
        """Starts the first candidate still queued; concurrent claimers never get the same task."""
        for task_id in cmd.candidates:
            try:
                return self._act(task_id, lambda t: {"lease_epoch": t.start(self._meta(caller), cmd.worker)},
                                 retry=False)
            except (IllegalTransitionError, TaskDroppedError, ConcurrentWriteError, TaskNotFoundError):
                continue
        raise NoTaskAvailableError("no queued task matches the claim")

    def record_heartbeat(self, cmd: c.RecordHeartbeat, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, self._heartbeat(cmd, caller))

    def record_heartbeats(self, cmds: Sequence[c.RecordHeartbeat], caller: c.Caller) -> list[c.Written | LedgerError]:
        """Many heartbeats in one transaction; an item that conflicts is run again alone, a refused one answers alone."""
        done = self.act_many([(cmd.task_id, self._heartbeat(cmd, caller)) for cmd in cmds], missing=TaskNotFoundError, kind=Task)
        unwritten = {d.aggregate.id: d.version for d in done if isinstance(d, Acted) and d.position is None}
        positions = self.streams.positions_of(unwritten) if unwritten else {}
        return [d if isinstance(d, LedgerError) else self._written(d, with_state=False, positions=positions)
                for d in done]

    def _heartbeat(self, cmd: c.RecordHeartbeat, caller: c.Caller) -> Callable[[Task], Any]:
        return lambda t: {"directive": t.heartbeat(self._meta(caller), cmd.lease_epoch, cmd.progress, cmd.message,
                                                   cmd.stats)}

    def report_progress(self, cmd: c.ReportProgress, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.report_progress(
            self._meta(caller), cmd.lease_epoch, cmd.progress, cmd.message))

    def update_step(self, cmd: c.UpdateStep, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.update_step(
            self._meta(caller), cmd.lease_epoch, cmd.step, cmd.status, cmd.output, cmd.append))

    def append_output(self, cmd: c.AppendOutput, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: {"sequence": t.append_output(
            self._meta(caller), cmd.lease_epoch, cmd.buffer, cmd.data, cmd.positions, cmd.last)})

    def close_output(self, cmd: c.CloseOutput, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.close_output(self._meta(caller), cmd.buffer))

    def pause_task(self, cmd: c.PauseTask, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.pause(self._meta(caller), cmd.reason))

    def resume_task(self, cmd: c.ResumeTask, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.resume(self._meta(caller)))

    def cancel_task(self, cmd: c.CancelTask, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.cancel(self._meta(caller), cmd.reason))

    def abort_task(self, cmd: c.AbortTask, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.abort(self._meta(caller), cmd.reason))

    def complete_task(self, cmd: c.CompleteTask, caller: c.Caller) -> c.Written:
        return self._act_once(cmd.task_id, cmd.idempotency_key, caller, Task.Completed, lambda t: t.complete(
            self._meta(caller, cmd.idempotency_key), cmd.lease_epoch, cmd.result),
            lambda e: (e.lease_epoch, e.result_json) == (cmd.lease_epoch, dump_json(cmd.result)))

    def fail_task(self, cmd: c.FailTask, caller: c.Caller) -> c.Written:
        return self._act_once(cmd.task_id, cmd.idempotency_key, caller, (Task.Failed, Task.Cancelled),
                              lambda t: t.fail(self._meta(caller, cmd.idempotency_key), cmd.lease_epoch, cmd.error,
                                               cmd.retry, cmd.confirm_cancel),
                              lambda e: self._same_failure(e, cmd))

    def drop_task(self, cmd: c.DropTask, caller: c.Caller) -> c.Written:
        return self._act(cmd.task_id, lambda t: t.drop(self._meta(caller), cmd.force))

    def act_on_many(self, cmd: c.BulkAction, caller: c.Caller) -> list[c.Written | LedgerError]:
        """An operator's action on many tasks in one transaction (one event each, each in its own stream);
        a task whose state refuses it answers its refusal alone, a conflict is run again alone."""
        meta = self._meta(caller)
        perform: Callable[[Task], Any] = {
            "pause": lambda t: t.pause(meta, cmd.reason),
            "resume": lambda t: t.resume(meta),
            "cancel": lambda t: t.cancel(meta, cmd.reason, again=False),
            "abort": lambda t: t.abort(meta, cmd.reason),
            "drop": lambda t: t.drop(meta, cmd.force),
        }[cmd.action]
        done = self.act_many([(task_id, perform) for task_id in cmd.task_ids], missing=TaskNotFoundError, kind=Task)
        return [d if isinstance(d, LedgerError) else self._written(d, with_state=False, positions={})
                for d in done]

    def record_occurrences(self, cmd: c.RecordOccurrences, caller: c.Caller) -> c.Written:
        """Records the task's due occurrences; several schedulers may race, each occurrence is recorded once."""
        def act(task: Task) -> None:
            schedule = task.state.schedule
            if self.calendar is None or schedule is None:
                return
            due = self.calendar.occurrences(schedule, rec.cursor(task.state), cmd.now, OCCURRENCES_PER_WRITE + 1)
            task.record_occurrences(self._meta(caller), due[:OCCURRENCES_PER_WRITE], cmd.now, cmd.grace,
                                    complete=len(due) <= OCCURRENCES_PER_WRITE)
        return self._act(cmd.task_id, act)

    def expire_lease(self, cmd: c.ExpireLease, caller: c.Caller) -> c.Written:
        """Expires the lease if still overdue on the task itself (the watchdog's view may lag); `lease_epoch`
        of the answer is the expired lease, None when nothing expired."""
        def act(task: Task) -> dict[str, Any]:
            expired = task.expire_lease(self._meta(caller), cmd.now)
            return {} if expired is None else {"lease_epoch": expired}
        return self._act(cmd.task_id, act)

    # ----------------------------------------------------------------- history
    def task_as_of(self, task_id: UUID, *, version: int | None = None,
                   at: datetime | None = None) -> TaskState:
        """The task exactly as it was at a version or an instant (dropped tasks included)."""
        task_id = task_id if isinstance(task_id, UUID) else UUID(str(task_id))
        if version is not None:
            return self._load(task_id, version=version).state
        if at is None:
            return self.current_task(task_id)
        task: Task | None = None
        for event in self.events.get(task_id):
            stored: Any = event
            if at is not None and stored.timestamp > at:
                break
            if not is_task_event(stored):
                raise TaskNotFoundError(task_id)
            task = stored.mutate(task)
        if task is None:
            raise TaskNotFoundError(task_id)
        return task.state

    def current_task(self, task_id: UUID) -> TaskState:
        """The task as the event store has it now (the view may lag; this never does)."""
        found = self.fetch([task_id]).get(task_id)
        if not isinstance(found, Task):
            raise TaskNotFoundError(task_id)
        return found.state.copy()  # type: ignore[no-any-return]  # the cache's own object must stay untouched

    def task_events(self, task_id: UUID, after_version: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The task's audit timeline, oldest first."""
        events = list(self.events.get(task_id, gt=after_version, limit=limit))
        if not events and after_version == 0 or events and not is_task_event(events[0]):
            raise TaskNotFoundError(task_id)
        return [describe_event(e) for e in events]

    def events_after(self, position: int, limit: int) -> list[dict[str, Any]]:
        """The global feed: every event after a log position, in log order."""
        notifications = self.recorder.select_notifications(start=position, limit=limit,
                                                            inclusive_of_start=False)
        return [describe_event(self.mapper.to_domain_event(n), n.id) for n in notifications]

    def allocate_number(self, scope: str) -> int:
        """The next number of a scope; numbers are never reused (a failed create leaves a gap)."""
        key = sequence_id(scope)
        for _ in range(WRITE_ATTEMPTS * 10):
            try:
                acted = self.act(key, lambda s: s.allocate(self.clock()), missing=_NoSequence)
                return int(acted.extra)
            except _NoSequence:
                sequence = IdSequence._create(IdSequence.Created, id=key, scope=scope, timestamp=self.clock())
                number = sequence.allocate(self.clock())
                if key in self.streams.append([self._append_of(Pending(sequence))]).positions:
                    self.cache.put(key, sequence)
                    return number
            except ConcurrentWriteError:
                continue
        raise ConcurrentWriteError(key)

    def head_position(self) -> int:
        """The highest committed log position: a read that waits for it sees everything committed before."""
        top = getattr(self.recorder, "committed_head", None)
        return int(top() if top is not None else self.recorder.max_notification_id() or 0)

    def stream(self, after: int = 0, batch: int = 500) -> Iterator[tuple[int, Any]]:
        """Every (position, event) after a position, for exports and replays."""
        while True:
            notifications = self.recorder.select_notifications(start=after, limit=batch,
                                                                inclusive_of_start=False)
            if not notifications:
                return
            for n in notifications:
                yield n.id, self.mapper.to_domain_event(n)
            after = notifications[-1].id

    # ---------------------------------------------------------------- plumbing
    def _meta(self, caller: c.Caller, idempotency_key: str | None = None) -> Meta:
        return Meta(caller.actor, caller.request_id, caller.facade, self.clock(), idempotency_key)

    def _load(self, task_id: UUID, version: int | None = None) -> Task:
        try:
            found = self.history(task_id, version)
        except AggregateNotFoundError:
            raise TaskNotFoundError(task_id) from None
        if not isinstance(found, Task):  # the ledger's own bookkeeping (an id sequence) is no task
            raise TaskNotFoundError(task_id)
        return found

    def _act(self, task_id: UUID, action: Callable[[Task], Any], retry: bool = True) -> c.Written:
        return self._written(self.act(task_id, action, retry=retry, missing=TaskNotFoundError, kind=Task))

    def _written(self, acted: Acted, with_state: bool = True, positions: dict[UUID, int] | None = None) -> c.Written:
        """The write receipt, carrying the state the write produced (no responder reads the store again).

        Its position is the log position of the version it answers, also when the action wrote nothing
        (a heartbeat that only answers a directive). A batch's receipts carry no state (nobody shows
        it), nor does an earlier item of a batch on the same task: only the write's last item has one."""
        extra = acted.extra if isinstance(acted.extra, dict) else {}
        position = acted.position
        if position is None:
            known = positions if positions is not None else self.streams.positions_of(
                {acted.aggregate.id: acted.version})
            position = known.get(acted.aggregate.id) or self.head_position()
        last = with_state and acted.version == acted.aggregate.version
        state = acted.aggregate.state.copy() if last else None
        return c.Written(acted.aggregate.id, acted.version, position, state=state, **extra)

    def _identity(self, cmd: c.CreateTask, caller: c.Caller) -> tuple[UUID, c.CreateTask]:
        """The task id (deterministic where a duplicate must be caught) and the command, numbered if due."""
        if cmd.external_id is not None:
            return external_task_id(cmd.namespace, cmd.external_id), cmd
        if ecosystem(cmd.namespace, caller.facade) in SEQUENTIAL_ECOSYSTEMS:
            number = str(self.allocate_number(cmd.namespace))
            numbered = dataclasses.replace(cmd, external_id=number)
            if cmd.idempotency_key is None:
                return external_task_id(cmd.namespace, number), numbered
            return idempotent_task_id(caller.actor, cmd.idempotency_key), numbered
        if cmd.idempotency_key is not None:
            return idempotent_task_id(caller.actor, cmd.idempotency_key), cmd
        return uuid4(), cmd

    def _created_fields(self, cmd: c.CreateTask, caller: c.Caller, fingerprint: str | None) -> dict[str, Any]:
        return {
            "namespace": cmd.namespace, "external_id": cmd.external_id, "name": cmd.name,
            "type": cmd.type, "input_json": dump_json(cmd.input),
            "submitter": cmd.submitter or caller.actor, "labels_json": dump_json(cmd.labels),
            "steps": list(cmd.steps), "max_retries": cmd.max_retries,
            "heartbeat_timeout": float(cmd.heartbeat_timeout),
            "schedule_json": dump_json(cmd.schedule), "idempotency": fingerprint,
        }

    def _replay_create(self, task_id: UUID, cmd: c.CreateTask, fingerprint: str | None) -> c.Written:
        """A create whose id already exists: the same idempotent request gets its first answer."""
        existing = self._load(task_id, version=1)
        if fingerprint is not None and existing.idempotency == fingerprint:
            return c.Written(task_id, 1, self.head_position(), replayed=True, state=existing.state)
        if cmd.external_id is not None:
            raise DuplicateTaskError(task_id, cmd.external_id)
        raise IdempotencyKeyReusedError(cmd.idempotency_key or "")

    def _act_once(self, task_id: UUID, key: str | None, caller: c.Caller,
                  kind: type[Task.Event] | tuple[type[Task.Event], ...],
                  action: Callable[[Task], Any], same: Callable[[Any], bool]) -> c.Written:
        """Acts; refused, a request with an Idempotency-Key that repeats one already recorded answers its receipt.

        A repeat is always refused (the lease it wrote under has ended), so an accepted write looks nothing up."""
        try:
            return self._act(task_id, action)
        except REPEAT_REFUSALS:
            replayed = None if key is None else self._replayed(task_id, key, caller.actor, kind, same)
            if replayed is None:
                raise
            return replayed

    def _replayed(self, task_id: UUID, key: str, actor: str, kind: type[Task.Event] | tuple[type[Task.Event], ...],
                  same: Callable[[Any], bool]) -> c.Written | None:
        """The receipt of the latest complete or fail `actor` recorded under `key` among the task's last
        REPLAY_LOOKBACK events, if it is of `kind` with the `same` body (else the key was reused: refused);
        None if there is none."""
        for event in self.events.get(task_id, desc=True, limit=REPLAY_LOOKBACK):
            if not isinstance(event, (Task.Completed, Task.Failed, Task.Cancelled)) or (
                    event.idempotency_key, event.actor) != (key, actor):
                continue
            if not isinstance(event, kind) or not same(event):
                raise IdempotencyKeyReusedError(key)
            version = event.originator_version
            position = self.streams.positions_of({task_id: version})[task_id]
            return c.Written(task_id, version, position, lease_epoch=event.lease_epoch, replayed=True)
        return None

    def _same_failure(self, event: Task.Failed | Task.Cancelled, cmd: c.FailTask) -> bool:
        """Whether a recorded failure is what `cmd` asks. The event keeps `requeued`, not `retry`: a failure not
        requeued answers `retry=true` only if no retry was left when it was recorded (then either flag fails
        alike, so `retry` is compared only where it decided the outcome)."""
        if isinstance(event, Task.Cancelled):  # the fail confirmed a cancel
            return (event.lease_epoch, event.reason) == (cmd.lease_epoch, cmd.error)
        if (event.lease_epoch, event.error) != (cmd.lease_epoch, cmd.error):
            return False
        if event.requeued or not cmd.retry:
            return event.requeued == cmd.retry
        before = self._load(cmd.task_id, version=event.originator_version - 1).state
        return before.retries >= before.max_retries


class _NoSequence(Exception):
    """The scope has no id sequence yet."""

    def __init__(self, _: UUID) -> None:
        super().__init__("no sequence yet")


def _fingerprint(cmd: c.CreateTask, caller: c.Caller) -> str | None:
    """Who sent which request body under an Idempotency-Key, as stored in the Created event."""
    if cmd.idempotency_key is None:
        return None
    digest = hashlib.sha256(dump_json(_command_fields(cmd)).encode()).hexdigest()
    return f"{caller.actor}\n{cmd.idempotency_key}\n{digest}"


def _command_fields(cmd: c.CreateTask) -> dict[str, Any]:
    fields = dict(vars(cmd))
    fields.pop("idempotency_key")
    fields["steps"] = list(cmd.steps)
    return fields
