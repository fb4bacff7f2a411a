"""`Worker` and `Lease`: claim tasks, work on them, heartbeat in the background, obey the operator.

    worker = Worker(Ledger.from_env(), "etl-7", namespace="etl")
    worker.run(work)                      # claim, work, complete; until stopped (or `drain=True`: until empty)

    def work(lease: Lease) -> dict:
        for i, part in enumerate(parts(lease.task["input"])):
            lease.progress(100 * i / n)   # raises PauseRequested / CancelRequested / LeaseLostError when due
            lease.step(i, status="RUNNING")
            ...
        return {"rows": n}                # the result: the task is completed with it

The directive of every heartbeat (continue, pause, cancel, stop) is kept on the lease; the next call the work
function makes on the lease (`progress`, `step`, `output`, `check`, `sleep`) raises it as an `Interrupted`
subclass, so the work stops at its next checkpoint. A lease whose epoch the service no longer accepts (409
stale-lease: it expired while the process was stopped, or another worker took the task) raises
`LeaseLostError` and is never retried. docs/client.md has the whole story.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from taskledger.client.errors import (
    CancelRequested,
    ClientError,
    ConflictError,
    ConnectionFailedError,
    Interrupted,
    LeaseLostError,
    NotFoundError,
    PauseRequested,
    ProblemError,
    StaleLeaseError,
    StopRequested,
    TaskDroppedError,
    UnavailableError,
)
from taskledger.client.ledger import Heartbeat, Ledger, Task

log = logging.getLogger("taskledger.worker")

INTERRUPTS: dict[str, type[Interrupted]] = {
    "pause": PauseRequested, "cancel": CancelRequested, "stop": StopRequested, "lost": LeaseLostError,
}
MIN_INTERVAL, MAX_INTERVAL = 0.1, 30.0  # heartbeat intervals are kept within these (seconds)
CANCEL_CONFIRMED = "cancelled: the worker stopped on the operator's cancel"


class Lease:
    """The right to work on one task, from a claim until complete, fail or an interruption.

    As a context manager: heartbeats run while the block runs. Leaving the block normally completes the task
    (unless `complete` or `fail` was called); an `Interrupted` raised inside it is handled (a cancel is
    confirmed, so the task ends CANCELLED at once) and not passed on; any other exception fails the task
    (requeued while it has retries left) and is passed on.
    """

    def __init__(self, worker: Worker, task: Task, lease_epoch: int) -> None:
        self.worker, self.ledger = worker, worker.ledger
        self.task = task
        self.task_id = str(task["id"])
        self.lease_epoch = lease_epoch
        timeout = float(task.get("heartbeat_timeout") or 60.0)
        self.heartbeat_timeout = timeout
        self.interval = min(max(timeout * worker.heartbeat_fraction, MIN_INTERVAL), MAX_INTERVAL)
        self.directive: str | None = None  # pause, cancel, stop or lost once the work must stop
        self.detail = ""
        self.finished = False  # complete or fail was recorded
        self.interrupted = threading.Event()
        self.last_ok = time.monotonic()
        self.next_due = self.last_ok + self.interval
        self._progress: float | None = None

    # -------------------------------------------------------------- the work
    def check(self) -> None:
        """Raises the directive if one arrived (call it in long loops that make no other lease call)."""
        if self.directive is not None:
            raise INTERRUPTS[self.directive](self.task_id, self.detail)

    def sleep(self, seconds: float) -> None:
        """Waits, but raises at once when a directive arrives meanwhile."""
        self.check()
        if self.interrupted.wait(seconds):
            self.check()

    def progress(self, progress: float, message: str | None = None) -> None:
        """Reports progress (0–100) and an optional message."""
        self._write(lambda: self.ledger.progress(self.task_id, self.lease_epoch, progress, message))
        self._progress = progress

    def step(self, index: int, *, status: str | None = None, output: str | None = None,
             append: bool = False) -> None:
        """Sets step `index`'s status (PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED), its output."""
        self._write(lambda: self.ledger.step(self.task_id, index, self.lease_epoch, status=status, output=output,
                                             append=append))

    def output(self, buffer: str, data: str, *, positions: int | None = None, last: bool = False) -> int:
        """Appends a page to an output buffer; answers the page's sequence number."""
        receipt = self._write(lambda: self.ledger.output(self.task_id, buffer, self.lease_epoch, data,
                                                         positions=positions, last=last))
        return int(receipt.sequence or 0)

    def heartbeat(self, *, progress: float | None = None, message: str | None = None,
                  stats: dict[str, Any] | None = None) -> str:
        """A heartbeat now (the background thread sends them anyway); answers the directive and raises it."""
        self.check()
        try:
            receipt = self.ledger.heartbeat(self.task_id, self.lease_epoch, progress=progress, message=message,
                                            stats=stats)
        except ProblemError as exc:
            self._refused(exc)
            raise
        self.last_ok = time.monotonic()
        directive = receipt.directive or "continue"
        if directive != "continue":
            self.interrupt(directive)
            self.check()
        return directive

    def complete(self, result: Any = None) -> None:
        """Completes the task with its result (idempotent on retry: a lost answer never doubles the event)."""
        self._finish(lambda: self.ledger.complete(self.task_id, self.lease_epoch, result))

    def fail(self, error: str, *, retry: bool = True) -> None:
        """Fails the task: back in the queue while it has retries left (unless `retry=False`), else FAILED."""
        self._finish(lambda: self.ledger.fail(self.task_id, self.lease_epoch, error, retry=retry))

    # ---------------------------------------------------------- the protocol
    def interrupt(self, directive: str, detail: str = "") -> None:
        """Records that the work must stop (called by the heartbeat thread; the work's next call raises it)."""
        if self.directive is None:
            self.directive, self.detail = directive, detail
            log.info("task %s: %s%s", self.task_id, directive, f" ({detail})" if detail else "")
            self.interrupted.set()

    def _write(self, send: Callable[[], Any]) -> Any:
        self.check()
        try:
            answer = send()
        except ProblemError as exc:
            self._refused(exc)
            raise
        self.last_ok = time.monotonic()
        return answer

    def _finish(self, send: Callable[[], Any]) -> None:
        if self.finished:
            raise ClientError(f"task {self.task_id}: complete or fail was already recorded under this lease")
        try:
            self._write(send)
        finally:
            self.worker.heartbeats.forget(self)
        self.finished = True

    def _refused(self, exc: ProblemError) -> None:
        """A lease write was refused: a stale lease or a dropped task ends the work now; a state that refuses the
        action (the operator paused or cancelled meanwhile) is learned from a heartbeat. Raises the directive."""
        if isinstance(exc, StaleLeaseError | NotFoundError):
            self.interrupt("lost", exc.detail)
        elif isinstance(exc, TaskDroppedError):
            self.interrupt("stop", exc.detail)
        elif isinstance(exc, ConflictError) and self.directive is None:
            self._learn()
        self.check()

    def _learn(self) -> None:
        try:
            receipt = self.ledger.heartbeat(self.task_id, self.lease_epoch)
        except StaleLeaseError as exc:
            self.interrupt("lost", exc.detail)
        except TaskDroppedError as exc:
            self.interrupt("stop", exc.detail)
        except ClientError:
            return
        else:
            if receipt.directive and receipt.directive != "continue":
                self.interrupt(receipt.directive)

    def __enter__(self) -> Lease:
        self.worker.heartbeats.watch(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        self.worker.heartbeats.forget(self)
        if self.finished:
            return isinstance(exc, Interrupted)
        if exc is None and self.directive is None:
            try:
                self.complete()
            except Interrupted as stopped:
                self._wind_down(stopped)
            return False
        if exc is None or isinstance(exc, Interrupted):
            self._wind_down(exc if isinstance(exc, Interrupted) else INTERRUPTS[self.directive or "stop"](
                self.task_id, self.detail))
            return True
        if isinstance(exc, Exception):
            try:
                self.fail(f"{type(exc).__name__}: {exc}"[:65_536])
            except (Interrupted, ClientError) as also:
                log.warning("task %s: could not record the failure (%s)", self.task_id, also)
        return False

    def _wind_down(self, stopped: Interrupted) -> None:
        """After an interruption: a cancel is confirmed (the task ends CANCELLED now, not at lease expiry);
        pause, stop and a lost lease need nothing (the service already moved the task on)."""
        if isinstance(stopped, CancelRequested):
            try:
                self.ledger.fail(self.task_id, self.lease_epoch, CANCEL_CONFIRMED, retry=False)
                self.finished = True
            except ClientError as exc:
                log.info("task %s: the cancel was not confirmed (%s); the lease expires instead", self.task_id, exc)


class Heartbeats:
    """One background thread per worker: a batch heartbeat (`POST /heartbeats`) for every lease that is due.

    A lease is due every `heartbeat_timeout × heartbeat_fraction` seconds (within 0.1–30 s). A lease whose
    heartbeats could not reach the service for longer than its timeout is given up as lost (the watchdog will
    have expired it)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._leases: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, lease: Lease) -> None:
        with self._lock:
            self._leases[lease.task_id] = lease
            self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="taskledger-heartbeats", daemon=True)
                self._thread.start()
        self._wake.set()

    def forget(self, lease: Lease) -> None:
        with self._lock:
            if self._leases.get(lease.task_id) is lease:
                del self._leases[lease.task_id]

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                leases = list(self._leases.values())
            now = time.monotonic()
            due = [lease for lease in leases if lease.next_due <= now and lease.directive is None]
            if due:
                self.beat(due)
            with self._lock:
                waiting = [lease.next_due for lease in self._leases.values() if lease.directive is None]
            self._wake.wait(max(0.0, min(waiting) - time.monotonic()) if waiting else 5.0)
            self._wake.clear()

    def beat(self, leases: list[Lease]) -> None:
        """One batch heartbeat for these leases; each result goes to its lease."""
        now = time.monotonic()
        for lease in leases:
            lease.next_due = now + lease.interval
        try:
            results = self.ledger.heartbeats([Heartbeat(lease.task_id, lease.lease_epoch) for lease in leases])
        except (ConnectionFailedError, UnavailableError, ProblemError) as exc:
            for lease in leases:
                silent = time.monotonic() - lease.last_ok
                if silent > lease.heartbeat_timeout:
                    lease.interrupt("lost", f"no heartbeat reached the service for {silent:.0f} s ({exc})")
            log.warning("heartbeats failed: %s", exc)
            return
        by_id = {lease.task_id: lease for lease in leases}
        for result in results:
            owner = by_id.get(result.task_id)
            if owner is None:
                continue
            lease = owner
            code = str(result.problem.get("type") or "").rsplit("/", 1)[-1]
            if result.status == 200:
                lease.last_ok = time.monotonic()
                if result.directive and result.directive != "continue":
                    lease.interrupt(result.directive)
            elif result.status == 410:
                lease.interrupt("stop", str(result.problem.get("detail") or "the task was dropped"))
            elif result.status in (404, 409) and code in ("stale-lease", "task-not-found", ""):
                lease.interrupt("lost", str(result.problem.get("detail") or code))
            else:
                log.warning("task %s: heartbeat answered %s %s", lease.task_id, result.status, code)


class Worker:
    """Claims tasks of a namespace (and type) and runs a work function on each, one at a time.

    `name` identifies this worker in the ledger (the lease's `worker`); make it unique per process, e.g.
    `f"{host}-{pid}"`. `heartbeat_fraction` of each task's `heartbeat_timeout` is the heartbeat interval.
    """

    def __init__(self, ledger: Ledger, name: str, *, namespace: str | None = None, type: str | None = None,
                 poll_interval: float = 1.0, heartbeat_fraction: float = 1 / 3) -> None:
        if not 0 < heartbeat_fraction < 1:
            raise ValueError("heartbeat_fraction must be between 0 and 1 (a share of the heartbeat timeout)")
        self.ledger, self.name = ledger, name
        self.namespace, self.type = namespace, type
        self.poll_interval, self.heartbeat_fraction = poll_interval, heartbeat_fraction
        self.heartbeats = Heartbeats(ledger)
        self._stopping = threading.Event()

    def claim(self) -> Lease | None:
        """Claims the oldest queued matching task; None when there is none."""
        claimed = self.ledger.claim(self.name, namespace=self.namespace, type=self.type)
        if claimed is None:
            return None
        return Lease(self, claimed.task, int(claimed.receipt.lease_epoch or claimed.task.get("lease_epoch", 0)))

    def run(self, work: Callable[[Lease], Any], *, drain: bool = False, max_tasks: int | None = None) -> int:
        """Claims and works until `stop()` (or, with `drain`, until no task is left); answers how many tasks it
        worked on. What `work` returns is the task's result; an exception fails the task (and is logged);
        an interruption (pause, cancel, lost lease) ends the work on that task only."""
        worked = 0
        try:
            while not self._stopping.is_set() and (max_tasks is None or worked < max_tasks):
                try:
                    lease = self.claim()
                except (ConnectionFailedError, UnavailableError) as exc:
                    log.warning("claim failed, trying again in %.1f s: %s", self.poll_interval, exc)
                    self._stopping.wait(self.poll_interval)
                    continue
                if lease is None:
                    if drain:
                        break
                    self._stopping.wait(self.poll_interval)
                    continue
                worked += 1
                self.work_on(lease, work)
        finally:
            self.heartbeats.close()
        return worked

    def work_on(self, lease: Lease, work: Callable[[Lease], Any]) -> None:
        """Runs `work` under the lease: completes with its result, fails on its exception."""
        try:
            with lease:
                result = work(lease)
                if not lease.finished:
                    lease.complete(result)
        except Interrupted:
            pass  # the context manager handled it; raised again only by a complete that met a directive
        except Exception:
            log.exception("task %s failed", lease.task_id)

    def stop(self) -> None:
        """Stops claiming: `run` returns once the task at hand is done (call from a signal handler)."""
        self._stopping.set()
