"""The shape check of Pandora's `interval.crontab`: Quartz expressions, seconds first."""

from __future__ import annotations

import re

import pytest

from api.facades.pandora.quartz import CronShapeError, check_quartz


@pytest.mark.parametrize("expression", [
    "*/5 * * * * ?",
    "0 0 12 * * ?",
    "0 15 10 ? * MON-FRI",
    "0 15 10 ? * 6L",
    "0 15 10 ? * 6#3",
    "0 15 10 L * ?",
    "0 15 10 L-2 * ?",
    "0 15 10 LW * ?",
    "0 15 10 15W * ?",
    "0 0/5 14,18 * * ?",
    "0 10,44 14 ? 3 WED",
    "0 0 0 1 JAN-MAR/1 ?",
    "0 0 0 1 1 ? 2030",
    "0 0 0 1 1 ? 2030-2040/2",
    "0 0 12 ? * sun",
])
def test_quartz_expressions_pass(expression: str) -> None:
    assert check_quartz(expression) == expression


def test_the_checked_expression_has_single_spaces() -> None:
    assert check_quartz("  0  */5 *\t* * ? ") == "0 */5 * * * ?"


@pytest.mark.parametrize(("expression", "complaint"), [
    ("*/5 * * * *", "must have 6 or 7 fields"),
    ("0 0 0 1 1 ? 2030 1", "must have 6 or 7 fields"),
    ("60 * * * * ?", "seconds field '60'"),
    ("0 60 * * * ?", "minutes field '60'"),
    ("0 0 24 * * ?", "hours field '24'"),
    ("0 0 0 32 * ?", "day-of-month field '32'"),
    ("0 0 0 0 * ?", "day-of-month field '0'"),
    ("0 0 0 1 13 ?", "month field '13'"),
    ("0 0 0 1 JUNE ?", "month field 'JUNE'"),
    ("0 0 0 ? * 8", "day-of-week field '8'"),
    ("0 0 0 ? * 0", "day-of-week field '0'"),
    ("0 0 0 ? * 6#6", "day-of-week field '6#6'"),
    ("0 0 0 1 1 ? 1969", "year field '1969'"),
    ("0 0 0 * * *", "exactly one of day-of-month and day-of-week"),
    ("0 0 0 ? * ?", "exactly one of day-of-month and day-of-week"),
    ("0 0 0 1 * MON", "exactly one of day-of-month and day-of-week"),
    ("? 0 0 1 * ?", "seconds field '?'"),
    ("0 0 0 L,1 * ?", "day-of-month field 'L,1'"),
    ("0 */0 * * * ?", "minutes field '*/0'"),
    ("0 */61 * * * ?", "minutes field '*/61'"),
    ("0 0 22-2 * * ?", "hours field '22-2'"),
    ("0 0 0 1 * ? x", "year field 'x'"),
    ("0 0 0 1,,2 * ?", "day-of-month field '1,,2'"),
    ("0 0 0 1- * ?", "day-of-month field '1-'"),
    ("a b c d e f", "seconds field 'a'"),
])
def test_malformed_expressions_are_refused_naming_the_field(expression: str, complaint: str) -> None:
    with pytest.raises(CronShapeError, match="^" + re.escape(complaint)):
        check_quartz(expression)
