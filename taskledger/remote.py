"""The native API over HTTP for commands that work against a running service (no database access needed).

Where to and as whom: `--url`, `--user`, `--token`, or TASKLEDGER_URL, TASKLEDGER_USER, TASKLEDGER_PASSWORD,
TASKLEDGER_TOKEN. Only the standard library: the command line needs nothing the service does not.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

DEFAULT_URL = "http://127.0.0.1:8080"  # what `taskledger serve` binds by default
BASE = "/ledger/v1"
RETRIES = 4  # a refused connection or a 503 is tried again this many times, backing off


class RemoteError(Exception):
    """The service refused the request (a problem+json answer) or could not be reached."""

    def __init__(self, message: str, status: int | None = None, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("service")
    group.add_argument("--url", default=None, help=f"the service (default: TASKLEDGER_URL, else {DEFAULT_URL})")
    group.add_argument("--user", default=None, help="Basic auth user (default: TASKLEDGER_USER); the password is "
                       "TASKLEDGER_PASSWORD, else asked for on a terminal")
    group.add_argument("--token", default=None, help="a bearer token instead (default: TASKLEDGER_TOKEN)")


@dataclass
class Service:
    url: str
    authorization: str | None
    position: int = 0  # the highest Ledger-Position answered: later reads wait for it

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Service:
        url = (args.url or os.environ.get("TASKLEDGER_URL") or DEFAULT_URL).rstrip("/")
        token = args.token or os.environ.get("TASKLEDGER_TOKEN")
        user = args.user or os.environ.get("TASKLEDGER_USER")
        if token:
            return cls(url, f"Bearer {token}")
        if user:
            password = os.environ.get("TASKLEDGER_PASSWORD")
            if password is None and sys.stdin.isatty():
                password = getpass.getpass(f"password of {user} at {url}: ")
            if password is None:
                raise RemoteError(f"no password for {user}: set TASKLEDGER_PASSWORD (or use --token)")
            raw = base64.b64encode(f"{user}:{password}".encode()).decode()
            return cls(url, f"Basic {raw}")
        raise RemoteError("who are you? give --user (and TASKLEDGER_PASSWORD) or --token, or set TASKLEDGER_USER "
                          "or TASKLEDGER_TOKEN; `taskledger users add NAME --role operator` makes a user")

    def post(self, path: str, body: Any, params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        return self.call("POST", path, body, params)

    def get(self, path: str, params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        return self.call("GET", path, None, params)

    def call(self, method: str, path: str, body: Any, params: list[tuple[str, str]] | None) -> dict[str, Any]:
        """One request; connection failures and 503s are retried with backoff (callers send only requests that
        are safe to repeat), any other refusal raises at once."""
        target = f"{self.url}{BASE}{path}" + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        delay = 0.5
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(target, data=data, method=method)
            request.add_header("Accept", "application/json")
            if data is not None:
                request.add_header("Content-Type", "application/json")
            if self.authorization:
                request.add_header("Authorization", self.authorization)
            if self.position:
                request.add_header("Ledger-Min-Position", str(self.position))
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    self._note_position(answer.headers.get("Ledger-Position"))
                    return dict(json.loads(answer.read() or b"{}"))
            except urllib.error.HTTPError as exc:
                problem = _problem(exc)
                if exc.code == 503 and attempt < RETRIES:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise RemoteError(_explain(exc.code, problem), exc.code, problem) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if attempt < RETRIES:
                    time.sleep(delay)
                    delay *= 2
                    continue
                reason = getattr(exc, "reason", exc)
                raise RemoteError(f"cannot reach {self.url} ({reason}); is the service running? "
                                  "(`taskledger serve`, or give --url / TASKLEDGER_URL)") from None
        raise AssertionError("unreachable")

    def _note_position(self, header: str | None) -> None:
        if header and header.isdigit():
            self.position = max(self.position, int(header))


def _problem(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        parsed = json.loads(exc.read() or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _explain(status: int, problem: dict[str, Any]) -> str:
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    fields = "; ".join(f"{e.get('field')}: {e.get('rule')}" for e in problem.get("errors") or [])
    if status == 401:
        return f"{detail} (check --user and TASKLEDGER_PASSWORD, or --token)"
    if status == 403:
        return f"{detail} (this needs an operator or admin account)"
    return f"{detail}" + (f" [{fields}]" if fields and fields not in detail else "")
