"""The dashboard's pages: server-rendered HTML over the projections (lists, details) and the event store
(timelines, time travel); operator actions issue the same domain commands as the API, with facade `dashboard`.

Every page answers HTML, errors included: a page never shows a stack trace or a credential, a refused
action says why, and an unexpected error names only its request id (the log has the rest).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import falcon
from jinja2 import Environment, FileSystemLoader, select_autoescape
from marshmallow import Schema, ValidationError

from api import schemas as s
from api.auth import Authenticator, CredentialsUnavailableError, LoginLimiter
from api.problems import field_errors
from api.unavailable import UNAVAILABLE
from api.representations import task_doc
from api.resources.tasks import EXACT_TOTAL, task_filter
from api.ui.session import (
    COOKIE,
    SESSION_SECONDS,
    NotSignedIn,
    Refused,
    Viewer,
    check_form,
    clear_session,
    set_session,
    viewer,
)
from ledger import commands as c
from ledger.application import TaskLedger
from ledger.errors import LedgerError, TaskDroppedError, TaskNotFoundError
from ledger.state import STATES
from projections.queries import TaskFilter, TaskView

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
FACADE = "dashboard"
PAGE_SIZE = 50
SAMPLE_BOUND = 1000  # with a label or substring filter, the badges count the first this many matches in all
STATE_COUNT_BOUND = 200  # the badges count each state up to this many tasks ("200+" beyond)
TIMELINE_LIMIT = 500  # the newest events a detail page shows (the API pages through all of them)
OUTPUT_BYTES = 64 * 1024  # of each output buffer, shown on the detail page
ACTIONS = ("pause", "resume", "cancel", "abort", "drop")
AWAY: tuple[type[Exception], ...] = (*UNAVAILABLE, CredentialsUnavailableError)  # the database does not answer
STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class UiDeps:
    ledger: TaskLedger
    view: TaskView
    auth: Authenticator
    limiter: LoginLimiter | None
    base: str  # the native API's base path, for links to the JSON of what a page shows


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["qs"] = lambda params: urlencode(params, doseq=True)  # a repeated parameter stays repeated
    env.filters["json"] = lambda value, indent=None: json.dumps(value, indent=indent, default=str,
                                                                ensure_ascii=False)
    env.globals["STATES"] = STATES
    return env


def _when(value: Any) -> str:
    """`2026-12-03 11:52:07` in UTC from an ISO-8601 string (or '—')."""
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value)


class Pages:
    """Rendering, the viewer of each request, and the HTML answers of every failure."""

    def __init__(self, deps: UiDeps) -> None:
        self.deps, self.env = deps, environment()

    def render(self, req: falcon.Request, resp: falcon.Response, template: str, status: int = 200,
               who: Viewer | None = None, **context: Any) -> None:
        resp.status = falcon.code_to_http_status(status)
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-store")
        resp.set_header("X-Frame-Options", "DENY")
        resp.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        resp.text = self.env.get_template(template).render(who=who, request_id=req.context.get("request_id"),
                                                          path=req.path, **context)

    def viewer(self, req: falcon.Request) -> Viewer:
        return viewer(req, self.deps.auth, self.deps.limiter)


Responder = Callable[..., None]


def page(method: Responder) -> Responder:
    """Turns every failure of a responder into its HTML answer (the API's JSON handlers never see it)."""
    @functools.wraps(method)
    def wrapped(self: Any, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        pages: Pages = self.pages
        try:
            method(self, req, resp, **params)
        except NotSignedIn:
            if req.method == "GET":
                target = req.relative_uri if req.path.startswith("/ui") else "/ui/tasks"
                raise falcon.HTTPSeeOther(f"/ui/login?{urlencode({'next': target})}") from None
            pages.render(req, resp, "error.html", 401, title="Not signed in",
                         message="Sign in first: your session ended or was never started.")
        except Refused as refused:
            pages.render(req, resp, "error.html", refused.status, title="Refused", message=str(refused))
        except (TaskNotFoundError, TaskDroppedError) as missing:
            pages.render(req, resp, "error.html", 404 if isinstance(missing, TaskNotFoundError) else 410,
                         title="No such task", message=str(missing))
        except LedgerError as refused:
            pages.render(req, resp, "error.html", 409, title="Refused by the ledger", message=str(refused))
        except AWAY as away:
            log.warning("dashboard: database unavailable (%s)", away)
            resp.set_header("Retry-After", "1")
            pages.render(req, resp, "error.html", 503, title="Database unavailable",
                         message="The database does not answer right now; try again in a moment.")
        except falcon.HTTPStatus:
            raise  # the redirects
        except falcon.HTTPError as refused:  # a bad parameter (`as_of=abc`), an unknown action: HTML too
            pages.render(req, resp, "error.html", refused.status_code, who=None, title=refused.title or "Refused",
                         message=refused.description or "This request cannot be answered.")
        except Exception:
            log.exception("dashboard page failed (request %s)", req.context.get("request_id"))
            pages.render(req, resp, "error.html", 500, title="Internal error",
                         message="Something went wrong on our side; the log has the details under this request id.")
    return wrapped


class Home:
    """`/` and `/ui`: to the task list."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther("/ui/tasks")


class Static:
    """`/ui/static/{name}`: the dashboard's own CSS and JavaScript (no CDN, no build step)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in STATIC:
            raise falcon.HTTPNotFound()
        resp.content_type = STATIC[name]
        resp.set_header("Cache-Control", "public, max-age=300")
        resp.data = (HERE / "static" / name).read_bytes()


class Login:
    """`/ui/login`: a form; a good password starts a session (a 12-hour token in an HttpOnly cookie)."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.render(req, resp, "login.html", next=_next(req.get_param("next")))

    @page
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = _form(req)
        check_form(req, None, form)
        name, password, target = form.get("user", ""), form.get("password", ""), _next(form.get("next"))
        deps = self.pages.deps
        source = deps.limiter.source_of(req) if deps.limiter is not None else "-"
        wait = deps.limiter.wait(source, name) if deps.limiter is not None else 0.0
        if wait > 0:
            raise Refused(429, f"Too many failed logins; try again in {int(wait) + 1} s.")
        principal = deps.auth.authenticate_basic(name, password) if name and password else None
        if principal is None:
            if deps.limiter is not None:
                deps.limiter.failed(source, name or None)
            self.pages.render(req, resp, "login.html", 401, next=target, user=name,
                              error="That user name and password do not match.")
            return
        issued = deps.auth.create_token(principal.name, "dashboard", SESSION_SECONDS)
        if issued is None:
            raise Refused(401, "The account went away while signing in.")
        set_session(req, resp, issued.token)
        raise falcon.HTTPSeeOther(target)


class Logout:
    """`/ui/logout` (POST): revokes the session's token and clears the cookie."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.pages.viewer(req)
        check_form(req, who, _form(req))
        for token in req.get_cookie_values(COOKIE) or []:
            self.pages.deps.auth.revoke_token(token, owner=who.name)
        clear_session(resp)
        raise falcon.HTTPSeeOther("/ui/login")


class TaskList:
    """`/ui/tasks`: the native list's filters as a form, sortable columns, cursor paging, counts per state;
    `/ui/tasks/rows` answers just the rows when the log moved past `since` (the page's live refresh)."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.pages.viewer(req)
        query, errors = _list_query(req)
        context = self._listing(query) if not errors else {
            "items": [], "total": 0, "counts": {}, "count_bound": STATE_COUNT_BOUND, "sort": "-created_at",
            "head": 0, "next_cursor": None}
        self.pages.render(req, resp, "tasks.html", 400 if errors else 200, who, errors=errors,
                          params=_params(req), query=query, **context)

    @page
    def on_get_rows(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.viewer(req)
        since = req.get_param_as_int("since", min_value=0) or 0
        head = self.pages.deps.view.head()
        if head <= since:
            resp.status = falcon.HTTP_204
            return
        query, errors = _list_query(req, ignore=("since",))
        if errors:
            raise Refused(400, "; ".join(f"{e['field']}: {e['rule']}" for e in errors))
        self.pages.render(req, resp, "_rows.html", params=_params(req, drop=("since",)), query=query,
                          **self._listing(query))
        resp.set_header("X-Ledger-Head", str(head))

    def _listing(self, query: dict[str, Any]) -> dict[str, Any]:
        view = self.pages.deps.view
        head = view.head()
        sort = query.get("sort", "-created_at")
        flt = task_filter(query)
        listed = view.list(flt, sort.lstrip("-"), sort.startswith("-"), query.get("cursor"),
                           query.get("limit", PAGE_SIZE), exact_up_to=EXACT_TOTAL)
        others = _without_states(flt)
        if others.labels or others.label_keys or others.name_contains or others.error_contains:
            # A label or substring match is a bitmap built whole, once per state counted on its own: count
            # the first SAMPLE_BOUND matches of all states in one pass instead (exact when fewer match).
            counts = view.count_by_state(others, SAMPLE_BOUND)
            sampled = sum(counts.values()) >= SAMPLE_BOUND
        else:
            counts, sampled = view.count_each_state(others, STATES, STATE_COUNT_BOUND), False
        return {"items": [task_doc(d) for d in listed.items], "total": listed.total,
                "total_is_estimate": listed.total_is_estimate, "next_cursor": listed.next_cursor,
                "counts": counts, "count_bound": STATE_COUNT_BOUND, "counts_sampled": sampled,
                "sample_bound": SAMPLE_BOUND, "sort": sort,
                "head": head}


class TaskDetail:
    """`/ui/tasks/{id}`: every field, steps, output, runs, the timeline with its hash-chain status, and time
    travel (`?as_of=<version>` shows the task as it was after that event, replayed from the event store)."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.pages.viewer(req)
        deps, tid = self.pages.deps, _task_id(task_id)
        current = deps.view.get(tid)
        if current is None:
            raise TaskNotFoundError(tid)
        head_version = int(current["version"])
        as_of = req.get_param_as_int("as_of", min_value=1, max_value=head_version) if req.get_param("as_of") else None
        shown = deps.ledger.task_as_of(tid, version=as_of).to_dict() if as_of else current
        first = max(0, head_version - TIMELINE_LIMIT)
        timeline = deps.ledger.task_events(tid, after_version=first, limit=TIMELINE_LIMIT)
        outputs = {name: "".join(row["data"] for row in deps.view.output_pages(tid, name, 0, OUTPUT_BYTES))
                   for name in (shown.get("buffers") or {})}
        self.pages.render(req, resp, "task.html", who=who, task=task_doc(shown), current=task_doc(current),
                          as_of=as_of, timeline=timeline, truncated=first > 0, chain=chain_status(timeline, current),
                          runs=deps.view.runs(tid), outputs=outputs, actions=ACTIONS, done=req.get_param("done"),
                          api=f"{deps.base}/tasks/{tid}")


class TaskAction:
    """`/ui/tasks/{id}/{action}` (POST, operators): the domain command the API issues, facade `dashboard`."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str, action: str) -> None:
        who = self.pages.viewer(req)
        form = _form(req)
        check_form(req, who, form)
        if action not in ACTIONS:
            raise falcon.HTTPNotFound()
        if not who.can_act:
            raise Refused(403, f"Role {who.role!r} may not {action} tasks; that needs an operator or admin.")
        tid, reason = _task_id(task_id), (form.get("reason") or "").strip()[:2000] or None
        caller = c.Caller(who.name, req.context.get("request_id") or "-", FACADE)
        ledger = self.pages.deps.ledger
        written = {
            "pause": lambda: ledger.pause_task(c.PauseTask(tid, reason), caller),
            "resume": lambda: ledger.resume_task(c.ResumeTask(tid), caller),
            "cancel": lambda: ledger.cancel_task(c.CancelTask(tid, reason), caller),
            "abort": lambda: ledger.abort_task(c.AbortTask(tid, reason), caller),
            "drop": lambda: ledger.drop_task(c.DropTask(tid, form.get("force") == "on"), caller),
        }[action]()
        self.pages.deps.view.wait_for(written.position, 5.0)  # the page it sends you to shows the change
        raise falcon.HTTPSeeOther(f"/ui/tasks/{tid}?{urlencode({'done': action})}")


def chain_status(timeline: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """Whether each event links to the one before (`prev_hash`) and the newest is the task's `chain_hash`."""
    broken = [e["version"] for before, e in zip(timeline, timeline[1:], strict=False) if e["prev_hash"] != before["hash"]]
    head_ok = bool(timeline) and timeline[-1]["hash"] == current.get("chain_hash")
    return {"ok": not broken and head_ok, "broken": broken, "head_ok": head_ok, "events": len(timeline)}


def _list_query(req: falcon.Request, ignore: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The list's query validated as `GET /tasks` validates it; empty form fields mean "any"."""
    params = _params(req, ignore)
    label = params.get("label")
    if isinstance(label, str):  # the form's one field may hold several selectors, separated by spaces
        params["label"] = label.split() or label
    return form_query(s.ListTasksQuery(), params)


def form_query(schema: Schema, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A page's query validated by the API's own schema: the values, or none and the broken rules by field."""
    try:
        loaded: dict[str, Any] = schema.load(params)
    except ValidationError as error:
        return {}, field_errors(error.messages)
    return loaded, []


def _params(req: falcon.Request, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The query string's parameters; an empty form field means "any", so it is left out."""
    return {k: v for k, v in req.params.items() if k not in drop and v not in ("", [])}


def _without_states(flt: TaskFilter) -> TaskFilter:
    return dataclasses.replace(flt, states=())


def _task_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise TaskNotFoundError(text) from None


def _form(req: falcon.Request) -> dict[str, str]:
    if req.content_length and req.content_length > 64 * 1024:
        raise Refused(413, "That form is too large.")
    form = req.get_media(default_when_empty={}) if req.content_type and "urlencoded" in req.content_type else {}
    return {str(k): (v if isinstance(v, str) else str(v[0]) if v else "") for k, v in dict(form).items()}


def _next(target: str | None) -> str:
    """Where to go after signing in: a page of the dashboard only (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/tasks"
