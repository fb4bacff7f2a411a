"""PostgreSQL connections `taskledger serve` holds, by role: idle, under load, and after it.

  PYTHONPATH=. .venv/bin/python bench/connections.py [--workers 4,8] [--clients 64] [--seconds 15]

For each worker count it starts `taskledger serve` on a scratch database, then counts the database's
sessions in pg_stat_activity by application_name (every taskledger connection says whose it is:
`taskledger-api`, `taskledger-serve`, `…/notifier`, `…/tail`, `…/lead-<projection>`): idle after start,
the peak while `--clients` clients read and create tasks as fast as they are answered, and again
once the load stopped. It prints them beside the budget docs/architecture.md states, so a change that
opens more connections than budgeted shows here. Needs TASKLEDGER_BENCH_DATABASE_URL (or a
PostgreSQL at postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services as svc  # noqa: E402 -- after the path insert
from taskledger.budget import default_pool_size, serve_budget  # noqa: E402
from taskledger.migrate import migrate  # noqa: E402

SERVER = os.environ.get("TASKLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUERY = """SELECT coalesce(nullif(application_name, ''), '(none)') AS name, count(*)
           FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1"""


def sessions(conn: psycopg.Connection[tuple[str, int]], database: str) -> Counter[str]:
    return Counter({name: int(n) for name, n in conn.execute(QUERY, (database,)).fetchall()})


def load(url: str, auth: tuple[str, str], task_id: str, stop: threading.Event) -> None:
    with requests.Session() as session:
        session.auth = auth
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 2:
                    session.get(f"{url}/ledger/v1/tasks/{task_id}", timeout=10)
                else:
                    session.post(f"{url}/ledger/v1/tasks", timeout=10,
                                 json={"namespace": "budget", "name": f"t{n}-{threading.get_ident()}"})
            except requests.RequestException:
                stop.wait(0.1)


def measure(workers: int, clients: int, seconds: float) -> dict[str, Counter[str]]:
    scratch = svc.ScratchDatabase(SERVER, name=f"tl_bench_conns_{workers}")
    scratch.recreate()
    migrate(scratch.url)
    seen: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="tl-conns-") as tmp, \
            psycopg.connect(SERVER, autocommit=True) as conn:
        home, port, password = Path(tmp), svc.free_port(), secrets.token_urlsafe(12)
        process = svc.start_service(home, port, scratch.url, password, {"TASKLEDGER_WORKERS": str(workers)}, home)
        database = scratch.name
        try:
            url = f"http://127.0.0.1:{port}"
            process.wait_http_ok(f"{url}/readyz", timeout=120)
            time.sleep(3)
            seen["idle"] = sessions(conn, database)
            auth = ("admin", password)
            task_id = requests.post(f"{url}/ledger/v1/tasks", auth=auth, timeout=30,
                                    json={"namespace": "budget", "name": "read-me"}).json()["id"]
            stop = threading.Event()
            threads = [threading.Thread(target=load, args=(url, auth, task_id, stop), daemon=True)
                       for _ in range(clients)]
            for thread in threads:
                thread.start()
            peak: Counter[str] = Counter()
            total_peak = 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                now = sessions(conn, database)
                peak |= now  # the peak of each name
                total_peak = max(total_peak, sum(now.values()))
                time.sleep(0.1)
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
            seen["load (peak per name)"] = peak
            seen["load (peak total)"] = Counter({"all": total_peak})
            time.sleep(5)
            seen["after"] = sessions(conn, database)
        finally:
            process.stop()
            scratch.drop()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="4,8", help="gunicorn worker counts to measure (default 4,8)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    la = os.getloadavg()
    print(f"load average before: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; {os.cpu_count()} CPUs; "
          f"{args.clients} clients for {args.seconds:g} s", flush=True)
    for workers in (int(w) for w in args.workers.split(",")):
        seen = measure(workers, args.clients, args.seconds)
        pool_size = default_pool_size(workers)
        budget = serve_budget(workers=workers, pool_size=pool_size)
        print(f"\nworkers={workers} pool size={pool_size}: budget idle {budget.idle}, at most {budget.peak} "
              f"= {budget.formula}")
        for phase, counts in seen.items():
            rows = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
            print(f"  {phase:22} total {sum(counts.values()):3}: {rows}")
    la = os.getloadavg()
    print(f"\nload average after: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")


if __name__ == "__main__":
    main()
