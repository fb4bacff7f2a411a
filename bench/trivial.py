"""The read-path baseline: a trivial falcon app served by gunicorn with the service's own settings.

It answers every GET and POST with a constant `{"ok": true}`: no authentication, no database, no
schema (a POST's body is read and dropped). `bench/run.py` serves it with `ops/gunicorn.conf.py`
(same workers, threads, access log) so each ratio isolates what taskledger adds on top of
falcon + gunicorn: the HTTP ceiling of the machine.
"""

from __future__ import annotations

import falcon

BODY = b'{"ok": true}'


class Constant:
    """Answers 200 with a fixed JSON body, whatever the path parameters."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        resp.data = BODY
        resp.content_type = falcon.MEDIA_JSON

    def on_post(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        req.bounded_stream.read()
        self.on_get(req, resp)


def create_app() -> falcon.App:
    app = falcon.App()
    constant = Constant()
    app.add_route("/healthz", constant)
    # Same path shape as the measured endpoint, so routing work is comparable.
    app.add_route("/ledger/v1/tasks/{task_id}", constant)
    app.add_route("/ledger/v1/tasks", constant)
    app.add_route("/ledger/v1/tasks/{task_id}/heartbeat", constant)
    app.add_route("/ledger/v1/heartbeats", constant)
    return app
