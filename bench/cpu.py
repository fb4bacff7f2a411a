"""Where the CPU went during a measurement: servers, PostgreSQL, load generator, the rest (from /proc)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
LOADGEN = {"wrk", "pgbench"}


def _proc_times() -> dict[int, tuple[str, int]]:
    """pid -> (command name, user+system ticks) for every process we can read."""
    found: dict[int, tuple[str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        found[int(entry.name)] = (comm, int(fields[11]) + int(fields[12]))
    return found


def _busy_ticks() -> int:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle


class CpuSampler:
    """Samples every process a few times a second and adds up CPU time per role.

    Periodic samples keep most of the time of processes that exit before the end (pgbench's
    backends, wrk); the machine-wide busy time comes from /proc/stat and is exact.
    """

    def __init__(self, roles: Callable[[], dict[int, str]], interval: float = 0.25) -> None:
        self.roles = roles  # pid -> role name, for the processes under test
        self.interval = interval
        self.ticks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> CpuSampler:
        self._start_wall = time.monotonic()
        self._start_busy = _busy_ticks()
        self._last = _proc_times()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall = time.monotonic() - self._start_wall
        self.busy = _busy_ticks() - self._start_busy

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        now = _proc_times()
        roles = self.roles()
        for pid, (comm, ticks) in now.items():
            delta = ticks - self._last[pid][1] if pid in self._last else ticks
            if delta <= 0:
                continue
            role = roles.get(pid) or ("postgres" if comm == "postgres" else "loadgen" if comm in LOADGEN else None)
            if role:
                self.ticks[role] = self.ticks.get(role, 0) + delta
        self._last = now

    def cores(self) -> dict[str, float]:
        """Average cores busy per role over the wall time, plus `other` and `idle` for the machine."""
        ncpu = len(os.sched_getaffinity(0))
        result = {role: ticks / TICKS / self.wall for role, ticks in self.ticks.items()}
        total_busy = self.busy / TICKS / self.wall
        result["other"] = max(0.0, total_busy - sum(result.values()))
        result["idle"] = max(0.0, ncpu - total_busy)
        return {k: round(v, 2) for k, v in result.items()}
