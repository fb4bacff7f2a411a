"""Write load through both API processes, remembering every write the service acknowledged."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from taskledger.client import Ledger, Receipt
from taskledger.client.errors import ClientError, ProblemError

NAMESPACE = "failover"


@dataclass(frozen=True)
class Ack:
    """A write the service answered 2xx: the task, the version it made, the event it recorded, when."""

    task_id: str
    version: int
    event: str
    at: float  # when the answer came
    via: str  # the API process that answered
    sent: float  # when the request that got it was sent (its last try)


@dataclass
class Load:
    """Write load through both API processes, remembering every acknowledged write.

    Writers use taskledger.client (its retry rules: docs/client.md) and, past its retries, try the same write
    again themselves (the same Idempotency-Key for create and complete) — what a client that must not lose a
    write does through a failover. A probe creates a task every 0.1 s with plain requests, alternating between the
    two APIs, to time the outage to a tenth of a second and to count the answers seen during it."""

    bases: list[str]
    auth: tuple[str, str]
    writers: int = 4
    acks: list[Ack] = field(default_factory=list)
    probe_log: list[tuple[float, str]] = field(default_factory=list)  # (time, status code or exception name)
    errors: dict[str, int] = field(default_factory=dict)
    # Starts that a try answered 503 or not at all had committed (seen by the task, after a retry met 409).
    landed_unanswered: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._writer, args=(i,), daemon=True) for i in range(self.writers)]
        self.threads.append(threading.Thread(target=self._probe, daemon=True))
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _ack(self, task_id: str, version: int, event: str, via: str, sent: float) -> None:
        with self.lock:
            self.acks.append(Ack(task_id, version, event, time.monotonic(), via, sent))

    def _count(self, name: str) -> None:
        with self.lock:
            self.errors[name] = self.errors.get(name, 0) + 1

    def _persist(self, call: Callable[[], Any], landed: Callable[[], Any] | None = None) -> tuple[Any, float]:
        """The call until it is answered 2xx, and when its last try began; a refusal (4xx, 500) ends the task's
        life cycle (Abandoned).

        A try answered 503 or not at all may still have committed: the primary can die after its synchronous
        standby confirmed the commit and before the API heard so. A write that is not repeatable (a start) then
        meets a refusal when tried again (409, already running); `landed` reads the task and answers what the
        lost try would have answered when it did land, or None."""
        deadline = time.monotonic() + 120
        unanswered = False
        while time.monotonic() < deadline:
            began = time.monotonic()
            try:
                return call(), began
            except ProblemError as exc:
                status = getattr(exc, "status", 0)
                if status != 503:
                    found = landed() if unanswered and landed is not None and status == 409 else None
                    if found is not None:
                        with self.lock:
                            self.landed_unanswered += 1
                        return found, began
                    self._count(f"{type(exc).__name__} {status}")
                    raise Abandoned from exc
                self._count(f"{type(exc).__name__} {status}")
                unanswered = True
            except ClientError as exc:  # ConnectionFailedError: nothing answered
                self._count(type(exc).__name__)
                unanswered = True
            time.sleep(0.2)
        raise Abandoned

    @staticmethod
    def _started(ledger: Ledger, task_id: str, worker: str) -> Receipt | None:
        """The start of `worker` that landed unanswered: the task running under it (nothing else writes to it, so
        its version is the start's). The view may not show it yet: this client never heard of its position."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                task = ledger.get(task_id)
            except ClientError:
                task = {}
            if task.get("state") == "RUNNING" and task.get("worker") == worker:
                return Receipt(task_id, int(task["version"]), 0, int(task.get("lease_epoch") or 0))
            time.sleep(0.2)
        return None

    def _writer(self, number: int) -> None:
        base = self.bases[number % len(self.bases)]
        ledger = Ledger(base, self.auth, timeout=10)
        worker = f"failover-writer-{number}"
        while not self.stop.is_set():
            key = uuid.uuid4().hex
            try:
                task, sent = self._persist(lambda: ledger.create(NAMESPACE, f"w{number}-{key[:8]}",
                                                                 idempotency_key=key))
                task_id = str(task["id"])
                self._ack(task_id, int(task["version"]), "Created", base, sent)
                receipt, sent = self._persist(lambda: ledger.start(task_id, worker),
                                              landed=lambda: self._started(ledger, task_id, worker))
                self._ack(task_id, receipt.version, "Started", base, sent)
                epoch = int(receipt.lease_epoch or 0)
                for progress in (25.0, 50.0, 75.0):
                    receipt, sent = self._persist(lambda: ledger.progress(task_id, epoch, progress))
                    self._ack(task_id, receipt.version, "ProgressReported", base, sent)
                done_key = uuid.uuid4().hex
                receipt, sent = self._persist(lambda: ledger.complete(task_id, epoch, {"ok": True},
                                                                      idempotency_key=done_key))
                self._ack(task_id, receipt.version, "Completed", base, sent)
            except Abandoned:
                continue

    def _probe(self) -> None:
        session = requests.Session()
        turn = 0
        while not self.stop.is_set():
            turn += 1
            key = uuid.uuid4().hex
            base = self.bases[turn % len(self.bases)]
            while not self.stop.is_set():  # one create, retried with its key until answered
                sent = time.monotonic()
                try:
                    answer = session.post(f"{base}/ledger/v1/tasks", auth=self.auth, timeout=5,
                                          json={"namespace": NAMESPACE, "name": f"probe-{turn}"},
                                          headers={"Idempotency-Key": key})
                    outcome = str(answer.status_code)
                except requests.RequestException as exc:
                    answer, outcome = None, type(exc).__name__
                with self.lock:
                    self.probe_log.append((time.monotonic(), outcome))
                if answer is not None and answer.status_code == 201:
                    body = answer.json()
                    self._ack(str(body["id"]), int(body["version"]), "Created", base, sent)
                    break
                self.stop.wait(0.1)
            self.stop.wait(0.1)


class Abandoned(Exception):  # noqa: N818 -- a writer's decision, not an error
    """The service refused a write of a task's life cycle (it may have been recorded unanswered): next task."""
