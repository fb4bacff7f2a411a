"""Shape check of Quartz cron expressions (seconds first, `?`, `L`, `W`, `#`), Pandora's `interval.crontab`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MONTHS = {name: number for number, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
# Quartz numbers days of the week from Sunday = 1.
DAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
SHAPE = "seconds minutes hours day-of-month month day-of-week [year]"

_DAY_NAME = "|".join(DAYS)
_MONTH_DAY_SPECIAL = re.compile(r"L(-([0-9]|[12][0-9]|30))?|LW|([1-9]|[12][0-9]|3[01])W")
_WEEK_DAY_SPECIAL = re.compile(rf"L|([1-7]|{_DAY_NAME})(L|#[1-5])")
_ITEM = re.compile(r"(?P<base>\*|[0-9A-Z]{1,4}(-[0-9A-Z]{1,4})?)(/(?P<step>[0-9]{1,4}))?")


class CronShapeError(ValueError):
    """The expression is not a Quartz cron expression; the message names the broken part."""


@dataclass(frozen=True)
class Part:
    """One field of a Quartz expression: its name, range and symbolic names."""

    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)
    special: re.Pattern[str] | None = None


PARTS = (
    Part("seconds", 0, 59), Part("minutes", 0, 59), Part("hours", 0, 23),
    Part("day-of-month", 1, 31, special=_MONTH_DAY_SPECIAL), Part("month", 1, 12, MONTHS),
    Part("day-of-week", 1, 7, DAYS, special=_WEEK_DAY_SPECIAL), Part("year", 1970, 2099),
)
DAY_OF_MONTH, DAY_OF_WEEK = 3, 5


def check_quartz(expression: str) -> str:
    """The expression with single spaces between its fields, or CronShapeError naming what is wrong."""
    fields = expression.split()
    if len(fields) not in (6, 7):
        raise CronShapeError(f"must have 6 or 7 fields ({SHAPE}), not {len(fields)}")
    for index, (part, text) in enumerate(zip(PARTS, fields)):
        if not _field_ok(index, part, text.upper()):
            raise CronShapeError(f"{part.name} field {text!r} is not valid")
    if (fields[DAY_OF_MONTH] == "?") == (fields[DAY_OF_WEEK] == "?"):
        raise CronShapeError("exactly one of day-of-month and day-of-week must be '?'")
    return " ".join(fields)


def _field_ok(index: int, part: Part, text: str) -> bool:
    if text == "?":
        return index in (DAY_OF_MONTH, DAY_OF_WEEK)
    if part.special is not None and part.special.fullmatch(text):
        return True  # Quartz allows L, W and # only alone in their field
    return all(_item_ok(part, item) for item in text.split(","))


def _item_ok(part: Part, item: str) -> bool:
    match = _ITEM.fullmatch(item)
    if match is None:
        return False
    step = match["step"]
    if step is not None and not 1 <= int(step) <= part.high - part.low + 1:
        return False
    if match["base"] == "*":
        return True
    first, dash, last = match["base"].partition("-")
    low = _value(part, first)
    high = _value(part, last) if dash else low
    # Wrapping ranges (FRI-MON) are refused: not every cron engine reads them the way Quartz does.
    return low is not None and high is not None and low <= high


def _value(part: Part, text: str) -> int | None:
    number = part.names.get(text, int(text) if text.isdigit() else None)
    return number if number is not None and part.low <= number <= part.high else None
