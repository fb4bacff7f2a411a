"""Who is calling: HTTP Basic or bearer credentials checked against an account store, and roles."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import falcon
from eventsourcing.persistence import OperationalError

from api.problems import Problem

log = logging.getLogger(__name__)

ADMIN = frozenset({"admin"})
CONTROL = frozenset({"admin", "operator"})
WORK = frozenset({"admin", "worker"})
READ = frozenset({"admin", "operator", "worker", "viewer"})
TOKEN_USERS = READ
CHALLENGE = 'Basic realm="taskledger", Bearer'
# The WSGI environ key that names the authenticated caller, for gunicorn's JSON access log
# (taskledger.logformat reads it; an environ key, not a response header, so the name never leaves the server).
USER_ENVIRON = "taskledger.user"


class Principal(Protocol):
    """An authenticated caller."""

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> str: ...


class IssuedToken(Protocol):
    """A bearer token just minted: the secret (shown once) and its record."""

    @property
    def token(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def user(self) -> str: ...

    @property
    def label(self) -> str | None: ...

    @property
    def expires_at(self) -> datetime | None: ...


class CredentialsUnavailableError(OperationalError):
    """The account store could not check credentials: its database does not answer (retry shortly).

    A PEP 249 OperationalError like the ledger's, so `api.unavailable` answers it as every other outage:
    503 `database-unavailable` with `Retry-After`, in each API's own format."""


class Authenticator(Protocol):
    """The account store the API checks credentials against (`taskledger.accounts.PostgresAccounts`).

    Every method may raise `CredentialsUnavailableError`; every API answers it with 503 and `Retry-After`.
    """

    def authenticate_basic(self, name: str, password: str,
                           before_hashing: Callable[[], None] | None = None) -> Principal | None:
        """The user, if the password is theirs; `before_hashing` runs (and may raise) before any argon2 work."""

    def authenticate_token(self, token: str) -> Principal | None: ...

    def create_user(self, name: str, password: str, role: str, replace: bool = True) -> Principal | None: ...

    def create_token(self, name: str, label: str | None = None,
                     expires_in: float | None = None) -> IssuedToken | None: ...

    def revoke_token(self, token_or_id: str, owner: str | None = None) -> object | None: ...

    def user_exists(self, name: str) -> bool: ...


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": CHALLENGE})


class LoginLimiter:
    """Failed logins in the last `window` seconds, per source address and per user name (this process).

    Past a bound the request is refused with 429 before any password is checked: a flood of wrong
    passwords costs the server no argon2 work, and guessing one user's password gets slow from anywhere.
    """

    def __init__(self, per_source: int = 20, per_name: int = 10, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000,
                 trusted_proxies: frozenset[str] = frozenset()) -> None:
        self.per_source, self.per_name, self.window, self.clock = per_source, per_name, window, clock
        self.max_keys, self.trusted_proxies = max_keys, trusted_proxies
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def source_of(self, req: falcon.Request) -> str:
        """The client address: the peer, or behind a trusted proxy the last X-Forwarded-For hop it added."""
        peer = req.remote_addr or "-"
        if peer not in self.trusted_proxies:
            return peer
        hops = [hop.strip() for hop in (req.get_header("X-Forwarded-For") or "").split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in self.trusted_proxies:
                return hop[:64]
        return peer

    def wait(self, source: str, name: str | None) -> float:
        """Seconds before this source (and this name) may try again; 0 when it may now."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(f"source:{source}", self.per_source, now)]
            if name is not None:
                waits.append(self._wait(f"name:{name}", self.per_name, now))
        return max(waits)

    def failed(self, source: str, name: str | None) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"source:{source}", *([f"name:{name}"] if name is not None else [])):
                times = self._failures.pop(key, None) or deque()
                times.append(now)
                self._failures[key] = times
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def _wait(self, key: str, bound: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        return 0.0 if len(times) < bound else times[-bound] + self.window - now


def authenticate(auth: Authenticator, header: str | None, source: str = "-",
                 limiter: LoginLimiter | None = None) -> Principal:
    """The caller named by an Authorization header, or a 401 problem (429 after too many failed tries).

    The limiter refuses only what would cost a password hash or guess a token: a password this process
    verified before (its hash unchanged) and a valid token are accepted from a refused source too, so a
    flood of wrong passwords from a client's address does not lock out that client.
    """
    if not header:
        raise unauthorized("This endpoint needs credentials: HTTP Basic or a bearer token.")
    scheme, _, credentials = header.strip().partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    name: str | None = None
    principal: Principal | None = None
    if scheme == "basic":
        pair = _basic_pair(credentials)
        if pair is not None:
            name = pair[0][:200]
            principal = auth.authenticate_basic(*pair, before_hashing=lambda: _check_limit(limiter, source, name))
    elif scheme == "bearer" and credentials:
        principal = auth.authenticate_token(credentials)
    if principal is None:
        _check_limit(limiter, source, name)
        if limiter is not None:
            limiter.failed(source, name)
        log.info("refused credentials (scheme %s)", scheme[:16] or "-")
        raise unauthorized("The credentials are not valid.")
    return principal


def identified(req: falcon.Request, principal: Principal) -> Principal:
    """The caller, noted on the request for the access log (every API and the dashboard call this)."""
    req.env[USER_ENVIRON] = principal.name
    return principal


def _check_limit(limiter: LoginLimiter | None, source: str, name: str | None) -> None:
    wait = limiter.wait(source, name) if limiter is not None else 0.0
    if wait > 0:
        seconds = str(math.ceil(wait))
        raise Problem(429, "too-many-failed-logins", f"Too many failed logins from this address or for this user; "
                      f"try again in {seconds} s.", headers={"Retry-After": seconds})


def _basic_pair(credentials: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, colon, password = decoded.partition(":")
    if not colon or not name or not name.isprintable():
        return None
    return name, password


def authorize(principal: Principal, roles: frozenset[str], action: str) -> None:
    if principal.role not in roles:
        raise Problem(403, "forbidden", f"Role {principal.role!r} may not {action}; "
                      f"allowed roles: {', '.join(sorted(roles))}.")
