"""Who is looking at the dashboard: a session cookie from the login page, or HTTP Basic; CSRF on every form.

- **The session** is a bearer token of the account store (`Authenticator.create_token`, label `dashboard`,
  valid 12 h), kept in the cookie `taskledger_session` (`HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure`
  when the request came over HTTPS). So a password change or removal ends it as it ends any token, logout
  revokes it, and nothing of the session lives in a process.
- **CSRF:** every form carries `csrf`, an HMAC of the credential (the session token, or the Basic
  Authorization header) under a fixed label; a POST whose `csrf` does not match is refused (403), and so is
  a POST whose `Origin` (or `Referer`) names another host. The API under /ledger/v1 reads no cookie, so it
  is out of reach of cross-site requests either way.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

import falcon

from api.auth import Authenticator, LoginLimiter, Principal, authenticate, identified

COOKIE = "taskledger_session"
SESSION_SECONDS = 12 * 3600
CSRF_LABEL = b"taskledger-dashboard-csrf"


@dataclass(frozen=True)
class Viewer:
    """The signed-in user and what their forms must carry."""

    principal: Principal
    csrf: str
    via_session: bool

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def can_act(self) -> bool:
        return self.principal.role in ("admin", "operator")


class NotSignedIn(Exception):  # noqa: N818 - a redirect to the login page, not a fault
    """No valid session or Basic credentials: the page answers with the login page."""


class Refused(Exception):  # noqa: N818 - an HTML 403 page
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def csrf_of(credential: str) -> str:
    return hmac.new(credential.encode(), CSRF_LABEL, hashlib.sha256).hexdigest()


def viewer(req: falcon.Request, auth: Authenticator, limiter: LoginLimiter | None) -> Viewer:
    """The viewer of a request (session cookie first, then Basic), or NotSignedIn."""
    token = req.get_cookie_values(COOKIE)
    if token:
        principal = auth.authenticate_token(token[0])
        if principal is not None:
            return Viewer(identified(req, principal), csrf_of(token[0]), True)
    header = req.get_header("Authorization")
    if header:
        source = limiter.source_of(req) if limiter is not None else "-"
        try:
            principal = authenticate(auth, header, source, limiter)
        except falcon.HTTPError as refused:
            if refused.status_code == 429:
                raise Refused(429, "Too many failed logins; try again in a minute.") from None
            raise NotSignedIn() from None
        return Viewer(identified(req, principal), csrf_of(header), False)
    raise NotSignedIn()


def check_form(req: falcon.Request, who: Viewer | None, form: dict[str, str]) -> None:
    """Refuses a cross-site POST: another Origin, or (signed in) a missing or wrong `csrf` field."""
    origin = req.get_header("Origin") or req.get_header("Referer")
    if origin and origin != "null":
        host = urlsplit(origin).netloc
        if host and host != (req.get_header("X-Forwarded-Host") or req.netloc):
            raise Refused(403, "This form was sent from another site; it is refused.")
    if who is not None and not hmac.compare_digest(form.get("csrf", ""), who.csrf):
        raise Refused(403, "The form's CSRF token is missing or stale; reload the page and try again.")


def set_session(req: falcon.Request, resp: falcon.Response, token: str) -> None:
    secure = req.scheme == "https" or req.get_header("X-Forwarded-Proto") == "https"
    resp.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path="/", http_only=True, secure=secure,
                    same_site="Strict")


def clear_session(resp: falcon.Response) -> None:
    resp.unset_cookie(COOKIE, path="/", same_site="Strict")
