"""The compiled task dump answers exactly what marshmallow's dump of TaskSchema answers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from marshmallow import Schema, fields

from api.dumping import compile_dump
from api.representations import TASK, task_doc
from ledger import commands as c
from ledger.application import TaskLedger
from taskledger.calendar import CronCalendar
from tests.projections.helpers import drive


def _documents() -> list[dict[str, Any]]:
    app = TaskLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, calendar=CronCalendar())
    ids = drive(app, n_tasks=30, seed=7)
    recurring = app.create_task(c.CreateTask(namespace="ns", name="cron", schedule={"cron": "*/5 * * * *"}),
                                c.Caller("t", "r")).task_id
    docs = [app.task_as_of(i).to_dict() for i in [*ids, recurring]]
    odd = dict(docs[0], progress=40, heartbeat_timeout=30, input={"_type_": "x", "_data_": 1}, result=[1, "a", None],
               message=None, worker=None, labels={"k": "v"}, current_run={"run": 3, "time": "t"})
    return [*docs, odd]


@pytest.mark.parametrize("doc", _documents())
def test_a_task_document_dumps_as_marshmallow_dumps_it(doc: dict[str, Any]) -> None:
    assert task_doc(doc) == TASK.dump(doc)
    assert [type(v) for v in task_doc(doc).values()] == [type(v) for v in TASK.dump(doc).values()]


def test_missing_keys_stay_missing_and_none_stays_none() -> None:
    assert task_doc({"id": uuid.UUID(int=1), "schedule": None, "steps": None}) == {
        "id": "00000000-0000-0000-0000-000000000001", "schedule": None, "steps": None}


def test_a_schema_with_a_field_it_cannot_compile_is_refused_at_once() -> None:
    class Odd(Schema):
        when = fields.DateTime()

    with pytest.raises(TypeError, match="DateTime"):
        compile_dump(Odd())
