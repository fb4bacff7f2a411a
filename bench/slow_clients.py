"""A well-behaved client under four slow-client attacks, per gunicorn worker class, each against no attack.

  .venv/bin/python bench/slow_clients.py [--seconds 20] [--rounds 3] [--clients 16] [--classes gevent,gthread]

For each worker class it starts `taskledger serve` (defaults otherwise: all-in-one mode, 4 workers on
2 cores) on a scratch database, then per round measures the well-behaved client alone (the baseline)
and during each attack (bench/attacks.py), waiting after each until plain reads succeed again, and prints the medians of the rounds: success, p99 and the
p99 as a ratio to the same class's baseline p99 from the same run. Needs TASKLEDGER_BENCH_DATABASE_URL
(or a PostgreSQL at postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services as svc  # noqa: E402 -- after the path insert
from bench.attacks import ATTACKS, Outcome, Target, prepare, recover, run_attack, well_behaved  # noqa: E402
from taskledger.migrate import migrate  # noqa: E402

SERVER = os.environ.get("TASKLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def alone(target: Target, task_id: str, seconds: float) -> Outcome:
    done = threading.Event()
    threading.Timer(seconds, done.set).start()
    return well_behaved(target, task_id, done)


def measure(worker_class: str, seconds: float, rounds: int, clients: int) -> dict[str, list[Outcome]]:
    scratch = svc.ScratchDatabase(SERVER, name=f"tl_bench_slow_{worker_class}")
    scratch.recreate()
    migrate(scratch.url)
    results: dict[str, list[Outcome]] = {name: [] for name in ("none", *ATTACKS)}
    with tempfile.TemporaryDirectory(prefix="tl-slow-") as tmp:
        home, port, password = Path(tmp), svc.free_port(), secrets.token_urlsafe(12)
        process = svc.start_service(home, port, scratch.url, password,
                                    {"TASKLEDGER_WORKER_CLASS": worker_class}, home)
        try:
            process.wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=120)
            target = Target("127.0.0.1", port, ("admin", password))
            task_id, presto_task = prepare(target)
            for n in range(rounds):
                results["none"].append(alone(target, task_id, seconds))
                for attack in ATTACKS:
                    outcome = run_attack(target, attack, task_id, presto_task, seconds, clients)
                    results[attack].append(outcome)
                    print(f"  {worker_class} round {n + 1} {attack}: {outcome.line()}; recovered in "
                          f"{recover(target, task_id):.1f} s", flush=True)
        finally:
            process.stop()
            scratch.drop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per attack and round (default 20)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16, help="attacking clients per attack (default 16)")
    parser.add_argument("--classes", default="gevent,gthread", help="gunicorn worker classes to compare")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs; "
          f"{args.rounds} rounds x {args.seconds:g} s; {args.clients} attackers", flush=True)
    table = []
    for worker_class in args.classes.split(","):
        results = measure(worker_class, args.seconds, args.rounds, args.clients)
        base_p99 = statistics.median(o.p99 for o in results["none"])
        for name, outcomes in results.items():
            success = statistics.median(o.success for o in outcomes)
            p99 = statistics.median(o.p99 for o in outcomes)
            table.append((worker_class, name, success, p99, p99 / base_p99))
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'class':8} {'attack':16} {'success':>8} {'p99 s':>8} {'p99 / no attack':>16}")
    for worker_class, name, success, p99, ratio in table:
        print(f"{worker_class:8} {name:16} {success:8.2%} {p99:8.3f} {ratio:16.1f}")


if __name__ == "__main__":
    main()
