"""The web dashboard under /ui/ (and the browsable API docs at /ledger/v1/docs), in the API's own app.

Server-rendered (Jinja2), one small script of our own, no CDN and no build step. It reads the projections for
lists and details and the event store for timelines and time travel, like the API; its actions are the API's
domain commands, recorded with facade `dashboard`. docs/dashboard.md describes pages, sessions and CSRF.
"""

from __future__ import annotations

import falcon

from api.ui import operations, pages, schedules
from api.ui.docs import ApiDocs
from api.ui.pages import UiDeps

__all__ = ["UiDeps", "mount"]


def mount(app: falcon.App, deps: UiDeps) -> None:
    ui = pages.Pages(deps)
    home = pages.Home()
    for path in ("/", "/ui", "/ui/"):
        app.add_route(path, home)
    app.add_route("/ui/static/{name}", pages.Static())
    app.add_route("/ui/login", pages.Login(ui))
    app.add_route("/ui/logout", pages.Logout(ui))
    tasks = pages.TaskList(ui)
    app.add_route("/ui/tasks", tasks)
    app.add_route("/ui/tasks/rows", tasks, suffix="rows")
    app.add_route("/ui/tasks/{task_id}", pages.TaskDetail(ui))
    app.add_route("/ui/tasks/{task_id}/{action}", pages.TaskAction(ui))
    app.add_route("/ui/schedules", schedules.Schedules(ui))
    app.add_route("/ui/schedules/{task_id}", schedules.ScheduleHistory(ui))
    app.add_route("/ui/operations", operations.Operations(ui))
    docs = ApiDocs(deps.base)
    app.add_route(f"{deps.base}/docs", docs)
    app.add_route(f"{deps.base}/docs/{{name}}", docs, suffix="file")
