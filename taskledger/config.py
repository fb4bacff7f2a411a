"""Configuration from the environment, read in this one place."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from taskledger.budget import default_pool_size

# No psycopg at import time: ops/gunicorn.conf.py reads the settings here in the gunicorn master, and psycopg
# chooses its wait function when it is first imported, which must be after the gevent workers' monkey-patching.


@dataclass(frozen=True)
class ServingSettings:
    """What gunicorn is configured with (ops/gunicorn.conf.py)."""

    host: str
    port: int
    workers: int
    threads: int
    worker_class: str
    worker_connections: int
    log_level: str
    access_log: str
    api_nice: int
    log_format: str = "text"  # `json`: one JSON object per line, the access log included (docs/observability.md)

    @property
    def bind(self) -> str:
        """`host:port`, an IPv6 address in brackets (as gunicorn and URLs want it)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Every setting taskledger reads, with its default."""

    home: Path
    serving: ServingSettings
    database_url: str | None
    admin_password: str | None
    pool_size: int
    min_position_wait: float
    lag_budget_events: int
    trusted_proxies: frozenset[str] = frozenset()
    read_database_url: str | None = None  # a streaming replica the API's GETs read from (docs/replicas.md)

    @property
    def host(self) -> str:
        return self.serving.host

    @property
    def port(self) -> int:
        return self.serving.port

    @property
    def bind(self) -> str:
        return self.serving.bind

    @property
    def log_level(self) -> str:
        return self.serving.log_level

    @property
    def log_format(self) -> str:
        return self.serving.log_format

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def admin_password_file(self) -> Path:
        return self.home / "admin-password"


class ConfigError(Exception):
    """A setting has a value taskledger cannot use; the message names the variable and what it wants."""


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WORKER_CLASSES = ("gevent", "gthread", "sync")
LOG_FORMATS = ("text", "json")


def load_settings(environ: Mapping[str, str] | None = None, *, parse_url: bool = True) -> Settings:
    """Every setting, checked: a bad value is a ConfigError naming the variable (never a traceback).

    `parse_url=False` leaves TASKLEDGER_DATABASE_URL's syntax unchecked (that needs psycopg): for the gunicorn
    master, whose workers check it again."""
    env = os.environ if environ is None else environ
    read = _Reader(env)
    workers = read.integer("TASKLEDGER_WORKERS", min(8, 2 * (os.cpu_count() or 1)), 1, 64)
    settings = Settings(
        home=read.directory("TASKLEDGER_HOME", "./var"),
        serving=ServingSettings(
            host=read.host("TASKLEDGER_BIND", "127.0.0.1"),
            port=read.integer("TASKLEDGER_PORT", 8080, 1, 65535),
            workers=workers,
            threads=read.integer("TASKLEDGER_THREADS", 2, 1, 64),
            worker_class=read.choice("TASKLEDGER_WORKER_CLASS", "gevent", WORKER_CLASSES),
            worker_connections=read.integer("TASKLEDGER_WORKER_CONNECTIONS", 1000, 1, 100_000),
            log_level=read.choice("TASKLEDGER_LOG_LEVEL", "INFO", LOG_LEVELS),
            access_log=read.log_file("TASKLEDGER_ACCESS_LOG", "-"),
            api_nice=read.integer("TASKLEDGER_API_NICE", 0, 0, 19),
            log_format=read.choice("TASKLEDGER_LOG_FORMAT", "text", LOG_FORMATS),
        ),
        database_url=read.url("TASKLEDGER_DATABASE_URL") if parse_url else read.text("TASKLEDGER_DATABASE_URL"),
        admin_password=env.get("TASKLEDGER_ADMIN_PASSWORD") or None,
        pool_size=read.integer("TASKLEDGER_POOL_SIZE", default_pool_size(workers), 1, 64),
        min_position_wait=read.number("TASKLEDGER_MIN_POSITION_WAIT", 5.0, 0.0, 300.0),
        lag_budget_events=read.integer("TASKLEDGER_LAG_BUDGET", 1000, 0, 10**12),
        trusted_proxies=read.addresses("TASKLEDGER_TRUSTED_PROXIES"),
        read_database_url=(read.url("TASKLEDGER_READ_DATABASE_URL") if parse_url
                           else read.text("TASKLEDGER_READ_DATABASE_URL")),
    )
    if settings.admin_password is not None and len(settings.admin_password) < 8:
        raise ConfigError("TASKLEDGER_ADMIN_PASSWORD must have at least 8 characters (or leave it unset to get a "
                          "generated one)")
    return settings


def require_database_url(settings: Settings) -> Settings:
    """The settings of a process that only works on a configured server (gunicorn and its workers)."""
    if not settings.database_url:
        raise ConfigError("TASKLEDGER_DATABASE_URL is not set: start the service with `taskledger serve`, "
                          "or set it to your PostgreSQL URL")
    return settings


LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"(?=.{{1,253}}$){LABEL}(\.{LABEL})*\.?")


class _Reader:
    """Reads one variable of a kind and refuses, by name, a value that is not of it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def text(self, name: str) -> str | None:
        return self._raw(name)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        if not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
            raise ConfigError(f"{name}={raw!r} is not a whole number from {low} to {high}; fix it or unset it "
                              f"(default {default})")
        return int(raw)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise ConfigError(f"{name}={raw!r} is not a number from {low:g} to {high:g}; fix it or unset it "
                              f"(default {default:g})")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """One of `allowed`, in any case; answered as spelled in `allowed`."""
        raw = self._raw(name)
        if raw is None:
            return default
        spelled = {value.upper(): value for value in allowed}
        if raw.upper() not in spelled:
            raise ConfigError(f"{name}={raw!r} is not one of {', '.join(allowed)}; fix it or unset it "
                              f"(default {default})")
        return spelled[raw.upper()]

    def host(self, name: str, default: str) -> str:
        """An IP address or a host name to bind to."""
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return str(ipaddress.ip_address(raw.strip("[]")))
        except ValueError:
            if HOST_NAME.fullmatch(raw):
                return raw
        raise ConfigError(f"{name}={raw!r} is not an IP address or a host name; e.g. 127.0.0.1, or 0.0.0.0 to "
                          f"serve other machines")

    def directory(self, name: str, default: str) -> Path:
        """A directory that exists or can be made (a file in its place cannot)."""
        path = Path(self._raw(name) or default).resolve()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{name}={str(path)!r} is not a directory; point it at taskledger's data "
                              f"directory (default ./var)")
        return path

    def log_file(self, name: str, default: str) -> str:
        """`-` (standard output) or a file in a directory that exists."""
        raw = self._raw(name)
        if raw is None or raw == "-":
            return default
        if not Path(raw).resolve().parent.is_dir():
            raise ConfigError(f"{name}={raw!r}: the directory {str(Path(raw).resolve().parent)!r} does not exist; "
                              f"give - for standard output, or a file in an existing directory")
        return raw

    def addresses(self, name: str) -> frozenset[str]:
        """A comma-separated list of IP addresses (written as the server sees peers: 127.0.0.1, ::1)."""
        raw = self._raw(name)
        if raw is None:
            return frozenset()
        found = set()
        for item in (part.strip() for part in raw.split(",")):
            try:
                found.add(str(ipaddress.ip_address(item)))
            except ValueError:
                raise ConfigError(f"{name}: {item!r} is not an IP address; give the proxies' addresses "
                                  f"separated by commas, e.g. 127.0.0.1,10.0.0.5") from None
        return frozenset(found)

    def url(self, name: str) -> str | None:
        raw = self._raw(name)
        if raw is None:
            return None
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(raw)
        except Exception as exc:  # noqa: BLE001 -- any parse failure is the same operator mistake
            reason = " ".join(str(exc).split())
            raise ConfigError(f"{name} is not a PostgreSQL URL or connection string ({reason}); "
                              f"e.g. postgresql://user:password@host:5432/taskledger") from None
        return raw


# Seconds a service session may sit idle inside a transaction before PostgreSQL ends it.
IDLE_IN_TRANSACTION_TIMEOUT = 10


def service_conninfo(url: str) -> str:
    """The URL with the session settings every service connection gets (kept: any options already given)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    given = str(conninfo_to_dict(url).get("options") or "")
    setting = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT * 1000}"
    return make_conninfo(url, options=f"{given} {setting}".strip())


def projection_env(database_url: str) -> dict[str, str]:
    """The settings of a projection's event reader and view writer (taskledger/budget.py)."""
    from taskledger import budget

    return eventsourcing_env(database_url, pool_size=budget.PROJECTION_POOL, overflow=budget.PROJECTION_OVERFLOW)


def eventsourcing_env(database_url: str, *, create_table: bool = False, pool_size: int = 4,
                      overflow: int | None = None) -> dict[str, str]:
    """The eventsourcing library's settings for a PostgreSQL URL (TCP or unix-socket host)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(database_url)
    # Every other libpq parameter of the URL (target_session_attrs, sslmode, application_name, …) goes to the
    # pool too (eventstore/factory.py): eventsourcing's own settings name only these five.
    extra = {k: v for k, v in info.items() if k not in ("dbname", "host", "port", "user", "password")}
    return {
        "PERSISTENCE_MODULE": "eventstore.factory:LedgerFactory",
        "POSTGRES_CONNINFO_EXTRA": make_conninfo("", **extra) if extra else "",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "localhost")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size if overflow is None else overflow),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "10",
        # Appends without eventsourcing's table lock; readers are fenced instead (docs/architecture.md).
        "APPLICATION_RECORDER_TOPIC": "eventstore.recorder:LedgerRecorder",
        # An open transaction holding a transaction id holds every log reader back: none of ours may idle in one.
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(IDLE_IN_TRANSACTION_TIMEOUT),
        # No pre-ping: the recorder already retries operational errors, and a ping is a round trip per checkout.
        "POSTGRES_PRE_PING": "n",
        "CREATE_TABLE": "yes" if create_table else "no",
    }
