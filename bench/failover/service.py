"""The service in its production shape on the formation URI: two API processes and one projection runner."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

from bench.failover.formation import API_PORTS, REPO, FormationError

GUNICORN_CONF = REPO / "ops" / "gunicorn.conf.py"


class Service:
    """The production shape on the formation URI: `taskledger migrate`, two API processes (gunicorn with
    ops/gunicorn.conf.py, one worker each) and one `taskledger project`."""

    def __init__(self, base: Path, database_url: str) -> None:
        self.base, self.database_url = base, database_url
        self.password = secrets.token_urlsafe(12)
        self.auth = ("admin", self.password)
        self.apis: list[subprocess.Popen[bytes]] = []
        self.projector: subprocess.Popen[bytes] | None = None
        self.bases = [f"http://127.0.0.1:{port}" for port in API_PORTS]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKLEDGER_", "PG", "PROMETHEUS_"))}
        env.update(TASKLEDGER_DATABASE_URL=self.database_url, TASKLEDGER_HOME=str(self.base / "home"),
                   TASKLEDGER_WORKERS="1", TASKLEDGER_POOL_SIZE="2", TASKLEDGER_BIND="127.0.0.1", **extra)
        return env

    def taskledger(self, *args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "taskledger.cli", *args], env=self.env(), cwd=REPO, input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, budget: float = 90) -> None:
        for args, stdin in ((["migrate"], None),
                            (["users", "add", "admin", "--role", "admin", "--password-stdin"], self.password + "\n")):
            done = self.taskledger(*args, stdin=stdin)
            if done.returncode != 0:
                raise FormationError(f"taskledger {' '.join(args)} failed: {done.stderr.strip()}")
        for index, port in enumerate(API_PORTS):
            metrics = self.base / f"metrics-{index}"
            metrics.mkdir(parents=True, exist_ok=True)
            self.apis.append(self._spawn(f"api-{index}", [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)],
                                         self.env(TASKLEDGER_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(metrics))))
        self.projector = self._spawn("project", [sys.executable, "-m", "taskledger.cli", "project"], self.env())
        deadline = time.monotonic() + budget
        for base, process in zip(self.bases, self.apis):
            while not self._ready(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise FormationError(f"the API at {base} did not get ready:\n{self.log_tail('api-0')}")
                time.sleep(0.2)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.base / f"{name}.log").open("ab") as log:
            return subprocess.Popen(cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def _ready(base: str) -> bool:
        try:
            return requests.get(f"{base}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def log_tail(self, name: str, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.base / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    def pids(self) -> dict[str, list[int]]:
        """Every API process (gunicorn master and its workers) and the projection runner, by name."""
        found = {}
        for index, process in enumerate(self.apis):
            with contextlib.suppress(psutil.Error):
                found[f"api-{index}"] = [process.pid, *sorted(c.pid for c in psutil.Process(process.pid).children())]
        if self.projector is not None:
            found["project"] = [self.projector.pid]
        return found

    def stop(self) -> None:
        processes = [p for p in [*self.apis, self.projector] if p is not None]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: workers a dead master left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
