"""One HTTP session to the service: credentials, retries by the rules of docs/client.md, read-your-writes.

Retry rules (the whole reason this module exists):
- A request that never reached the service (connection refused, connect timeout) is sent again, whatever it is.
- A request that may have reached it (a reset, a read timeout, 502/503/504) is sent again only if repeating it
  cannot record anything twice: reads, writes carrying an `Idempotency-Key` (create, complete, fail), and
  writes whose repetition leaves the same state (heartbeats, progress, step status). Claims and output pages
  are not: the caller learns of the failure instead.
- 503 `projection-lagging` (answered before anything is written) is waited out for every request, as the
  service's `Retry-After` says.
- Any other refusal (4xx, 409 above all: a stale lease stays stale) raises at once.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import tenacity
from urllib3.exceptions import NewConnectionError

from taskledger.client.errors import ConnectionFailedError, ProblemError, UnavailableError, problem_error

log = logging.getLogger("taskledger.client")
BASE = "/ledger/v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUS = frozenset({502, 503, 504})
BACKOFF = tenacity.wait_exponential_jitter(multiplier=0.2, max=4.0, jitter=0.2)  # 0.2, 0.4, 0.8 … 4 s
Params = Sequence[tuple[str, str]] | Mapping[str, Any] | None


@dataclass(frozen=True)
class Answer:
    """A response the service accepted: status, parsed body (None for 204) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class Transport:
    """A `requests.Session` with the ledger's authentication, retries and position tracking; thread-safe."""

    def __init__(self, url: str, authorization: str | None, *, timeout: float, retries: int,
                 retry_deadline: float, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout, self.retries, self.retry_deadline = timeout, retries, retry_deadline
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "taskledger-client"
        if authorization:
            self.session.headers["Authorization"] = authorization
        self._lock = threading.Lock()
        self._position = 0

    @property
    def position(self) -> int:
        """The highest `Ledger-Position` any write answered: reads that honour it wait for it."""
        return self._position

    def note_position(self, value: int | str | None) -> None:
        if value is None or not str(value).isdigit():
            return
        with self._lock:
            self._position = max(self._position, int(value))

    def request(self, method: str, path: str, *, params: Params = None, json: Any = None,
                headers: Mapping[str, str] | None = None, repeatable: bool | None = None,
                wait_for_writes: bool = False) -> Answer:
        """Sends one request (again, by the rules above) and answers it, or raises the service's refusal."""
        repeatable = method in SAFE_METHODS if repeatable is None else repeatable
        extra = dict(headers or {})
        extra.setdefault("X-Request-Id", uuid.uuid4().hex)  # the same on every retry: one request in the logs
        if wait_for_writes and self._position:
            extra["Ledger-Min-Position"] = str(self._position)
        target = f"{self.url}{BASE}{path}"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1) | tenacity.stop_after_delay(self.retry_deadline),
            wait=_wait, retry=tenacity.retry_if_exception(lambda exc: _again(exc, repeatable)), reraise=True)
        try:
            answer: Answer = retrying(self._once, method, target, params, json, extra)
        except requests.RequestException as exc:
            reason = _reason(exc)
            raise ConnectionFailedError(f"cannot reach {self.url} ({reason}); is the service running "
                                        f"there? ({method} {path})", reason) from exc
        return answer

    def _once(self, method: str, target: str, params: Params, body: Any, headers: dict[str, str]) -> Answer:
        response = self.session.request(method, target, params=params, json=body, headers=headers,
                                        timeout=self.timeout)
        self.note_position(response.headers.get("Ledger-Position"))
        log.debug("%s %s -> %s", method, target, response.status_code)
        if response.status_code >= 400:
            raise problem_error(response.status_code, _problem(response), method=method, url=response.url,
                                request_id=response.headers.get("X-Request-Id"),
                                retry_after=_seconds(response.headers.get("Retry-After")))
        parsed = response.json() if response.content else None
        return Answer(response.status_code, parsed, response.headers)


def _again(exc: BaseException, repeatable: bool) -> bool:
    if isinstance(exc, ProblemError):
        if isinstance(exc, UnavailableError) and exc.code == "projection-lagging":
            return True  # refused at the door, before anything was written
        return repeatable and exc.status in RETRYABLE_STATUS
    if isinstance(exc, requests.RequestException):
        return repeatable or _never_sent(exc)
    return False


def _never_sent(exc: requests.RequestException) -> bool:
    """The connection was never made, so the service cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else None
        return isinstance(getattr(cause, "reason", cause), NewConnectionError)
    return False


def _wait(state: tenacity.RetryCallState) -> float:
    """The service's `Retry-After` when it gave one (at most 5 s), else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, ProblemError) and exc.retry_after is not None:
        return min(exc.retry_after, 5.0)
    return float(BACKOFF(state))


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {"title": response.reason or f"HTTP {response.status_code}", "detail": response.text[:500]}
    return parsed if isinstance(parsed, dict) else {"detail": str(parsed)[:500]}


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reason(exc: requests.RequestException) -> str:
    """`Connection refused`, `timed out`: not urllib3's repr of the connection object."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    if isinstance(exc, requests.Timeout) or "timed out" in text.lower():
        return "timed out"
    return type(exc).__name__
