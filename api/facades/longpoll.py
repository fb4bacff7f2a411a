"""A bound on concurrent long polls, per user and in all: a poll past the bound answers at once.

A long poll only promises to answer *at the latest* after its wait, so answering the current state
early is always correct; bounding them keeps a few clients (or one user) from holding every
connection of a worker, and from multiplying the database reads that a waiting poll repeats.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

PER_USER = 8
TOTAL = 128


class LongPolls:
    """Counts the polls waiting now; `slot(user)` says whether one more may wait."""

    def __init__(self, per_user: int = PER_USER, total: int = TOTAL) -> None:
        self.per_user, self.total = per_user, total
        self._by_user: dict[str, int] = {}
        self._all = 0
        self._lock = threading.Lock()
        self.refused = 0

    @contextmanager
    def slot(self, user: str) -> Iterator[bool]:
        with self._lock:
            granted = self._all < self.total and self._by_user.get(user, 0) < self.per_user
            if granted:
                self._all += 1
                self._by_user[user] = self._by_user.get(user, 0) + 1
            else:
                self.refused += 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._all -= 1
                    left = self._by_user[user] - 1
                    if left:
                        self._by_user[user] = left
                    else:
                        del self._by_user[user]


def client_gone(environ: Mapping[str, Any]) -> Callable[[], bool]:
    """Whether the client of this request closed its connection: a waiting poll then ends (and frees its slot)
    at its next look instead of holding a greenlet for the rest of its wait. Under gunicorn only (its socket
    is in the environ); elsewhere the poll never counts as abandoned."""
    sock = environ.get("gunicorn.socket") or environ.get("gunicorn.sock")
    if not isinstance(sock, socket.socket):
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            # Readable with nothing to read is the peer's FIN; bytes would be a pipelined next request.
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # reset, or already closed
            return True

    return gone
