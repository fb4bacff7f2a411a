"""Log output: the plain text lines of old, or one JSON object per line (TASKLEDGER_LOG_FORMAT=json).

One format for every process role (`serve`, `project`, `schedule`, `watchdog`, the CLI tools) and, through
`GunicornLogger`, for gunicorn's own error log, the workers' application logs and the access log: each line
has `time` (ISO 8601, UTC), `level`, `logger`, `message` and `pid`; an access line adds `method`, `path`,
`status`, `duration_ms`, `request_id`, `user` and `remote` (docs/observability.md).
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any

from gunicorn.glogging import Logger
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Where the API leaves the authenticated caller's name for the access log (api.auth.USER_ENVIRON, the same
# string: this module is loaded by gunicorn's master, which must not import the API).
USER_ENVIRON = "taskledger.user"
ACCESS_LOGGER = "gunicorn.access"


class JsonLineFormatter(JsonFormatter):
    """A record as one JSON object: the four common keys first, then any `extra` fields, then a traceback."""

    def __init__(self) -> None:
        super().__init__("%(message)s", json_ensure_ascii=False)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = iso_utc(record.created)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        super().add_fields(log_data, record, message_dict)
        log_data["pid"] = record.process


def iso_utc(created: float) -> str:
    """`2026-12-03T14:20:00.123Z`: what log stores parse without a format string."""
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(level: str, log_format: str) -> None:
    """The root logger of a process role: text as before, or JSON lines, on standard error."""
    if log_format != "json":
        logging.basicConfig(level=level, format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter())
    logging.basicConfig(level=level, handlers=[handler])
    _everything_through_logging()


def _everything_through_logging() -> None:
    """Warnings and uncaught exceptions (main thread and others) become records too, not bare text lines."""
    logging.captureWarnings(True)
    crash = logging.getLogger("taskledger.crash")

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        crash.critical("uncaught %s", kind.__name__, exc_info=(kind, value, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        crash.critical("uncaught %s in thread %s", args.exc_type.__name__, name,
                       exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback))

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


class GunicornLogger(Logger):
    """gunicorn's logger (`logger_class`) in JSON: its error log, the workers' root logger, and access lines
    built from the request itself (method, path, status, duration, request id, user, peer) rather than from
    `access_log_format`."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonLineFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
        root = logging.getLogger()
        if not any(getattr(h, "_taskledger", False) for h in root.handlers):
            handler = logging.StreamHandler()
            handler._taskledger = True  # type: ignore[attr-defined]  # a reload (HUP) adds no second one
            handler.setFormatter(formatter)
            root.addHandler(handler)
        root.setLevel(self.loglevel)
        logging.getLogger("eventsourcing").setLevel(max(logging.WARNING, self.loglevel))  # as the CLI has it
        _everything_through_logging()

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        fields = access_fields(resp, environ, request_time)
        self.access_log.info('"%s %s %s" %s', fields["method"], environ.get("RAW_URI", fields["path"]),
                             environ.get("SERVER_PROTOCOL", "-"), fields["status"], extra=fields)


def access_fields(resp: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
    """What an access line says of one request: the request id is the X-Request-Id the API answered."""
    status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
    request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), None)
    return {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "status": int(status) if str(status).isdigit() else status,
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "request_id": request_id,
        "user": environ.get(USER_ENVIRON),
        "remote": environ.get("REMOTE_ADDR"),
    }
