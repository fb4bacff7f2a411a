"""User JSON that looks like the event store's own encoding round-trips unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import commands as c
from tests.ledger.support import OPERATOR, WORKER, new_ledger, state_of

# Shapes the eventsourcing JSON transcoder uses for its own custom types.
LOOKALIKES: list[Any] = [
    {"_type_": "x", "_data_": 1},
    {"_type_": "uuid_hex", "_data_": "0" * 32},
    {"_type_": "datetime_iso", "_data_": "2024-03-01T12:00:00+00:00"},
    {"_type_": "decimal_str", "_data_": "1.5", "extra": True},
    [{"_type_": "tuple_as_list", "_data_": [1, 2]}, {"_data_": None}],
    {"nested": {"_type_": "x", "_data_": {"_type_": "y", "_data_": []}}},
    {"unicode": "naïve ☃", "null": None, "float": 0.1, "big": 2**62},
]


@pytest.mark.parametrize("value", LOOKALIKES)
def test_encoding_lookalikes_in_input_labels_result_and_stats_round_trip_unchanged(value: Any) -> None:
    app = new_ledger()
    labels: Any = {"k": value} if isinstance(value, dict) else {"k": {"list": value}}
    t = app.create_task(c.CreateTask("ns", "n", input=value, labels=labels), OPERATOR).task_id
    app.start_task(c.StartTask(t, "w"), WORKER)
    app.record_heartbeat(c.RecordHeartbeat(t, 1, stats={"s": value}), WORKER)
    app.complete_task(c.CompleteTask(t, 1, value), WORKER)

    state = state_of(app, t)

    assert (state.input, state.labels, state.stats, state.result) == (value, labels, {"s": value}, value)
    timeline = app.task_events(t)
    assert timeline[0]["data"]["input"] == value
    assert timeline[2]["data"]["stats"] == {"s": value}
    assert timeline[3]["data"]["result"] == value


def test_encoding_lookalikes_in_an_update_round_trip_unchanged() -> None:
    app = new_ledger()
    t = app.create_task(c.CreateTask("ns", "n"), OPERATOR).task_id
    changes = {"input": {"_type_": "x", "_data_": 1}, "labels": {"_type_": "x", "_data_": "1"}}

    app.update_task(c.UpdateTask(t, changes), OPERATOR)

    state = state_of(app, t)
    assert (state.input, state.labels) == (changes["input"], changes["labels"])
    assert app.task_events(t)[1]["data"] == {"changes": changes}
