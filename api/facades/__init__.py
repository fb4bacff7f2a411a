"""Wire-compatible facades of the four seed APIs, each its own module with its own formats and errors."""

from __future__ import annotations

import falcon

from api.facades import hugegraph, kylin, openlookeng, pandora
from api.facades.common import FacadeDeps, FacadeReply, write_reply

FACADES = (openlookeng, kylin, hugegraph, pandora)


def mount(app: falcon.App, deps: FacadeDeps) -> None:
    app.add_error_handler(FacadeReply, write_reply)
    for facade in FACADES:
        for template, resource in facade.routes(deps):
            app.add_route(template, resource)
        # Paths under a facade's prefix that no route serves answer in that facade's format.
        for prefix, sink in getattr(facade, "sinks", lambda: [])():
            app.add_sink(sink, prefix)
