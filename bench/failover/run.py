"""One failover under load, measured and checked: kill the primary's machine, time the outage, then read back
every acknowledged write, wait for the projections and run `taskledger verify`."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from bench.failover.formation import Formation, FormationError, Node, pg_autoctl_missing
from bench.failover.load import Ack, Load
from bench.failover.service import Service
from taskledger.client import Ledger
from taskledger.client.errors import ClientError, ProblemError


@dataclass
class Outcome:
    """What one failover run measured."""

    killed_at: float
    outage: float  # s from the kill to the first write acknowledged after it (the probe retries every 0.1 s)
    acknowledged: int
    tasks: int
    probe_answers: dict[str, int]  # during the outage
    promoted: str
    states: str
    events: str
    timeline: list[tuple[float, str]]  # the monitor's events, in seconds after the kill
    missing: list[Ack]
    pids_before: dict[str, list[int]]
    pids_after: dict[str, list[int]]
    projections_caught_up: bool
    view_behind: list[str]
    verify_code: int
    verify_output: str
    errors: dict[str, int]
    acks: list[Ack]
    landed_unanswered: int = 0  # starts answered 503 or not at all that had committed (Load._persist)

    def acknowledged_after_kill(self) -> dict[str, int]:
        """Writes acknowledged after the kill, by API process."""
        counts: dict[str, int] = {}
        for ack in self.acks:
            if ack.at > self.killed_at:
                counts[ack.via] = counts.get(ack.via, 0) + 1
        return counts

    def summary(self) -> str:
        return (f"outage {self.outage:.1f} s; {self.acknowledged} acknowledged "
                f"writes on {self.tasks} tasks, {len(self.missing)} missing; probe answers during the outage "
                f"{self.probe_answers}; promoted {self.promoted}; verify exit {self.verify_code}; "
                f"{self.landed_unanswered} starts had landed unanswered")


def outage_after(acks: Sequence[Ack], killed_at: float) -> float:
    """From the kill to the first acknowledgement of a request sent after it (one in flight at the kill may
    still have committed on the old primary just before)."""
    after = [a.at for a in acks if a.sent > killed_at]
    return (min(after) - killed_at) if after else float("inf")


def _by_task(acks: Sequence[Ack]) -> dict[str, list[Ack]]:
    by_task: dict[str, list[Ack]] = {}
    for ack in acks:
        by_task.setdefault(ack.task_id, []).append(ack)
    return by_task


def missing_from_store(bases: list[str], auth: tuple[str, str], acks: Sequence[Ack]) -> list[Ack]:
    """Acknowledged writes the event store does not hold (each task's events read through both APIs in turn):
    no event at the version answered, or another event there."""
    ledgers = [Ledger(base, auth, timeout=10) for base in bases]
    missing: list[Ack] = []
    for number, (task_id, task_acks) in enumerate(sorted(_by_task(acks).items())):
        try:
            events = {int(e["version"]): str(e["type"]) for e in ledgers[number % len(ledgers)].iter_events(task_id)}
        except ProblemError:  # 404: no event of the task at all
            events = {}
        missing.extend(a for a in task_acks if events.get(a.version) != a.event)
    return missing


def behind_in_view(bases: list[str], auth: tuple[str, str], acks: Sequence[Ack]) -> list[str]:
    """Tasks the view (GET /tasks/{id}) does not show at their last acknowledged version, or not at all."""
    ledgers = [Ledger(base, auth, timeout=10) for base in bases]
    behind = []
    for number, (task_id, task_acks) in enumerate(sorted(_by_task(acks).items())):
        try:
            version = int(ledgers[number % len(ledgers)].get(task_id)["version"])
        except ProblemError:
            version = 0
        if version < max(a.version for a in task_acks):
            behind.append(task_id)
    return behind


def wait_projections(base: str, auth: tuple[str, str], timeout: float = 90) -> bool:
    """Every projection at the event store's head (GET /projections), within `timeout`."""
    ledger = Ledger(base, auth, timeout=10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ClientError):
            rows = ledger.projections()["projections"]
            if rows and all(int(r.get("lag_events", r.get("lag", 1))) == 0 for r in rows):
                return True
        time.sleep(0.5)
    return False


def wait_promoted(formation: Formation, lost: Node, timeout: float = 120) -> str:
    """Waits until the monitor has promoted another node than the lost one; its name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FormationError, subprocess.TimeoutExpired):
            node = formation.node_in({"primary", "wait_primary"})
            if node is not None and node is not lost:
                return node.name
        time.sleep(0.5)
    raise FormationError(f"no new primary within {timeout:.0f} s:\n{formation.show_state_text()}")


def run_failover(formation: Formation, service: Service, *, before: float = 8.0, after: float = 8.0,
                 writers: int = 4, progress: Callable[[str], None] = print) -> Outcome:
    """Load, kill the primary's machine, wait for recovery, keep loading, then check everything."""
    load = Load(service.bases, service.auth, writers)
    old_primary = formation.primary()
    pids_before = service.pids()
    load.start()
    try:
        time.sleep(before)
        progress(f"killing {old_primary.name} (keeper and PostgreSQL, SIGKILL) under load")
        killed_at = formation.lose_machine(old_primary)
        killed_wall = time.time() - (time.monotonic() - killed_at)
        promoted = wait_promoted(formation, old_primary)
        deadline = time.monotonic() + 120
        while outage_after(load.acks, killed_at) == float("inf") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(after)
    finally:
        load.finish()
    pids_after = service.pids()
    first_ack = outage_after(load.acks, killed_at)
    answers: dict[str, int] = {}
    for at, outcome in load.probe_log:
        if killed_at < at < killed_at + first_ack:
            answers[outcome] = answers.get(outcome, 0) + 1
    missing = missing_from_store(service.bases, service.auth, load.acks)
    caught_up = wait_projections(service.bases[0], service.auth)
    behind = behind_in_view(service.bases, service.auth, load.acks)
    verified = service.taskledger("verify")
    return Outcome(killed_at=killed_at, acks=list(load.acks), outage=first_ack,
                   acknowledged=len(load.acks), tasks=len({a.task_id for a in load.acks}), probe_answers=answers,
                   promoted=promoted, states=formation.show_state_text(), events=formation.events_text(),
                   timeline=formation.events_since(killed_wall), missing=missing, pids_before=pids_before,
                   pids_after=pids_after, projections_caught_up=caught_up, view_behind=behind,
                   verify_code=verified.returncode, verify_output=(verified.stdout + verified.stderr).strip(),
                   errors=dict(load.errors), landed_unanswered=load.landed_unanswered)


@contextlib.contextmanager
def formation_and_service(tuned: bool = True) -> Iterator[tuple[Formation, Service]]:
    """A running formation and the service on its URI; everything killed and removed on the way out."""
    formation = Formation(tuned=tuned)
    service = Service(formation.base / "service", "")
    try:
        formation.start()
        service.base.mkdir(parents=True, exist_ok=True)
        service.database_url = formation.uri() + "&application_name=taskledger-failover"
        service.start()
        yield formation, service
    finally:
        service.stop()
        formation.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time PostgreSQL failovers (pg_auto_failover) under write load.")
    parser.add_argument("--runs", type=int, default=3, help="failovers, each on a fresh formation (default 3)")
    parser.add_argument("--untuned", action="store_true", help="pg_auto_failover's default timeouts")
    parser.add_argument("--before", type=float, default=8.0, help="seconds of load before the kill (default 8)")
    args = parser.parse_args(argv)
    missing = pg_autoctl_missing()
    if missing:
        print(f"bench.failover: {missing}", file=sys.stderr)
        return 2
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    outages, problems = [], 0
    for run in range(1, args.runs + 1):
        started = time.monotonic()
        try:
            with formation_and_service(tuned=not args.untuned) as (formation, service):
                print(f"run {run}: formation and service up in {time.monotonic() - started:.0f} s", flush=True)
                outcome = run_failover(formation, service, before=args.before,
                                       progress=lambda text: print(f"run {run}: {text}", flush=True))
        except FormationError as error:
            print(f"bench.failover: run {run} could not run: {error}", file=sys.stderr)
            return 2
        print(f"run {run}: {outcome.summary()}", flush=True)
        for seconds, what in outcome.timeline:
            print(f"run {run}:   +{seconds:5.1f} s  {what}", flush=True)
        outages.append(outcome.outage)
        problems += bool(outcome.missing or outcome.view_behind or outcome.verify_code)
    print(f"outages (s): {', '.join(f'{o:.1f}' for o in outages)}; median {statistics.median(outages):.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
