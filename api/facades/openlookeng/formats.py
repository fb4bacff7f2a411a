"""airlift's wire formats: durations ("6.39ms"), 1024-based data sizes ("174.76kB") and Joda timestamps."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

# (unit, nanoseconds) from the smallest to the largest, as java.util.concurrent.TimeUnit orders them.
TIME_UNITS = (("ns", 1), ("us", 10**3), ("ms", 10**6), ("s", 10**9), ("m", 60 * 10**9),
              ("h", 3600 * 10**9), ("d", 86400 * 10**9))
SIZE_UNITS = (("B", 1), ("kB", 1024), ("MB", 1024**2), ("GB", 1024**3), ("TB", 1024**4), ("PB", 1024**5))
_VALUE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")
MAX_TEXT = 64


def _two_decimals(value: float) -> str:
    """Java's `%.2f`: half-up on the exact value of the double (Python's own rounding is half-even)."""
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def duration(nanos: float) -> str:
    """airlift `Duration.succinctNanos(n).toString()`: the largest unit whose value is ≥ 0.9999."""
    nanos = max(0.0, float(nanos))
    unit, factor = TIME_UNITS[0]
    for name, size in TIME_UNITS:
        if nanos / size > 0.9999:
            unit, factor = name, size
        else:
            break
    return _two_decimals(nanos / factor) + unit


def data_size(size: float) -> str:
    """airlift `DataSize.succinctBytes(n).toString()`: whole values without decimals, else two."""
    size = max(0.0, float(size))
    unit, factor = SIZE_UNITS[0]
    for name, bytes_per_unit in SIZE_UNITS:
        if bytes_per_unit <= size:
            unit, factor = name, bytes_per_unit
        else:
            break
    value = size / factor
    if math.floor(value) == value:
        return f"{int(value)}{unit}"
    return _two_decimals(value) + unit


def parse_duration(text: str) -> float:
    """Seconds of an airlift duration such as `1.00s` or `500ms`; ValueError when it is not one."""
    nanos = _parse(text, dict(TIME_UNITS))
    return nanos / 10**9


def parse_data_size(text: str) -> int:
    """Bytes of an airlift data size such as `16MB` or `1.50kB`; ValueError when it is not one."""
    return int(_parse(text, dict(SIZE_UNITS)))


def _parse(text: str, units: dict[str, int]) -> float:
    match = _VALUE.fullmatch(text) if len(text) <= MAX_TEXT else None
    if match is None or match.group(2) not in units:
        raise ValueError(f"{text[:MAX_TEXT]!r} is not a value with one of the units {', '.join(units)}")
    value = float(match.group(1)) * units[match.group(2)]
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is too large")
    return value


def timestamp(iso: str) -> str:
    """A stored ISO-8601 instant as Joda writes it: milliseconds and a numeric UTC offset."""
    moment = datetime.fromisoformat(iso).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def nanos_between(start: str, end: str | datetime) -> int:
    """Nanoseconds from one stored instant to another (never negative)."""
    finish = end if isinstance(end, datetime) else datetime.fromisoformat(end)
    delta = finish - datetime.fromisoformat(start)
    return max(0, (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000)
