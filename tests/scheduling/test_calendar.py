"""The cron calendar: both dialects, Quartz days of the week, time zones and the DST transitions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from taskledger.calendar import CronCalendar

UTC = timezone.utc
BERLIN = "Europe/Berlin"
calendar = CronCalendar(lambda: datetime(2024, 1, 1, tzinfo=UTC))


def schedule(cron: str, zone: str = "UTC") -> dict[str, Any]:
    return {"cron": cron, "timezone": zone, "catch_up": "missed", "overlap": "skip"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def instants(cron: str, after: str, until: str, zone: str = "UTC") -> list[str]:
    found = calendar.occurrences(schedule(cron, zone), utc(after), utc(until), 1000)
    assert all(t.tzinfo == UTC for t in found)
    return [t.strftime("%m-%d %H:%M:%S") for t in found]


def test_a_quartz_expression_has_seconds_first_and_the_bounds_are_after_exclusive_until_inclusive() -> None:
    assert instants("*/2 * * * * ?", "2024-03-01T12:00:00", "2024-03-01T12:00:06") == [
        "03-01 12:00:02", "03-01 12:00:04", "03-01 12:00:06"]


def test_a_five_field_expression_is_standard_cron_with_minutes_first() -> None:
    assert instants("30 3 * * *", "2024-03-01T00:00:00", "2024-03-03T00:00:00") == ["03-01 03:30:00", "03-02 03:30:00"]


def test_a_seven_field_quartz_expression_has_a_year() -> None:
    assert instants("0 0 12 1 1 ? 2026", "2024-01-01T00:00:00", "2030-01-01T00:00:00") == ["01-01 12:00:00"]


@pytest.mark.parametrize(("cron", "weekdays"), [
    ("0 0 12 ? * 2", ["Mon", "Mon"]),                 # Quartz numbers days from Sunday = 1
    ("0 0 12 ? * 1,7", ["Sat", "Sun", "Sat"]),
    ("0 0 12 ? * 2-3", ["Mon", "Tue", "Mon"]),
    ("0 0 12 ? * MON-WED", ["Mon", "Tue", "Wed"]),
    ("0 0 12 ? * 2#1", ["Mon", "Mon"]),              # first Monday of the month
    ("0 0 12 ? * 6L", ["Fri", "Fri"]),               # last Friday of the month
    ("0 0 12 * * 1", ["Sun", "Sun"]),
    ("0 12 * * 1", ["Mon", "Mon"]),                  # 5-field cron numbers days from Sunday = 0
])
def test_days_of_the_week_are_numbered_as_the_dialect_numbers_them(cron: str, weekdays: list[str]) -> None:
    found = calendar.occurrences(schedule(cron), utc("2024-03-01T00:00:00"), utc("2024-05-01T00:00:00"),
                                 len(weekdays))
    assert [t.strftime("%a") for t in found] == weekdays


def test_the_last_day_of_the_month_is_l() -> None:
    assert instants("0 0 0 L * ?", "2024-01-15T00:00:00", "2024-04-01T00:00:00") == [
        "01-31 00:00:00", "02-29 00:00:00", "03-31 00:00:00"]


def test_wall_clock_times_are_read_in_the_schedules_zone() -> None:
    assert instants("0 0 9 * * ?", "2024-01-10T00:00:00", "2024-01-11T00:00:00", "Asia/Shanghai") == [
        "01-10 01:00:00"]


def test_spring_forward_a_daily_time_in_the_skipped_hour_fires_once_at_the_first_instant_after_the_gap() -> None:
    # Europe/Berlin, 2024-03-31: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
    assert instants("0 30 2 * * ?", "2024-03-29T12:00:00", "2024-04-01T12:00:00", BERLIN) == [
        "03-30 01:30:00", "03-31 01:00:00", "04-01 00:30:00"]


def test_spring_forward_an_hourly_schedule_has_no_run_for_the_hour_that_does_not_exist() -> None:
    assert instants("0 0 * * * ?", "2024-03-30T23:30:00", "2024-03-31T03:30:00", BERLIN) == [
        "03-31 00:00:00", "03-31 01:00:00", "03-31 02:00:00", "03-31 03:00:00"]


def test_fall_back_a_daily_time_in_the_repeated_hour_fires_in_both_offsets() -> None:
    # Europe/Berlin, 2024-10-27: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, an hour apart.
    assert instants("0 30 2 * * ?", "2024-10-25T12:00:00", "2024-10-28T12:00:00", BERLIN) == [
        "10-26 00:30:00", "10-27 00:30:00", "10-27 01:30:00", "10-28 01:30:00"]


def test_fall_back_an_hourly_schedule_keeps_firing_every_elapsed_hour() -> None:
    assert instants("0 0 * * * ?", "2024-10-26T22:30:00", "2024-10-27T03:30:00", BERLIN) == [
        "10-26 23:00:00", "10-27 00:00:00", "10-27 01:00:00", "10-27 02:00:00", "10-27 03:00:00"]


@pytest.mark.parametrize(("cron", "after"), [("0 30 2 * * ?", "2024-10-26T00:00:00"),
                                              ("0 */20 * * * ?", "2024-10-26T23:00:00"),
                                              ("0 30 2 * * ?", "2024-03-30T00:00:00"),
                                              ("0 */20 * * * ?", "2024-03-31T00:00:00")])
def test_resuming_from_any_recorded_occurrence_neither_repeats_nor_skips_one_across_dst(cron: str, after: str) -> None:
    start, until = utc(after), utc(after) + timedelta(days=3)
    at_once = calendar.occurrences(schedule(cron, BERLIN), start, until, 1000)

    one_by_one, cursor = [], start
    while found := calendar.occurrences(schedule(cron, BERLIN), cursor, until, 1):
        one_by_one.append(found[0])
        cursor = found[0]

    assert one_by_one == at_once and len(set(at_once)) == len(at_once) > 2


def test_an_expression_with_no_later_occurrence_lists_none() -> None:
    assert instants("0 0 12 1 1 ? 2025", "2025-06-01T00:00:00", "2099-01-01T00:00:00") == []


def test_the_list_stops_at_the_limit() -> None:
    found = calendar.occurrences(schedule("* * * * * ?"), utc("2024-03-01T00:00:00"), utc("2024-03-02T00:00:00"), 5)
    assert len(found) == 5
