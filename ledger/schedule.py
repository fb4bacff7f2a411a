"""The schedule of a recurring task: its contract, its validation, and the calendar port that reads cron.

A schedule is `{"cron": "<expression>", "timezone": "UTC", "catch_up": "missed", "overlap": "skip"}`.
The ledger stores it with every default filled in, so the policy in force is the one written in the
event, whatever later releases choose as defaults. Cron itself is read by a `Calendar` the composition
root injects (the ledger imports no cron library).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ledger.errors import InvalidValueError

MISSED = "missed"
RUN_ONCE = "run_once"
SKIP = "skip"
QUEUE = "queue"
CATCH_UP = (MISSED, RUN_ONCE)
OVERLAP = (SKIP, QUEUE)
DEFAULTS: dict[str, str] = {"timezone": "UTC", "catch_up": MISSED, "overlap": SKIP}
FIELDS = ("cron", "timezone", "catch_up", "overlap")
MAX_CRON = 200
MAX_TIMEZONE = 100


class Calendar(Protocol):
    """Reads cron expressions in a time zone: what the scheduler asks about time."""

    def validate(self, schedule: dict[str, Any]) -> None:
        """Raises InvalidValueError naming `schedule.cron` or `schedule.timezone` and the reason."""

    def occurrences(self, schedule: dict[str, Any], after: datetime, until: datetime,
                    limit: int = 1000) -> list[datetime]:
        """The schedule's instants in (after, until], oldest first, at most `limit`, as aware UTC datetimes."""


def normalize_schedule(value: Any, calendar: Calendar | None) -> dict[str, Any] | None:
    """The schedule with its defaults, checked field by field and then by the calendar; None stays None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidValueError("schedule", "must be an object or null")
    unknown = sorted(set(value) - set(FIELDS), key=str)
    if unknown:
        raise InvalidValueError(f"schedule.{unknown[0]}", f"is not a schedule field; known: {', '.join(FIELDS)}")
    schedule = {**DEFAULTS, **value}
    _check_text(schedule, "cron", MAX_CRON, required="cron" in value)
    _check_text(schedule, "timezone", MAX_TIMEZONE)
    _check_choice(schedule, "catch_up", CATCH_UP)
    _check_choice(schedule, "overlap", OVERLAP)
    if calendar is None:
        raise InvalidValueError("schedule", "cannot be accepted: this ledger runs without a calendar to read cron")
    calendar.validate(schedule)
    return schedule


def _check_text(schedule: dict[str, Any], field: str, longest: int, required: bool = True) -> None:
    if not required:
        raise InvalidValueError(f"schedule.{field}", "is required")
    value = schedule[field]
    if not isinstance(value, str):
        raise InvalidValueError(f"schedule.{field}", "must be a string")
    if not value.strip() or len(value) > longest or not value.isprintable():
        raise InvalidValueError(f"schedule.{field}", f"must be 1 to {longest} printable characters")


def _check_choice(schedule: dict[str, Any], field: str, choices: tuple[str, ...]) -> None:
    if schedule[field] not in choices:
        raise InvalidValueError(f"schedule.{field}", f"must be one of {', '.join(choices)}")
