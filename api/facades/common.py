"""Plumbing every facade shares: raw replies in the facade's own format, auth, callers, own-write waits."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import falcon

from api.auth import Authenticator, LoginLimiter, Principal, authenticate
from api.problems import Problem
from api.unavailable import is_unavailable, unavailable
from ledger.application import TaskLedger
from ledger.commands import Caller
from projections.queries import TaskView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FacadeDeps:
    """What a facade's resources are built from."""

    ledger: TaskLedger
    view: TaskView
    auth: Authenticator
    clock: Callable[[], datetime]
    min_position_wait: float
    limiter: LoginLimiter | None = None


@dataclass
class FacadeReply(Exception):
    """An answer in a facade's own wire format (errors included), written as is."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"

    def __str__(self) -> str:
        return f"{self.status} {self.body!r}"[:200]


def write_reply(req: falcon.Request, resp: falcon.Response, ex: FacadeReply, params: Any) -> None:
    resp.status = ex.status
    for name, value in ex.headers.items():
        resp.set_header(name, value)
    if ex.body is None:
        return
    if isinstance(ex.body, (bytes, str)):
        resp.data = ex.body.encode() if isinstance(ex.body, str) else ex.body
        resp.content_type = ex.content_type or "text/plain"
    else:
        resp.media = ex.body
        resp.content_type = ex.content_type or "application/json"


ErrorMapper = Callable[[falcon.Request, Exception], FacadeReply]


def guarded(mapper: ErrorMapper) -> Callable[[type], type]:
    """Class decorator: every responder's errors leave in the facade's format, never problem+json."""

    def wrap(cls: type) -> type:
        for name in [n for n in vars(cls) if n.startswith("on_")]:
            setattr(cls, name, _guard(getattr(cls, name), mapper))
        return cls

    return wrap


def _guard(responder: Callable[..., None], mapper: ErrorMapper) -> Callable[..., None]:
    @functools.wraps(responder)
    def guarded_responder(self: Any, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        try:
            responder(self, req, resp, **params)
        except FacadeReply:
            raise
        except Exception as error:  # noqa: BLE001 -- translated into the facade's own error format
            if is_unavailable(error):
                raise mapper(req, unavailable(error)) from error  # 503 + Retry-After, in the facade's format
            if not isinstance(error, (falcon.HTTPError, Problem)) and not _expected(error):
                log.exception("unexpected error answering %s %s", req.method, req.path)
            raise mapper(req, error) from error

    return guarded_responder


def _expected(error: Exception) -> bool:
    from ledger.errors import LedgerError

    return isinstance(error, (LedgerError, ValueError, KeyError))


def principal(deps: FacadeDeps, req: falcon.Request) -> Principal | None:
    """The caller named by Basic or bearer credentials, or None (each facade answers its own 401).

    Too many failed logins stay a 429 problem, which the facade's error mapper writes in its format.
    """
    limiter = deps.limiter
    source = limiter.source_of(req) if limiter is not None else "-"
    try:
        return authenticate(deps.auth, req.get_header("Authorization"), source, limiter)
    except Problem as refusal:
        if refusal.status_code == 429:
            raise
        return None


def caller(req: falcon.Request, who: Principal, facade: str) -> Caller:
    return Caller(who.name, getattr(req.context, "request_id", "-"), facade)


def wait_own_write(deps: FacadeDeps, position: int) -> None:
    """Facade writes answer only once the projections show them, so a create-then-read sees its task."""
    deps.view.wait_for(position, deps.min_position_wait)
