"""A pg_auto_failover formation on loopback: a monitor, a primary and a synchronous standby, in a temporary
directory, tuned with ops/failover/monitor.conf and keeper.cfg; `lose_machine` SIGKILLs a node's keeper and
PostgreSQL at once. As root, every pg_autoctl and PostgreSQL process runs as the `postgres` user."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops" / "failover"
DBNAME = "taskledger"
MONITOR_PORT, NODE_PORTS, API_PORTS = 18401, (18402, 18403), (18410, 18411)
SYSTEM_USER = "postgres"  # PostgreSQL and pg_autoctl refuse to run as root


class FormationError(RuntimeError):
    """The formation or a service process did not come up, or did not do what was expected in time."""


def pg_autoctl_missing() -> str | None:
    """Why the failover demo cannot run here, or None."""
    if not shutil.which("pg_autoctl"):
        return ("pg_autoctl is not installed: apt-get install postgresql-15-auto-failover pg-auto-failover-cli "
                "(scripts/test does it)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root, and there is no {SYSTEM_USER!r} user to run PostgreSQL as"
    return None


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def find_pg_ctl() -> str:
    """pg_ctl of the PostgreSQL major version that has the pgautofailover extension installed."""
    for control in sorted(glob.glob("/usr/share/postgresql/*/extension/pgautofailover.control"), reverse=True):
        candidate = Path("/usr/lib/postgresql") / Path(control).parts[4] / "bin" / "pg_ctl"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return found
    raise FormationError("no pg_ctl found for the pgautofailover extension (postgresql-15-auto-failover)")


def read_keeper_settings(path: Path = OPS / "keeper.cfg") -> list[tuple[str, str]]:
    """`key value` lines of ops/failover/keeper.cfg (comments after #)."""
    pairs = []
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            pairs.append((words[0], words[1]))
    return pairs


def read_monitor_settings(path: Path = OPS / "monitor.conf") -> dict[str, str]:
    """`name = value` lines of ops/failover/monitor.conf."""
    settings = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            name, value = (part.strip() for part in text.split("=", 1))
            settings[name] = value
    return settings


@dataclass
class Node:
    """One pg_autoctl service (monitor or PostgreSQL node) and its data directory."""

    name: str
    pgdata: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


class Formation:
    """A monitor and two PostgreSQL nodes on loopback under pg_auto_failover, in a temporary directory."""

    def __init__(self, base: Path | None = None, tuned: bool = True) -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix="taskledger-failover-"))
        self.base.chmod(0o755)
        self.tuned = tuned
        self.pg_ctl = find_pg_ctl()
        self.as_postgres = os.geteuid() == 0
        self.monitor = Node("monitor", self.base / "monitor", MONITOR_PORT)
        self.nodes = [Node(f"node{i + 1}", self.base / f"node{i + 1}", port) for i, port in enumerate(NODE_PORTS)]
        self.env = {"PATH": f"{Path(self.pg_ctl).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "HOME": str(self.base), "LANG": "C.UTF-8", "PGUSER": SYSTEM_USER,
                    # pg_autoctl keeps its config, state and pid files under these: inside the tempdir
                    "XDG_CONFIG_HOME": str(self.base / "xdg" / "config"),
                    "XDG_DATA_HOME": str(self.base / "xdg" / "data"),
                    "XDG_RUNTIME_DIR": str(self.base / "xdg" / "run")}
        for sub in ("logs", "xdg/config", "xdg/data", "xdg/run"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            user = pwd.getpwnam(SYSTEM_USER)
            for path in [self.base, *self.base.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    # ------------------------------------------------------------------ processes
    def _user(self) -> dict[str, Any]:
        return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []} if self.as_postgres else {}

    def pg_autoctl(self, *args: str, timeout: float = 60) -> str:
        """One pg_autoctl command; its output, or FormationError with its stderr."""
        done = subprocess.run(["pg_autoctl", *args], env=self.env, cwd=self.base, capture_output=True, text=True,
                              timeout=timeout, **self._user())
        if done.returncode != 0:
            raise FormationError(f"pg_autoctl {' '.join(args)} failed ({done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return str(done.stdout)

    def _run(self, node: Node, args: Sequence[str]) -> None:
        log = (self.base / "logs" / f"{node.name}.log").open("ab")
        node.process = subprocess.Popen(["pg_autoctl", *args], env=self.env, cwd=self.base, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._user())
        log.close()

    def log_tail(self, node: Node, lines: int = 30) -> str:
        path = self.base / "logs" / f"{node.name}.log"
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # ------------------------------------------------------------------ life cycle
    def start(self, budget: float = 150) -> None:
        deadline = time.monotonic() + budget
        for node in [self.monitor, *self.nodes]:
            if port_in_use(node.port):
                raise FormationError(f"port {node.port} (for the {node.name}) is in use: a formation left running? "
                                     f"stop it (`pg_autoctl stop --pgdata ...`) or free the port")
        self._initdb([self.monitor, self.nodes[0]])
        self._run(self.monitor, ["create", "monitor", "--pgdata", str(self.monitor.pgdata), "--pgport",
                                 str(self.monitor.port), "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl",
                                 "--pgctl", self.pg_ctl, "--run"])
        self._wait(lambda: self._monitor_answers(), deadline, "the monitor accepting connections", self.monitor)
        if self.tuned:
            self.tune_monitor()
        monitor_uri = self.pg_autoctl("show", "uri", "--formation", "monitor", "--pgdata",
                                      str(self.monitor.pgdata)).strip()
        for index, node in enumerate(self.nodes):
            self._run(node, ["create", "postgres", "--pgdata", str(node.pgdata), "--pgport", str(node.port),
                             "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", node.name,
                             "--dbname", DBNAME, "--replication-quorum", "true",
                             "--monitor", monitor_uri, "--auth", "trust", "--no-ssl", "--pgctl", self.pg_ctl,
                             "--run"])
            wanted = {"single"} if index == 0 else {"primary", "secondary"}
            self._wait(lambda: index == 0 and self._states_are(wanted, 1) or self._standby_joined(), deadline,
                       f"{node.name} to reach {'/'.join(sorted(wanted))}", node)
            if self.tuned:
                self.tune_keeper(node)

    def _initdb(self, nodes: Sequence[Node]) -> None:
        """initdb without fsync, in parallel: pg_autoctl takes an existing data directory as it is, and its own
        initdb (with fsync) took 12 s per node on the CI machine. Only the standby is made by pg_autoctl (its
        pg_basebackup of the primary)."""
        initdb = str(Path(self.pg_ctl).parent / "initdb")
        runs = [subprocess.Popen([initdb, "--pgdata", str(node.pgdata), "--auth=trust", "--no-sync",
                                  "--encoding=UTF8", "--locale=C.UTF-8"], env=self.env, cwd=self.base,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **self._user()) for node in nodes]
        for node, run in zip(nodes, runs):
            _, err = run.communicate(timeout=120)
            if run.returncode != 0:
                raise FormationError(f"initdb of {node.name} failed: {err.decode(errors='replace')[-1000:]}")

    def _standby_joined(self) -> bool:
        """Whether primary and secondary are both settled. pg_basebackup of the new standby first waits for a
        checkpoint on the primary, spread over minutes by default (95 s here): ask for it at once."""
        if self._states_are({"primary", "secondary"}, 2):
            return True
        with contextlib.suppress(psycopg.Error), psycopg.connect(
                host="127.0.0.1", port=self.nodes[0].port, user=SYSTEM_USER, dbname="postgres", connect_timeout=2,
                autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'").fetchone()
            if row and row[0]:
                conn.execute("CHECKPOINT")
        time.sleep(0.5)
        return False

    def _wait(self, check: Callable[[], bool], deadline: float, what: str, node: Node) -> None:
        while time.monotonic() < deadline:
            if check():
                return
            if node.process is not None and node.process.poll() is not None:
                raise FormationError(f"pg_autoctl for {node.name} exited ({node.process.returncode}) before "
                                     f"{what}:\n{self.log_tail(node)}")
            time.sleep(0.3)
        raise FormationError(f"timed out waiting for {what}:\n{self.log_tail(node)}")

    def _monitor_answers(self) -> bool:
        try:
            with self.monitor_connection():
                return True
        except psycopg.Error:
            return False

    def monitor_connection(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.monitor.port, user=SYSTEM_USER, dbname="pg_auto_failover",
                               connect_timeout=2, autocommit=True)

    def _states_are(self, wanted: set[str], count: int) -> bool:
        try:
            rows = self.state()
        except (FormationError, subprocess.TimeoutExpired):
            return False
        return len(rows) == count and all(r["reported"] in wanted and r["reported"] == r["assigned"] for r in rows)

    def tune_monitor(self) -> None:
        """ops/failover/monitor.conf, included from the monitor's postgresql.conf; reloaded, then checked."""
        wanted = read_monitor_settings()
        target = self.monitor.pgdata / "failover-tuning.conf"
        shutil.copyfile(OPS / "monitor.conf", target)
        if self.as_postgres:
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(target, user.pw_uid, user.pw_gid)
        with (self.monitor.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude 'failover-tuning.conf'  # taskledger ops/failover/monitor.conf\n")
        with self.monitor_connection() as conn:
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
            for name, value in wanted.items():
                row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()
                if not row or row[0] != value:
                    raise FormationError(f"monitor setting {name} is {row[0] if row else None}, not {value}")

    def tune_keeper(self, node: Node) -> None:
        """ops/failover/keeper.cfg on one node's keeper: `config set` signals the running keeper, which takes the
        timeouts at run time. The keeper rewrites its file on each reload, so each value is read back."""
        for key, value in read_keeper_settings():
            for attempt in range(20):
                with contextlib.suppress(FormationError):
                    self.pg_autoctl("config", "set", "--pgdata", str(node.pgdata), key, value)
                    time.sleep(0.2)
                    if self.pg_autoctl("config", "get", "--pgdata", str(node.pgdata), key).strip() == value:
                        break
                time.sleep(0.3)
            else:
                raise FormationError(f"could not set {key} = {value} on {node.name}:\n{self.log_tail(node)}")

    def state(self) -> list[dict[str, Any]]:
        """`pg_autoctl show state`: one dict per node (name, port, reported and assigned state, health)."""
        rows = json.loads(self.pg_autoctl("show", "state", "--json", "--pgdata", str(self.monitor.pgdata),
                                          timeout=10) or "[]")
        return [{"name": r.get("nodename") or r.get("node_name"), "port": int(r["nodeport"]),
                 "reported": r["current_group_state"], "assigned": r["assigned_group_state"], "health": r.get("health"),
                 "lsn": r.get("reported_lsn")} for r in rows]

    def show_state_text(self) -> str:
        return self.pg_autoctl("show", "state", "--pgdata", str(self.monitor.pgdata), timeout=10)

    def events_text(self, count: int = 25) -> str:
        """The monitor's last state changes (`pg_autoctl show events`), each with its time."""
        return self.pg_autoctl("show", "events", "--count", str(count), "--pgdata", str(self.monitor.pgdata),
                               timeout=10)

    def events_since(self, wall: float) -> list[tuple[float, str]]:
        """The monitor's events after a wall-clock time: (seconds after it, node: reported -> goal, why)."""
        with self.monitor_connection() as conn:
            rows = conn.execute("SELECT extract(epoch FROM eventtime), nodename, reportedstate::text, "
                                "goalstate::text, description FROM pgautofailover.event "
                                "WHERE eventtime > to_timestamp(%s) ORDER BY eventid", (wall,)).fetchall()
        return [(float(at) - wall, f"{node}: {reported} -> {goal}; {why}") for at, node, reported, goal, why in rows]

    def uri(self) -> str:
        """The formation URI (every node, target_session_attrs=read-write) as the `postgres` user."""
        uri = self.pg_autoctl("show", "uri", "--formation", "default", "--pgdata", str(self.monitor.pgdata)).strip()
        scheme, rest = uri.split("://", 1)
        return f"postgresql://{SYSTEM_USER}@{rest}&connect_timeout=2"

    def node_in(self, states: set[str]) -> Node | None:
        """A node that reached (reported as assigned) one of these states."""
        ports = {r["port"] for r in self.state() if r["reported"] in states and r["reported"] == r["assigned"]}
        return next((n for n in self.nodes if n.port in ports), None)

    def primary(self) -> Node:
        node = self.node_in({"primary"})
        if node is None:
            raise FormationError(f"no node is primary:\n{self.show_state_text()}")
        return node

    def lose_machine(self, node: Node) -> float:
        """SIGKILL the node's keeper and its PostgreSQL at once (postmaster from postmaster.pid, every child);
        returns the monotonic time of the kill."""
        victims: list[psutil.Process] = []
        for pid in (node.process.pid if node.process else None, node.postmaster_pid()):
            with contextlib.suppress(psutil.Error, TypeError):
                root = psutil.Process(pid)
                victims += [root, *root.children(recursive=True)]
        if not victims:
            raise FormationError(f"{node.name} has no process to kill")
        for victim in victims:  # the keeper first: nothing may restart PostgreSQL in place
            with contextlib.suppress(psutil.Error):
                victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        psutil.wait_procs(victims, timeout=5)
        if node.process is not None:
            node.process.wait(timeout=5)
        return killed_at

    def close(self) -> None:
        """Kills every process of the formation (process groups and any stray postmaster) and removes the dir."""
        for node in [*self.nodes, self.monitor]:
            pids = [node.process.pid] if node.process else []
            pids += [pid for pid in [node.postmaster_pid()] if pid]
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    process = psutil.Process(pid)
                    for victim in [process, *process.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            victim.kill()
            if node.process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=10)
        for leftover in psutil.process_iter(["cwd", "cmdline"]):  # a postmaster whose pid file is gone already
            with contextlib.suppress(psutil.Error, TypeError):
                if str(self.base) in " ".join(leftover.info["cmdline"] or []) or \
                        str(leftover.info["cwd"] or "").startswith(str(self.base)):
                    leftover.kill()
        shutil.rmtree(self.base, ignore_errors=True)


