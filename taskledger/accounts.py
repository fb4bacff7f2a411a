"""Users and bearer tokens, stored in PostgreSQL with argon2 password hashes."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

ROLES = ("admin", "operator", "worker", "viewer")
CACHE_SECONDS = 60.0

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
]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: str


def create_tables(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        for statement in DDL:
            conn.execute(statement)


class PostgresAccounts:
    """Verifies credentials; caches successful password checks briefly (argon2 is slow on purpose)."""

    def __init__(self, conninfo: str, max_size: int = 4) -> None:
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=max_size, open=False,
                                   kwargs={"row_factory": dict_row, "autocommit": True})
        self.hasher = PasswordHasher()
        self._cache: dict[tuple[str, str], tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def open(self) -> None:
        self.pool.open(wait=True, timeout=30)

    def close(self) -> None:
        self.pool.close()

    def _one(self, query: str, params: Any) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            return cast(dict[str, Any] | None, conn.execute(query, params).fetchone())

    def authenticate_basic(self, name: str, password: str) -> Principal | None:
        key = (name, hashlib.sha256(password.encode()).hexdigest())
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[1] > now:
            return cached[0]
        row = self._one("SELECT name, password_hash, role FROM users WHERE name = %s", (name,))
        if row is None:
            return None
        try:
            self.hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        principal = Principal(row["name"], row["role"])
        with self._lock:
            self._cache[key] = (principal, now + CACHE_SECONDS)
        return principal

    def authenticate_token(self, token: str) -> Principal | None:
        row = self._one(
            "SELECT u.name, u.role FROM api_tokens t JOIN users u ON u.name = t.user_name "
            "WHERE t.token_sha256 = %s", (hashlib.sha256(token.encode()).hexdigest(),))
        return None if row is None else Principal(row["name"], row["role"])

    def create_user(self, name: str, password: str, role: str) -> Principal:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        self._one("INSERT INTO users (name, password_hash, role) VALUES (%s, %s, %s) "
                  "ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                  "role = EXCLUDED.role RETURNING name", (name, self.hasher.hash(password), role))
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != name}
        return Principal(name, role)

    def user_exists(self, name: str) -> bool:
        return self._one("SELECT 1 AS one FROM users WHERE name = %s", (name,)) is not None

    def create_token(self, name: str, label: str | None = None) -> str:
        token = "tl_" + secrets.token_urlsafe(32)
        self._one("INSERT INTO api_tokens (token_sha256, user_name, label) VALUES (%s, %s, %s) "
                  "RETURNING user_name", (hashlib.sha256(token.encode()).hexdigest(), name, label))
        return token
