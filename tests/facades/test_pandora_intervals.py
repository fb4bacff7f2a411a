"""Pandora intervals become ledger schedules: Quartz crontabs as given, cronDate forms converted, bad ones refused."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.application import TaskLedger
from tests.facades.pandora_support import CRONTAB, Pandora, unique


@pytest.fixture
def pandora(server: str) -> Pandora:
    return Pandora(server)


def stored_cron(pandora: Pandora, interval: dict[str, Any]) -> str:
    task_id = pandora.create_task(unique("cron"), interval)
    resp = pandora.native(task_id)
    assert resp.status_code == 200
    return str(resp.json()["schedule"]["cron"])


def test_a_crontab_is_scheduled_as_given_in_utc_catching_up_missed_runs_and_skipping_overlaps(
        pandora: Pandora) -> None:
    task_id = pandora.create_task(unique(), CRONTAB)
    doc = pandora.native(task_id).json()
    assert doc["schedule"] == {"cron": "*/5 * * * * ?", "timezone": "UTC", "catch_up": "missed", "overlap": "skip"}
    assert doc["input"]["interval"] == CRONTAB


@pytest.mark.parametrize(("cron_date", "cron"), [
    ({"frequency": "minute", "month": "1", "date": "1", "hour": "16", "minute": "0"}, "0 * * * * ?"),
    ({"frequency": "hour", "month": "1", "date": "1", "hour": "16", "minute": "25"}, "0 25 * * * ?"),
    ({"frequency": "day", "month": "1", "date": "1", "hour": "16", "minute": "0"}, "0 0 16 * * ?"),
    ({"frequency": "weekly", "month": "1", "date": "1", "hour": "8", "minute": "30"}, "0 30 8 ? * MON"),
    ({"frequency": "weekly", "month": "1", "date": "7", "hour": "23", "minute": "59"}, "0 59 23 ? * SUN"),
    ({"frequency": "week", "date": "5", "hour": "9"}, "0 0 9 ? * FRI"),
    ({"frequency": "month", "month": "1", "date": "15", "hour": "2", "minute": "5"}, "0 5 2 15 * ?"),
    ({"frequency": "quarter", "month": "2", "date": "10", "hour": "0", "minute": "0"}, "0 0 0 10 2,5,8,11 ?"),
    ({"frequency": "year", "month": "3", "date": "1", "hour": "16", "minute": "1"}, "0 1 16 1 3 ?"),
])
def test_each_cron_date_frequency_becomes_its_quartz_expression(
        pandora: Pandora, cron_date: dict[str, str], cron: str) -> None:
    assert stored_cron(pandora, {"type": "cronDate", "cronDate": cron_date}) == cron


@pytest.mark.parametrize(("frequency", "month", "cron"), [
    ("month", "1", "0 0 16 L * ?"),
    ("quarter", "3", "0 0 16 L 3,6,9,12 ?"),
    ("year", "2", "0 0 16 L 2 ?"),
])
def test_date_32_means_the_last_day_of_the_month(pandora: Pandora, frequency: str, month: str, cron: str) -> None:
    cron_date = {"frequency": frequency, "month": month, "date": "32", "hour": "16", "minute": "0"}
    assert stored_cron(pandora, {"type": "cronDate", "cronDate": cron_date}) == cron


def test_omitted_cron_date_fields_take_the_documented_defaults_daily_at_midnight(pandora: Pandora) -> None:
    assert stored_cron(pandora, {"type": "cronDate", "cronDate": {}}) == "0 0 0 * * ?"
    assert stored_cron(pandora, {"type": "cronDate", "cronDate": {"frequency": "month"}}) == "0 0 0 1 * ?"


def test_cron_date_numbers_may_also_be_json_integers_as_the_list_shows_them(pandora: Pandora) -> None:
    cron_date = {"frequency": "year", "month": 1, "date": 1, "hour": 16, "minute": 1}
    assert stored_cron(pandora, {"type": "cronDate", "cronDate": cron_date}) == "0 1 16 1 1 ?"


def test_the_interval_is_shown_back_exactly_as_given(pandora: Pandora) -> None:
    prefix = unique()
    interval = {"type": "cronDate", "cronDate": {"frequency": "day", "month": "1", "date": "1", "hour": "16",
                                                 "minute": "0"}, "crontab": ""}
    task_id = pandora.create_task(prefix + "a", interval)
    assert pandora.task(task_id, prefix)["interval"] == interval


def refused(pandora: Pandora, ledger_app: TaskLedger, body: dict[str, Any], field: str) -> None:
    head = ledger_app.head_position()
    resp = pandora.create(body)
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert set(resp.json()) == {"error"}
    assert resp.json()["error"].startswith(field + ": ")
    assert ledger_app.head_position() == head


@pytest.mark.parametrize(("cron_date", "field"), [
    ({"frequency": "fortnight"}, "interval.cronDate.frequency"),
    ({"frequency": 1}, "interval.cronDate.frequency"),
    ({"hour": "24"}, "interval.cronDate.hour"),
    ({"hour": "-1"}, "interval.cronDate.hour"),
    ({"hour": ""}, "interval.cronDate.hour"),
    ({"hour": True}, "interval.cronDate.hour"),
    ({"hour": "16h"}, "interval.cronDate.hour"),
    ({"minute": "60"}, "interval.cronDate.minute"),
    ({"minute": "5.5"}, "interval.cronDate.minute"),
    ({"minute": 5.0}, "interval.cronDate.minute"),
    ({"month": "13"}, "interval.cronDate.month"),
    ({"month": "0"}, "interval.cronDate.month"),
    ({"date": "0"}, "interval.cronDate.date"),
    ({"date": "33"}, "interval.cronDate.date"),
    ({"frequency": "weekly", "date": "8"}, "interval.cronDate.date"),
    ({"frequency": "weekly", "date": "32"}, "interval.cronDate.date"),
    ({"frequency": "quarter", "month": "4"}, "interval.cronDate.month"),
    ({"frequency": "year", "month": "2", "date": "30"}, "interval.cronDate.date"),
    ({"frequency": "year", "month": "4", "date": "31"}, "interval.cronDate.date"),
])
def test_bad_cron_date_values_are_400_naming_the_field_and_record_nothing(
        pandora: Pandora, ledger_app: TaskLedger, cron_date: dict[str, Any], field: str) -> None:
    body = {"name": unique(), "spl": "*", "interval": {"type": "cronDate", "cronDate": cron_date}}
    refused(pandora, ledger_app, body, field)


@pytest.mark.parametrize("crontab", [
    "*/5 * * * *", "0 0 25 * * ?", "0 0 * * * *", "0 0 0 ? * 8", "every five minutes", "", "   ", 300, None,
])
def test_bad_crontabs_are_400_naming_interval_crontab_and_record_nothing(
        pandora: Pandora, ledger_app: TaskLedger, crontab: Any) -> None:
    body = {"name": unique(), "spl": "*", "interval": {"type": "crontab", "crontab": crontab}}
    refused(pandora, ledger_app, body, "interval.crontab")


@pytest.mark.parametrize(("interval", "field"), [
    (None, "interval"),
    ("*/5 * * * * ?", "interval"),
    ({}, "interval.type"),
    ({"type": "cron", "crontab": "*/5 * * * * ?"}, "interval.type"),
    ({"type": "cronDate"}, "interval.cronDate"),
    ({"type": "cronDate", "cronDate": "day"}, "interval.cronDate"),
    ({"type": "crontab", "cronDate": {"frequency": "day"}}, "interval.crontab"),
])
def test_a_missing_or_malformed_interval_is_400_naming_the_field(
        pandora: Pandora, ledger_app: TaskLedger, interval: Any, field: str) -> None:
    refused(pandora, ledger_app, {"name": unique(), "spl": "*", "interval": interval}, field)


def test_an_update_with_a_bad_interval_changes_nothing(pandora: Pandora, ledger_app: TaskLedger) -> None:
    prefix = unique()
    task_id = pandora.create_task(prefix + "a")
    head = ledger_app.head_position()
    resp = pandora.update(task_id, {"name": prefix + "b", "spl": "*", "interval": {"type": "crontab",
                                                                                   "crontab": "0 0 0 * * *"}})
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("interval.crontab: ")
    assert ledger_app.head_position() == head
    assert pandora.task(task_id, prefix)["name"] == prefix + "a"


def test_a_crontab_the_ledgers_calendar_refuses_is_400_naming_interval_crontab(
        pandora: Pandora, ledger_app: TaskLedger) -> None:
    body = {"name": unique(), "spl": "*", "interval": {"type": "crontab", "crontab": "0 0 0 1 1 ? 2020"}}
    refused(pandora, ledger_app, body, "interval.crontab")
    assert pandora.create(body).json() == {"error": "interval.crontab: has no occurrence from now on"}
