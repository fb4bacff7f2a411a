"""Wire-compatible facades of the four seed APIs: each declares its `Wire` and serves its own resources."""

from __future__ import annotations

import falcon

from api import problems, unavailable
from api.facades import hugegraph, kylin, openlookeng, pandora
from api.facades.common import Errors, FacadeDeps, Native

FACADES = (openlookeng, kylin, hugegraph, pandora)

__all__ = ["FACADES", "FacadeDeps", "mount"]


def mount(app: falcon.App, deps: FacadeDeps) -> None:
    """Adds every facade's routes, and the error handlers that answer each request in its API's format."""
    # The native API's handlers answer every request outside the facades' paths (None: falcon's own).
    natives: dict[type[Exception], Native | None] = {**problems.HANDLERS, **unavailable.HANDLERS, falcon.HTTPError: None}
    Errors(tuple(facade.WIRE for facade in FACADES)).register(app, natives)
    for facade in FACADES:
        for template, resource in facade.routes(deps):
            app.add_route(template, resource)
