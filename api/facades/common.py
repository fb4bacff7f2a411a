"""The facade kit: what every facade shares, declared once; each facade keeps only its wire shapes and resources.

A facade declares itself with a `Wire`: its name (recorded on its events), the paths it owns, its roles, its
auth challenge and its error body. `mount` registers one error handler per exception family; a request under
a facade's paths gets every error in that facade's format (falcon's own 404 and 405 included), any other
request the native API's. Resources derive from `FacadeResource`, which gives `who(req)` (authentication and
role), `read(req)` (that, then the `Ledger-Min-Position` wait) and `written(resp, w)` (the projections show the
write, and `Ledger-Position` names it), the same way on every facade.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import falcon

from api.auth import CHALLENGE, CONTROL, READ, Authenticator, LoginLimiter, Principal, authenticate, identified
from api.parsing import wait_for_position
from api.problems import Problem
from api.unavailable import UNAVAILABLE, unavailable
from ledger import errors as le
from ledger.application import TaskLedger
from ledger.commands import Caller, Written
from projections.queries import InvalidCursorError, TaskFilter, TaskView

log = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
SCAN_CHUNK = 500


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
    """An answer already in a facade's wire format (pages, empty answers), written as is."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"

    def __str__(self) -> str:
        return f"{self.status} {self.body!r}"[:200]


class Refusal(Exception):
    """A refusal in a facade's terms: status, message, headers, and what else its error body names.

    The facade's `Wire.render` turns it into the body; a refusal is an expected outcome and is not logged.
    """

    def __init__(self, status: int, message: str | None, headers: Mapping[str, str] | None = None,
                 **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail


class Wire:
    """How one facade speaks; a facade subclasses it and overrides what is its own."""

    name: ClassVar[str]
    paths: ClassVar[re.Pattern[str]]
    readers: ClassVar[frozenset[str]] = READ
    controllers: ClassVar[frozenset[str]] = CONTROL
    challenge: ClassVar[str] = CHALLENGE
    # Status of each ledger refusal, found along the error's class hierarchy; anything else is a 400.
    ledger_status: ClassVar[Mapping[type[le.LedgerError], int]] = {}

    def render(self, req: falcon.Request, refusal: Refusal) -> FacadeReply:
        """The facade's error body for a refusal."""
        raise NotImplementedError

    def unauthenticated(self, req: falcon.Request) -> str:
        return "This endpoint needs credentials: HTTP Basic or a bearer token."

    def forbidden(self, role: str, roles: frozenset[str], action: str) -> str:
        return f"Role {role!r} may not {action}; allowed roles: {', '.join(sorted(roles))}."

    def not_allowed(self, req: falcon.Request, allowed: tuple[str, ...]) -> str:
        return f"{req.method} is not allowed here; allowed: {', '.join(allowed)}."

    def unknown_path(self, req: falcon.Request) -> Refusal:
        return Refusal(404, f"No resource at {req.path}.")

    def ledger_refusal(self, req: falcon.Request, error: le.LedgerError) -> Refusal:
        """A ledger refusal no resource phrased itself; facades override to say it in their terms."""
        return Refusal(status_along(self.ledger_status, error, 400), str(error))

    def http_refusal(self, req: falcon.Request, error: falcon.HTTPError) -> Refusal:
        """An HTTP error of the shared plumbing (size, media type, JSON, lag, 429, 503), in the facade's terms.

        None of the four servers answers 422: a body the ledger's rules refuse is a 400 there."""
        headers = {k: v for k, v in dict(error.headers or {}).items() if k in ("Retry-After", "Allow")}
        status = 400 if error.status_code == 422 else error.status_code
        return Refusal(status, error.description or error.title, headers)

    def cursor_refusal(self, req: falcon.Request, error: InvalidCursorError) -> Refusal:
        return Refusal(400, f"Invalid page: {error}")

    def internal(self, req: falcon.Request) -> Refusal:
        request_id = getattr(req.context, "request_id", "-")
        return Refusal(500, f"Internal error; the server log has the details (request id {request_id})")


def status_along(table: Mapping[type[le.LedgerError], int], error: le.LedgerError, default: int) -> int:
    """The status of the most specific class of `error` the table names."""
    return next((table[cls] for cls in type(error).__mro__ if cls in table), default)  # type: ignore[index]


class FacadeResource:
    """Base of every facade resource: auth, read-your-writes, HEAD with GET, OPTIONS, and the facade's 405."""

    wire: ClassVar[Wire]

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "on_get") and "on_head" not in vars(cls):
            cls.on_head = cls.on_get  # type: ignore[attr-defined]  # as JAX-RS and Spring serve HEAD

    def on_options(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        resp.set_header("Allow", ", ".join((*served(self), "OPTIONS")))

    def who(self, req: falcon.Request, roles: frozenset[str] | None = None, action: str = "do this") -> Principal:
        """The authenticated caller, if their role may do the action; else the facade's 401 or 403."""
        wire, limiter = self.wire, self.deps.limiter
        source = limiter.source_of(req) if limiter is not None else "-"
        try:
            principal = identified(req, authenticate(self.deps.auth, req.get_header("Authorization"), source, limiter))
        except Problem as refusal:
            if refusal.status_code == 429:
                raise  # too many failed logins: the error handler writes it in the facade's format
            raise Refusal(401, wire.unauthenticated(req), {"WWW-Authenticate": wire.challenge}) from None
        allowed = wire.readers if roles is None else roles
        if principal.role not in allowed:
            raise Refusal(403, wire.forbidden(principal.role, allowed, action))
        return principal

    def read(self, req: falcon.Request, action: str = "read tasks") -> Principal:
        """A reader, once the projections show the write the client names in `Ledger-Min-Position` (if any)."""
        principal = self.who(req, self.wire.readers, action)
        self.min_position(req)
        return principal

    def min_position(self, req: falcon.Request) -> None:
        """Read-your-writes: waits, bounded, until the projections reached the client's `Ledger-Min-Position`."""
        wait_for_position(req, self.deps.view, self.deps.min_position_wait)

    def control(self, req: falcon.Request, action: str) -> Principal:
        return self.who(req, self.wire.controllers, action)

    def caller(self, req: falcon.Request, who: Principal) -> Caller:
        return Caller(who.name, getattr(req.context, "request_id", "-"), self.wire.name)

    def written(self, resp: falcon.Response | None, written: Written | int) -> None:
        """A write answers once the projections show it, with its log position as the native API gives it."""
        position = written if isinstance(written, int) else written.position
        if not position:
            return
        self.deps.view.wait_for(position, self.deps.min_position_wait)
        if resp is not None:
            resp.set_header("Ledger-Position", str(position))

    def caught_up(self) -> None:
        """Lets the projections catch up with every write so far (a decision that reads the view needs it)."""
        self.deps.view.wait_for(self.deps.ledger.head_position(), self.deps.min_position_wait)


def served(resource: object) -> tuple[str, ...]:
    """The methods a resource serves, in one fixed order (its Allow header)."""
    return tuple(m for m in METHODS if callable(getattr(resource, f"on_{m.lower()}", None)))


def scan(view: TaskView, flt: TaskFilter, *, sort: str = "created_at", descending: bool = False,
         cursor: str | None = None, limit: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` tasks (None: all) after the cursor, read in chunks, and the cursor after the last one
    (None at the end)."""
    docs: list[dict[str, Any]] = []
    while limit is None or len(docs) < limit:
        want = SCAN_CHUNK if limit is None else min(SCAN_CHUNK, limit - len(docs))
        page = view.list(flt, sort=sort, descending=descending, cursor=cursor, limit=want, count=False)
        docs += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return docs, cursor


# ------------------------------------------------------------------ errors
def write_reply(req: falcon.Request, resp: falcon.Response, ex: FacadeReply, params: Any = None) -> None:
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


Native = Callable[[falcon.Request, falcon.Response, Any, Any], None]


class Errors:
    """The error handlers of every exception family: the facade's format under its paths, else the native one."""

    def __init__(self, wires: tuple[Wire, ...]) -> None:
        self.wires = wires

    def wire_of(self, req: falcon.Request) -> Wire | None:
        return next((wire for wire in self.wires if wire.paths.match(req.path)), None)

    def register(self, app: falcon.App, natives: Mapping[type[Exception], Native | None]) -> None:
        """One handler per family; `natives` are the native API's handlers (None: falcon's own)."""
        for family, native in natives.items():
            app.add_error_handler(family, self._handler(native))
        app.add_error_handler(FacadeReply, write_reply)
        app.add_error_handler(Refusal, self._handler(None))

    def _handler(self, native: Native | None) -> Native:
        def handle(req: falcon.Request, resp: falcon.Response, ex: Any, params: Any) -> None:
            wire = self.wire_of(req)
            if wire is None:
                if native is None:
                    raise ex  # falcon writes its HTTP errors with the native serializer
                native(req, resp, ex, params)
                return
            write_reply(req, resp, wire.render(req, self.refusal(wire, req, ex)))

        return handle

    def refusal(self, wire: Wire, req: falcon.Request, error: Exception) -> Refusal:
        """Any error a facade request raised, as a refusal in the facade's terms (the unexpected logged)."""
        if isinstance(error, Refusal):
            return error
        if isinstance(error, UNAVAILABLE):
            return wire.http_refusal(req, unavailable(error))  # 503 + Retry-After
        if isinstance(error, falcon.HTTPMethodNotAllowed):
            given = {m.strip() for m in str(dict(error.headers or {}).get("Allow", "")).split(",")}
            allowed = tuple(m for m in METHODS if m in given)
            return Refusal(405, wire.not_allowed(req, allowed), {"Allow": ", ".join(allowed)})
        if isinstance(error, falcon.HTTPNotFound) and req.uri_template is None:
            return wire.unknown_path(req)  # no route: falcon's own 404
        if isinstance(error, falcon.HTTPError):
            return wire.http_refusal(req, error)
        if isinstance(error, le.LedgerError):
            return wire.ledger_refusal(req, error)
        if isinstance(error, InvalidCursorError):
            return wire.cursor_refusal(req, error)
        log.error("unexpected error answering %s %s", req.method, req.path, exc_info=error)
        return wire.internal(req)

