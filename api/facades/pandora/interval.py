"""Pandora's `interval` (a Quartz `crontab`, or a `cronDate` calendar form) turned into a ledger schedule."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from api.facades.pandora.errors import BadField
from api.facades.pandora.quartz import CronShapeError, check_quartz

TYPES = ("cronDate", "crontab")
FREQUENCIES = ("minute", "hour", "day", "weekly", "month", "quarter", "year")
ALIASES = {"week": "weekly"}
DEFAULTS: dict[str, Any] = {"frequency": "day", "month": "1", "date": "1", "hour": "0", "minute": "0"}
# `date` is a day of the week (1 = Monday … 7 = Sunday) for weekly, else a day of the month; 32 = the last day.
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
LAST_DAY = 32
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
MAX_CRONTAB = 200
_NUMBER = re.compile(r"[0-9]{1,2}")


def schedule_of(interval: Any) -> tuple[dict[str, Any], str]:
    """The ledger schedule an interval asks for, and the field that made its cron (for later errors)."""
    if not isinstance(interval, dict):
        raise BadField("interval", "is required and must be a JSON object")
    kind = interval.get("type")
    if kind not in TYPES:
        raise BadField("interval.type", f"must be one of {', '.join(TYPES)}")
    field = f"interval.{kind}"
    cron = crontab_cron(interval.get("crontab")) if kind == "crontab" else cron_date_cron(interval.get("cronDate"))
    return {"cron": cron, "timezone": "UTC", "catch_up": "missed", "overlap": "skip"}, field


def crontab_cron(crontab: Any) -> str:
    if not isinstance(crontab, str) or not crontab.strip():
        raise BadField("interval.crontab", "is required when interval.type is crontab and must be a string")
    if len(crontab) > MAX_CRONTAB:
        raise BadField("interval.crontab", f"must have at most {MAX_CRONTAB} characters")
    try:
        return check_quartz(crontab)
    except CronShapeError as error:
        raise BadField("interval.crontab", f"is not a Quartz cron expression: {error}") from None


def cron_date_cron(cron_date: Any) -> str:
    """The Quartz expression of a cronDate; every field is checked, the ones a frequency ignores too."""
    if not isinstance(cron_date, dict):
        raise BadField("interval.cronDate", "is required when interval.type is cronDate and must be a JSON object")
    given = {key: value for key, value in cron_date.items() if value is not None}
    frequency = given.get("frequency", DEFAULTS["frequency"])
    frequency = ALIASES.get(frequency, frequency) if isinstance(frequency, str) else None
    if frequency not in FREQUENCIES:
        raise BadField("interval.cronDate.frequency", f"must be one of {', '.join(FREQUENCIES)}")
    values = {name: _number(given, name, low, high) for name, low, high in
              (("month", 1, 12), ("date", 1, LAST_DAY), ("hour", 0, 23), ("minute", 0, 59))}
    return CRONS[frequency](values["month"], values["date"], values["hour"], values["minute"])


def _number(given: dict[str, Any], name: str, low: int, high: int) -> int:
    """A number written as a string ("16"), as the seed sends it; a JSON integer is taken too."""
    value = given.get(name, DEFAULTS[name])
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        number = -1
    if not low <= number <= high:
        raise BadField(f"interval.cronDate.{name}", f'must be a whole number from {low} to {high}, such as "{low}"')
    return number


def _weekly(month: int, date: int, hour: int, minute: int) -> str:
    if date > len(WEEKDAYS):
        raise BadField("interval.cronDate.date", "must be a day of the week from 1 (Monday) to 7 (Sunday) "
                                                 "when frequency is weekly")
    return f"0 {minute} {hour} ? * {WEEKDAYS[date - 1]}"


def _quarterly(month: int, date: int, hour: int, minute: int) -> str:
    if month > 3:
        raise BadField("interval.cronDate.month", "must be a month of the quarter from 1 to 3 when frequency "
                                                  "is quarter")
    months = ",".join(str(month + 3 * k) for k in range(4))
    return f"0 {minute} {hour} {_day_of_month(date)} {months} ?"


def _yearly(month: int, date: int, hour: int, minute: int) -> str:
    if date != LAST_DAY and date > MONTH_DAYS[month - 1]:
        raise BadField("interval.cronDate.date", f"month {month} has no day {date}; 32 means its last day")
    return f"0 {minute} {hour} {_day_of_month(date)} {month} ?"


def _day_of_month(date: int) -> str:
    return "L" if date == LAST_DAY else str(date)


CRONS: dict[str, Callable[[int, int, int, int], str]] = {
    "minute": lambda month, date, hour, minute: "0 * * * * ?",
    "hour": lambda month, date, hour, minute: f"0 {minute} * * * ?",
    "day": lambda month, date, hour, minute: f"0 {minute} {hour} * * ?",
    "weekly": _weekly,
    "month": lambda month, date, hour, minute: f"0 {minute} {hour} {_day_of_month(date)} * ?",
    "quarter": _quarterly,
    "year": _yearly,
}
