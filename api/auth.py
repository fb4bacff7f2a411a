"""Who is calling: HTTP Basic or bearer credentials checked against an account store, and roles."""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime
from typing import Protocol

from eventsourcing.persistence import OperationalError

from api.problems import Problem

log = logging.getLogger(__name__)

ADMIN = frozenset({"admin"})
CONTROL = frozenset({"admin", "operator"})
WORK = frozenset({"admin", "worker"})
READ = frozenset({"admin", "operator", "worker", "viewer"})
TOKEN_USERS = READ
CHALLENGE = 'Basic realm="taskledger", Bearer'


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

    def authenticate_basic(self, name: str, password: str) -> Principal | None: ...

    def authenticate_token(self, token: str) -> Principal | None: ...

    def create_user(self, name: str, password: str, role: str, replace: bool = True) -> Principal | None: ...

    def create_token(self, name: str, label: str | None = None,
                     expires_in: float | None = None) -> IssuedToken | None: ...

    def revoke_token(self, token_or_id: str, owner: str | None = None) -> object | None: ...

    def user_exists(self, name: str) -> bool: ...


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": CHALLENGE})


def authenticate(auth: Authenticator, header: str | None) -> Principal:
    """The caller named by an Authorization header, or a 401 problem."""
    if not header:
        raise unauthorized("This endpoint needs credentials: HTTP Basic or a bearer token.")
    scheme, _, credentials = header.strip().partition(" ")
    principal: Principal | None = None
    if scheme.lower() == "basic":
        principal = _basic(auth, credentials.strip())
    elif scheme.lower() == "bearer" and credentials.strip():
        principal = auth.authenticate_token(credentials.strip())
    if principal is None:
        log.info("refused credentials (scheme %s)", scheme[:16].lower() or "-")
        raise unauthorized("The credentials are not valid.")
    return principal


def authorize(principal: Principal, roles: frozenset[str], action: str) -> None:
    if principal.role not in roles:
        raise Problem(403, "forbidden", f"Role {principal.role!r} may not {action}; "
                      f"allowed roles: {', '.join(sorted(roles))}.")


def _basic(auth: Authenticator, credentials: str) -> Principal | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, colon, password = decoded.partition(":")
    if not colon or not name or not name.isprintable():
        return None
    return auth.authenticate_basic(name, password)
