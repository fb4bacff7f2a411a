"""A complete taskledger worker: claims tasks of a namespace, works on each with progress and steps, obeys
pause and cancel. Run several copies at once; no task is worked on twice.

    TASKLEDGER_URL=http://127.0.0.1:8080 TASKLEDGER_USER=w1 TASKLEDGER_PASSWORD=… \
        python examples/worker.py --namespace demo [--drain]

A task's input may say how much work it is: {"parts": 5, "seconds_per_part": 0.2}.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from typing import Any

from taskledger.client import ClientError, Lease, Ledger, Worker


def work(lease: Lease) -> dict[str, Any]:
    spec = lease.task.get("input") or {}
    parts = int(spec.get("parts", 5)) if isinstance(spec, dict) else 5
    pause = float(spec.get("seconds_per_part", 0.2)) if isinstance(spec, dict) else 0.2
    steps = len(lease.task.get("steps") or [])
    for part in range(parts):
        if part < steps:
            lease.step(part, status="RUNNING")
        lease.sleep(pause)  # the real work goes here; sleep() and every lease call raise pause/cancel at once
        if part < steps:
            lease.step(part, status="SUCCEEDED", output=f"part {part + 1} of {parts} done\n")
        lease.progress(100 * (part + 1) / parts, f"part {part + 1} of {parts}")
    lease.output("stdout", f"{parts} parts done by {lease.worker.name}\n", last=True)
    return {"parts": parts, "worker": lease.worker.name}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default=os.environ.get("TASKLEDGER_NAMESPACE", "demo"))
    parser.add_argument("--type", default=None, help="only tasks of this type")
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}", help="this worker's name")
    parser.add_argument("--drain", action="store_true", help="exit when no task is left to claim")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.INFO)

    try:
        worker = Worker(Ledger.from_env(), args.name, namespace=args.namespace, type=args.type)
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())  # finish the task at hand, then exit
        done = worker.run(work, drain=args.drain)
    except ClientError as exc:  # no credentials, a refused account, an unreachable service
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    logging.info("worked on %d tasks", done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
