"""Validators whose failures read as the rule the client broke ("must be more than 0")."""

from __future__ import annotations

import re
from collections.abc import Sized
from typing import Any

from marshmallow import ValidationError

# `str.isprintable()` is exactly "of a Unicode general category L, M, N, P or S, or the ASCII space"
# (every other character is Other or Separator); the OpenAPI document states the rule in those terms.
PRINTABLE_CLASS = r"[\p{L}\p{M}\p{N}\p{P}\p{S} ]"


class Between:
    """A number within bounds; the lower bound may be exclusive."""

    def __init__(self, low: float | None = None, high: float | None = None, *, exclusive_low: bool = False) -> None:
        self.low, self.high, self.exclusive_low = low, high, exclusive_low

    def __call__(self, value: float) -> float:
        low = _show(self.low)
        if self.low is not None and self.exclusive_low and value <= self.low:
            raise ValidationError(f"must be more than {low}")
        if self.low is not None and not self.exclusive_low and value < self.low:
            raise ValidationError(f"must be {low} or more")
        if self.high is not None and value > self.high:
            raise ValidationError(f"must be {_show(self.high)} or less")
        return value


class Size:
    """A string, array or object of a bounded length."""

    def __init__(self, low: int = 0, high: int | None = None, unit: str = "characters") -> None:
        self.low, self.high, self.unit = low, high, unit

    def __call__(self, value: Sized) -> Sized:
        if len(value) < self.low:
            raise ValidationError("must not be empty" if self.low == 1
                                  else f"must have at least {self.low} {self.unit}")
        if self.high is not None and len(value) > self.high:
            raise ValidationError(f"must have at most {self.high} {self.unit}")
        return value


class OneOf:
    """One of a fixed set of words."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def __call__(self, value: Any) -> Any:
        if value not in self.choices:
            raise ValidationError(f"must be one of {', '.join(self.choices)}")
        return value


class Printable:
    """Text without control characters (names travel in headers, logs and Basic credentials)."""

    def __init__(self, forbidden: str = "") -> None:
        self.forbidden = forbidden

    @property
    def pattern(self) -> str:
        """The rule as a JSON Schema (ECMA-262, Unicode) pattern."""
        if not self.forbidden:
            return f"^{PRINTABLE_CLASS}*$"
        barred = "".join("\\" + ch if ch in "\\]^-" else ch for ch in self.forbidden)
        return f"^(?:(?![{barred}]){PRINTABLE_CLASS})*$"

    def __call__(self, value: str) -> str:
        if not value.isprintable():
            raise ValidationError("must not contain control characters")
        if any(ch in value for ch in self.forbidden):
            raise ValidationError(f"must not contain {' or '.join(repr(ch) for ch in self.forbidden)}")
        return value


class Pattern:
    """Text matching a regular expression that Python and JSON Schema (ECMA-262) read alike."""

    def __init__(self, pattern: str, rule: str) -> None:
        self.pattern, self.rule = pattern, rule
        self.compiled = re.compile(pattern)

    def __call__(self, value: str) -> str:
        if not self.compiled.search(value):
            raise ValidationError(self.rule)
        return value


def _show(number: float | None) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)
