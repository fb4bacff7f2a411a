"""`taskledger serve`: the all-in-one service — database, schema, projections, scheduler, watchdog, API."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from projections.registry import PROJECTIONS
from projections.runner import start_projections
from taskledger.accounts import PostgresAccounts
from taskledger.budget import HEADROOM, serve_budget
from taskledger.config import ConfigError, Settings, projection_env
from taskledger.migrate import migrate
from taskledger.preflight import check_budget, check_database, make_home, open_database, setting_of
from taskledger.roles import start_roles
from taskledger.stopsignal import join_within, last_resort, stop_on_signals

log = logging.getLogger(__name__)
GUNICORN_CONF = Path(__file__).resolve().parent.parent / "ops" / "gunicorn.conf.py"


def ensure_admin(url: str, settings: Settings) -> str:
    """Creates the `admin` user on first start; says where its password is."""
    accounts = PostgresAccounts(url, max_size=1)
    accounts.open()
    try:
        if accounts.user_exists("admin"):
            return _where_admin_password(settings)
        password = settings.admin_password or secrets.token_urlsafe(18)
        accounts.create_user("admin", password, "admin")
    finally:
        accounts.close()
    if not settings.admin_password:
        fd = os.open(settings.admin_password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        os.chmod(settings.admin_password_file, 0o600)
    return _where_admin_password(settings)


def _api_name() -> str:
    """What the workers' connections are called: `taskledger-api`, unless the operator chose PGAPPNAME."""
    given = os.environ.get("PGAPPNAME", "")
    return "taskledger-api" if not given or given.startswith("taskledger-") else given


def _where_admin_password(settings: Settings) -> str:
    if settings.admin_password_file.exists():
        return f"admin password: in {settings.admin_password_file} (mode 0600)"
    return "admin password: the TASKLEDGER_ADMIN_PASSWORD given on first start"


def _check_budget(url: str, settings: Settings) -> None:
    """The connections this serve will hold fit the server (taskledger/budget.py); refused when even the idle ones
    do not, a warning when the peak leaves too little room."""
    wanted = serve_budget(settings.serving.workers, settings.pool_size, len(PROJECTIONS))
    warning = check_budget(url, wanted, setting_of(settings), HEADROOM)
    if warning:
        log.warning(warning)
    log.info("PostgreSQL connections: %d idle, at most %d (%s)", wanted.idle, wanted.peak, wanted.formula)


def serve(settings: Settings) -> int:
    _check_port_free(settings)
    if settings.database_url:  # before anything starts; an embedded server is checked by starting it
        check_database(settings.database_url, migrated=False)
    make_home(settings)
    url, server = open_database(settings, create=True)
    stopping = threading.Event()
    stop_on_signals(stopping)
    gunicorn: subprocess.Popen[bytes] | None = None
    threads = []
    try:
        migrate(url)
        _check_budget(url, settings)
        credential = ensure_admin(url, settings)
        threads = [*start_projections(projection_env(url), url, stopping),
                   *start_roles(url, stopping)]
        gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)],
                                    env={**os.environ, "TASKLEDGER_DATABASE_URL": url, "PGAPPNAME": _api_name(),
                                         "TASKLEDGER_PARENT_PID": str(os.getpid()),
                                         "PROMETHEUS_MULTIPROC_DIR": str(_fresh_metrics_dir(settings))})
        base = f"http://{settings.bind}"
        if _wait_ready(base, gunicorn, stopping):
            _announce(settings, f"taskledger is serving at {base}/ledger/v1  (user: admin; {credential})")
            _announce(settings, f"data directory: {settings.home}; stop with Ctrl-C or SIGTERM")
        while not stopping.is_set() and gunicorn.poll() is None:
            stopping.wait(0.5)
        return 0 if stopping.is_set() else 1
    finally:
        stopping.set()
        _stop(gunicorn)
        last_resort()  # from here on a stuck stop prints its threads' stacks and exits 1
        join_within(threads)
        if server is not None:
            server.cleanup()
        log.info("taskledger stopped")


def _announce(settings: Settings, line: str) -> None:
    """A line for the person who started serve; a log record when the logs are JSON (every line parses)."""
    if settings.log_format == "json":
        log.info(line)
    else:
        print(line, flush=True)


def _check_port_free(settings: Settings) -> None:
    """gunicorn binds only after the database and the projections started; a port in use is said at once."""
    try:
        addresses = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
        with socket.socket(addresses[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
            probe.bind(addresses[0][4])
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.bind} ({exc.strerror or exc}): set TASKLEDGER_PORT to a "
                          f"free port, or TASKLEDGER_BIND to an address of this machine") from None


def _fresh_metrics_dir(settings: Settings) -> Path:
    """Per-worker metric files for gunicorn; stale files from a previous run would be summed in."""
    path = settings.run_dir / "prometheus"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _wait_ready(base: str, process: subprocess.Popen[bytes], stopping: threading.Event) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stopping.is_set() and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            stopping.wait(0.2)
    return False


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
