"""The names of the log's tables, built in one place: the events table and each projection's tracking table.

eventsourcing names them itself (its PostgreSQL factory after the application, its tracking recorders after
the projection); every query, tool and check that reads them by name takes the name from here.
"""

from __future__ import annotations

from ledger.application import TaskLedger

# The application whose log every projection follows: the row each tracking table keeps.
APPLICATION = TaskLedger.name
EVENTS_TABLE = f"{APPLICATION.lower()}_events"


def tracking_table(projection: str) -> str:
    """The tracking table of a projection (its position in the log)."""
    return f"{projection}_tracking"
