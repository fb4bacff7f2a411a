"""Users and bearer tokens, stored in PostgreSQL with argon2 password hashes.

A password change, a role change or a removal applies to the very next request in every process: each
change bumps `credentials_version` in its own statement and returns only `CONFIRM_SECONDS` after its commit,
and a process trusts what it remembers only at the version it read less than `CONFIRM_SECONDS` ago (older
knowledge costs the request one read). Tokens are looked up on every request, so a revocation or an expiry
applies at once. See docs/api.md, *Credentials*.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, cast

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from api.auth import CredentialsUnavailableError
from eventstore.connect import alive
from taskledger.offload import offloaded

log = logging.getLogger(__name__)

ROLES = ("admin", "operator", "worker", "viewer")
# How old a process's knowledge of the credential version may be; a change waits this long after its commit.
CONFIRM_SECONDS = 0.5
# How long a verified password's digest is kept (and so spares argon2) without being used again.
CACHE_SECONDS = 300.0
MAX_CACHED = 10_000
# A pooled connection not handed out within this is not waited for: a fresh connection answers sooner
# than a pool still reconnecting (with backoff) after a database restart.
POOL_WAIT_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 2  # libpq's smallest useful connect_timeout
TOKEN_PREFIX = "tl_"
TOKEN_ID = re.compile(r"[0-9a-f]{16}")

DDL = [
    """
    CREATE TABLE IF NOT EXISTS users (
        name text PRIMARY KEY,
        password_hash text NOT NULL,
        role text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS api_tokens (
        token_sha256 text PRIMARY KEY,
        user_name text NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        label text,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS expires_at timestamptz",
    """
    CREATE TABLE IF NOT EXISTS credentials_version (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version bigint NOT NULL
    )
    """,
    "INSERT INTO credentials_version (one, version) VALUES (true, 0) ON CONFLICT (one) DO NOTHING",
]
# Prefixed to every change of a password, a role or a user: the bump commits with the change, atomically.
BUMP = "WITH bump AS (UPDATE credentials_version SET version = version + 1) "

TOKEN_COLUMNS = 'left(token_sha256, 16) AS id, user_name AS "user", label, created_at, expires_at'


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: str


@dataclass(frozen=True)
class User:
    """A user as listed: never its password hash."""

    name: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class Token:
    """A bearer token's record; `id` (16 hex digits of its SHA-256) names it without revealing it."""

    id: str
    user: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class IssuedToken(Token):
    """A token just minted: its record and, this once, the secret itself."""

    token: str


def create_tables(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        for statement in DDL:
            conn.execute(statement)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Verified:
    """A password found to match `password_hash` when the credential version was `version`."""

    password_hash: str
    role: str
    version: int
    until: float


class VerifiedPasswords:
    """What spares argon2: passwords verified before, trusted only at a credential version read recently."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[tuple[str, str], Verified] = {}
        self._version, self._read_at = -1, float("-inf")
        self._lock = threading.Lock()

    def trusted(self, key: tuple[str, str]) -> Verified | None:
        """The entry, if the version it was checked at is the one read less than CONFIRM_SECONDS ago."""
        now = self.clock()
        with self._lock:
            entry, version, read_at = self._entries.get(key), self._version, self._read_at
        if entry is None or entry.version != version or now - read_at >= CONFIRM_SECONDS or entry.until <= now:
            return None
        return entry

    def remembered(self, key: tuple[str, str]) -> Verified | None:
        with self._lock:
            return self._entries.get(key)

    def read(self, version: int, sent_at: float) -> None:
        """The credential version that a read sent at `sent_at` found."""
        with self._lock:
            if sent_at > self._read_at:
                self._version, self._read_at = version, sent_at

    def remember(self, key: tuple[str, str], password_hash: str, role: str, version: int) -> None:
        now = self.clock()
        with self._lock:
            if len(self._entries) >= MAX_CACHED:
                self._entries = {k: v for k, v in self._entries.items() if v.until > now}
            if len(self._entries) < MAX_CACHED:
                self._entries[key] = Verified(password_hash, role, version, now + CACHE_SECONDS)


class PostgresAccounts:
    """Verifies credentials against the current rows; remembers verified passwords to skip argon2."""

    def __init__(self, conninfo: str, max_size: int = 4, pool: ConnectionPool | None = None) -> None:
        """With `pool` (autocommit, dict rows: the API's read pool), the accounts share it and neither open nor
        close it; without, they have a pool of their own of up to `max_size` connections."""
        self.conninfo = conninfo
        self.owns_pool = pool is None
        self.pool = pool or ConnectionPool(conninfo, min_size=1, max_size=max_size, open=False,
                                           kwargs={"row_factory": dict_row, "autocommit": True})
        # At most one connection of its own at a time (taskledger/budget.py): a flood of logins while the pool
        # is busy or reconnecting must not open a connection each.
        self._fresh = threading.BoundedSemaphore(1)
        self.hasher = PasswordHasher()
        self.verified = VerifiedPasswords()

    def open(self, timeout: float = 30.0) -> None:
        if self.owns_pool:
            self.pool.open(wait=True, timeout=timeout)

    def close(self) -> None:
        if self.owns_pool:
            self.pool.close()

    def _rows(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        """Runs one statement on a pooled connection or, if the pool has none ready at once (it is reconnecting
        after a restart) or the connection fails, on a fresh one; if that fails too, the database is away."""
        try:
            with self._pooled() as conn:
                return _fetch(conn, query, params)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # PoolTimeout included
            log.warning("account database: pooled connection failed (%s); trying a fresh one", type(exc).__name__)
        if not self._fresh.acquire(timeout=POOL_WAIT_SECONDS):
            raise CredentialsUnavailableError("the account database is busy: every connection for credentials is "
                                              "in use")
        try:
            with psycopg.connect(self.conninfo, autocommit=True, row_factory=dict_row,
                                 connect_timeout=CONNECT_TIMEOUT_SECONDS) as fresh:
                return _fetch(fresh, query, params)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise CredentialsUnavailableError(f"the account database did not answer: {exc}") from exc
        finally:
            self._fresh.release()

    @contextmanager
    def _pooled(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection still open: ones the server closed (a restart) are dropped, never sent to."""
        for _ in range(self.pool.max_size):
            conn = self.pool.getconn(timeout=POOL_WAIT_SECONDS)
            if alive(conn):
                break
            conn.close()
            self.pool.putconn(conn)  # the pool sees it closed and opens another in its place
        else:
            conn = self.pool.getconn(timeout=POOL_WAIT_SECONDS)
        try:
            yield conn
        finally:
            self.pool.putconn(conn)

    def _one(self, query: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self._rows(query, params)
        return rows[0] if rows else None

    @cached_property
    def _dummy_hash(self) -> str:
        """What an unknown name's password is verified against, so that it costs what a known name costs."""
        return self.hasher.hash(secrets.token_urlsafe(16))

    def authenticate_basic(self, name: str, password: str,
                           before_hashing: Callable[[], None] | None = None) -> Principal | None:
        key = (name, hashlib.sha256(password.encode()).hexdigest())
        if (known := self.verified.trusted(key)) is not None:
            return Principal(name, known.role)
        sent_at = self.verified.clock()
        row = self._one("SELECT v.version, u.password_hash, u.role FROM credentials_version v "
                        "LEFT JOIN users u ON u.name = %s", (name,))
        if row is None:
            raise CredentialsUnavailableError("the account tables are not migrated: run `taskledger migrate`")
        self.verified.read(row["version"], sent_at)
        stored = row["password_hash"]
        remembered = self.verified.remembered(key)
        unchanged = remembered is not None and remembered.password_hash == stored  # argon2 said yes before
        if not unchanged:
            if before_hashing is not None:
                before_hashing()  # the login limiter: refuses here, before the expensive part
            if not self._verify(stored, password):
                return None
        self.verified.remember(key, stored, row["role"], row["version"])
        return Principal(name, row["role"])

    def _verify(self, stored: str | None, password: str) -> bool:
        """argon2 against the stored hash, or (an unknown name) against a dummy one, so both cost the same."""
        try:
            offloaded(self.hasher.verify, stored or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def authenticate_token(self, token: str) -> Principal | None:
        row = self._one(
            "SELECT u.name, u.role FROM api_tokens t JOIN users u ON u.name = t.user_name "
            "WHERE t.token_sha256 = %s AND (t.expires_at IS NULL OR t.expires_at > now())", (token_sha256(token),))
        return None if row is None else Principal(row["name"], row["role"])

    def create_user(self, name: str, password: str, role: str, replace: bool = True) -> Principal | None:
        """Creates a user, or resets its password and role (applied by every process once this returns);
        with `replace=False` an existing name is None instead."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        # Without `replace`, the one row a conflict still answers is this very insert, retried after its
        # answer was lost (the salted hash is unique to it).
        conflict = ("DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role" if replace else
                    "DO UPDATE SET role = EXCLUDED.role WHERE users.password_hash = EXCLUDED.password_hash")
        row = self._one(BUMP + f"INSERT INTO users (name, password_hash, role) VALUES (%s, %s, %s) ON CONFLICT "
                        f"(name) {conflict} RETURNING name, role, xmax::text <> '0' AS replaced",
                        (name, offloaded(self.hasher.hash, password), role))
        if row is None:
            return None
        if row["replaced"]:
            _outlast_what_processes_remember()
        return Principal(row["name"], row["role"])

    def user_exists(self, name: str) -> bool:
        return self._one("SELECT 1 AS one FROM users WHERE name = %s", (name,)) is not None

    def list_users(self) -> list[User]:
        return [User(**row) for row in self._rows("SELECT name, role, created_at FROM users ORDER BY name")]

    def remove_user(self, name: str) -> bool:
        """Removes a user and its tokens (refused by every process once this returns); False if there was none."""
        removed = self._one(BUMP + "DELETE FROM users WHERE name = %s RETURNING name", (name,)) is not None
        if removed:
            _outlast_what_processes_remember()
        return removed

    def create_token(self, name: str, label: str | None = None,
                     expires_in: float | None = None) -> IssuedToken | None:
        """Mints a token for a user (valid `expires_in` seconds, or until revoked); None if there is no such user."""
        if expires_in is not None and not expires_in > 0:
            raise ValueError("expires_in must be a number of seconds more than 0")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        # A retry after a lost answer inserts the same token again: the conflict keeps it one row.
        row = self._one(
            "INSERT INTO api_tokens (token_sha256, user_name, label, expires_at) "
            "SELECT %s, name, %s, now() + make_interval(secs => %s::double precision) FROM users WHERE name = %s "
            f"ON CONFLICT (token_sha256) DO UPDATE SET label = EXCLUDED.label RETURNING {TOKEN_COLUMNS}",
            (token_sha256(token), label, expires_in, name))
        return None if row is None else IssuedToken(**row, token=token)

    def list_tokens(self, user: str | None = None) -> list[Token]:
        rows = self._rows(f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE %(user)s::text IS NULL "
                          "OR user_name = %(user)s ORDER BY user_name, created_at", {"user": user})
        return [Token(**row) for row in rows]

    def revoke_token(self, token_or_id: str, owner: str | None = None) -> Token | None:
        """Deletes a token named by itself or by its id (only `owner`'s, if given); None if there is none."""
        if token_or_id.startswith(TOKEN_PREFIX):
            match, value = "token_sha256 = %(value)s", token_sha256(token_or_id)
        elif TOKEN_ID.fullmatch(token_or_id):
            match, value = "left(token_sha256, 16) = %(value)s", token_or_id
        else:
            return None
        row = self._one(f"DELETE FROM api_tokens WHERE {match} AND (%(owner)s::text IS NULL OR user_name = %(owner)s) "
                        f"RETURNING {TOKEN_COLUMNS}", {"value": value, "owner": owner})
        return None if row is None else Token(**row)


def _outlast_what_processes_remember() -> None:
    """Waits until no process can still trust a credential version read before the change just committed."""
    time.sleep(CONFIRM_SECONDS * 1.1)


def _fetch(conn: psycopg.Connection[Any], query: str, params: Any) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    return cast(list[dict[str, Any]], cursor.fetchall() if cursor.description else [])
