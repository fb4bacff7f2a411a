"""The database not answering (restarting, unreachable): 503 with Retry-After in each API's format, never a 500."""

from __future__ import annotations

import logging
from typing import Any

import falcon
from eventsourcing.persistence import InterfaceError, OperationalError

from api.problems import Problem
from projections.queries import SERVER_FULL, ReadSideUnavailableError

log = logging.getLogger(__name__)

# What the ledger, the read side and the accounts raise when their database does not answer.
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, ReadSideUnavailableError)
RETRY_AFTER = "1"


def is_unavailable(error: BaseException) -> bool:
    return isinstance(error, UNAVAILABLE)


def unavailable(error: BaseException) -> Problem:
    """The 503 every API answers while the database is away (the native one as problem+json)."""
    if SERVER_FULL.search(str(error)):
        log.error("PostgreSQL has no connection to spare (%s): answering 503; lower TASKLEDGER_WORKERS or "
                  "TASKLEDGER_POOL_SIZE, or raise max_connections (docs/architecture.md, the connection budget)",
                  " ".join(str(error).split())[:300])
    else:
        log.warning("the database did not answer (%s): answering 503", type(error).__name__)
    return Problem(503, "database-unavailable", "The database did not answer (it may be restarting); "
                   "nothing was lost; retry in a moment.", headers={"Retry-After": RETRY_AFTER})


def handle_unavailable(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    raise unavailable(ex)


HANDLERS: dict[type[Exception], Any] = {kind: handle_unavailable for kind in UNAVAILABLE}


def register(app: falcon.App) -> None:
    for family, handler in HANDLERS.items():
        app.add_error_handler(family, handler)
