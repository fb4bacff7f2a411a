"""The cron calendar the ledger's scheduling reads time through: croniter, IANA time zones (zoneinfo).

Dialects, told apart by the number of fields:
* 5 fields — standard cron `minute hour day-of-month month day-of-week`, days of the week 0 or 7 = Sunday;
* 6 or 7 fields — Quartz `second minute hour day-of-month month day-of-week [year]` with `?`, `L`, `#`,
  days of the week 1 = Sunday … 7 = Saturday (translated here to croniter's numbering).
Wall-clock times are read in the schedule's zone; docs/scheduling.md states what happens across DST.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

from ledger.errors import InvalidValueError

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# Keys zoneinfo can load that depend on the machine rather than name a zone.
NOT_ZONES = ("localtime", "posixrules", "Factory")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAY = r"([0-9]+|[A-Za-z]{3})"
_LAST_DAY = re.compile(rf"{_DAY}L", re.IGNORECASE)
_NTH_DAY = re.compile(rf"{_DAY}#([0-9]+)")
_DAY_RANGE = re.compile(rf"{_DAY}(?:-{_DAY})?(/[0-9]+)?")
SHAPE = ("5 fields (minute hour day-of-month month day-of-week) or 6 to 7 Quartz fields "
         "(second minute hour day-of-month month day-of-week [year])")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class CronCalendar:
    """Validates schedules and lists their occurrences; `clock` only decides "has no occurrence after now"."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock

    def validate(self, schedule: dict[str, Any]) -> None:
        zone = _zone(schedule["timezone"])
        expression = croniter_expression(schedule["cron"])
        try:
            croniter(expression, self.clock().astimezone(zone), second_at_beginning=True).get_next(datetime)
        except CroniterBadDateError:
            raise InvalidValueError("schedule.cron", "has no occurrence from now on") from None
        except (CroniterError, ValueError, KeyError, IndexError) as error:
            raise InvalidValueError("schedule.cron", f"is not a valid cron expression ({error})") from None

    def occurrences(self, schedule: dict[str, Any], after: datetime, until: datetime,
                    limit: int = 1000) -> list[datetime]:
        zone = _zone(schedule["timezone"])
        try:
            times = croniter(croniter_expression(schedule["cron"]), after.astimezone(zone),
                             second_at_beginning=True)
        except (CroniterError, ValueError, KeyError, IndexError) as error:
            raise InvalidValueError("schedule.cron", f"is not a valid cron expression ({error})") from None
        found: list[datetime] = []
        while len(found) < limit:
            try:
                moment: datetime = times.get_next(datetime)
            except CroniterBadDateError:
                break  # the expression has no later occurrence (e.g. a year that has passed)
            if moment > until:
                break
            found.append(moment.astimezone(timezone.utc))
        return found


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - set(NOT_ZONES)


def _zone(name: str) -> ZoneInfo:
    if name not in _zone_names():
        raise InvalidValueError("schedule.timezone", "must be an IANA time zone name such as UTC or Europe/Berlin")
    return ZoneInfo(name)


def croniter_expression(cron: str) -> str:
    """The expression as croniter reads it: Quartz days of the week renumbered, refusals named."""
    if cron.strip().lower() in MACROS:
        return cron.strip().lower()
    fields = cron.split()
    if len(fields) not in (5, 6, 7):
        raise InvalidValueError("schedule.cron", f"must have {SHAPE}, not {len(fields)}")
    for text in fields:
        for part in re.split(r"[,/-]", text):
            if part.upper().startswith(("R", "H")):
                raise InvalidValueError("schedule.cron", "must not use random (R) or hashed (H) values: "
                                                         "every scheduler must compute the same instants")
    if len(fields) >= 6:
        fields[5] = ",".join(_quartz_day(item) for item in fields[5].split(","))
    return " ".join(fields)


def _quartz_day(item: str) -> str:
    """One day-of-week item, Quartz-numbered (1 = Sunday), in croniter's numbering (0 = Sunday)."""
    if item in ("*", "?") or item.startswith("*/"):
        return item
    if item.upper() == "L":
        return "6"  # Quartz: L alone in day-of-week is Saturday
    if match := _LAST_DAY.fullmatch(item):
        return f"L{_day_number(match[1])}"
    if match := _NTH_DAY.fullmatch(item):
        return f"{_day(match[1])}#{match[2]}"
    if match := _DAY_RANGE.fullmatch(item):
        last = f"-{_day(match[2])}" if match[2] else ""
        return f"{_day(match[1])}{last}{match[3] or ''}"
    raise InvalidValueError("schedule.cron", f"day-of-week item {item!r} is not valid")


def _day(text: str) -> str:
    return str(_day_number(text))


def _day_number(text: str) -> int:
    if text.isalpha():
        if text.upper() not in DAY_NAMES:
            raise InvalidValueError("schedule.cron", f"day-of-week {text!r} is not a day name (SUN to SAT)")
        return DAY_NAMES.index(text.upper())
    if not 1 <= int(text) <= 7:
        raise InvalidValueError("schedule.cron", "day-of-week numbers run from 1 (SUN) to 7 (SAT) "
                                                 "in a 6- or 7-field (Quartz) expression")
    return int(text) - 1
