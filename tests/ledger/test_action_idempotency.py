"""Complete and fail under an Idempotency-Key: a refused retry of a recorded write answers its first receipt.

Run on PostgreSQL (the ledger's own recorder: `positions_of`, newest-first reads) and on the in-memory store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import REPLAY_LOOKBACK, TaskLedger
from ledger.domain import Task
from ledger.errors import (
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    LeaseMismatchError,
    TaskDroppedError,
)
from tests.ledger.support import OPERATOR, WORKER, new_ledger

OTHER_WORKER = c.Caller("worker-2", "req-w2")
ADMIN = c.Caller("ada", "req-admin")


@pytest.fixture(params=["postgresql", "in-memory"])
def app(request: pytest.FixtureRequest) -> Iterator[TaskLedger]:
    if request.param == "postgresql":
        yield request.getfixturevalue("ledger_app")
        return
    ledger = new_ledger()
    yield ledger
    ledger.close()


def _running(app: TaskLedger, max_retries: int = 0) -> tuple[UUID, int]:
    task_id = app.create_task(c.CreateTask(f"test-{uuid4().hex[:12]}", "export", max_retries=max_retries),
                              OPERATOR).task_id
    epoch = app.start_task(c.StartTask(task_id, "w1"), WORKER).lease_epoch
    assert epoch is not None
    return task_id, epoch


def _events(app: TaskLedger, task_id: UUID) -> list[Any]:
    return list(app.events.get(task_id))


def _key() -> str:
    return f"key-{uuid4()}"


def _receipt(written: c.Written) -> tuple[UUID, int, int]:
    return written.task_id, written.version, written.position


def test_a_retried_complete_answers_the_first_receipt_and_records_nothing(app: TaskLedger) -> None:
    task_id, epoch = _running(app)
    key = _key()
    first = app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}, idempotency_key=key), WORKER)
    recorded = _events(app, task_id)

    again = app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}, idempotency_key=key), WORKER)

    assert not first.replayed and again.replayed
    assert _receipt(again) == _receipt(first) and again.lease_epoch == epoch
    assert _events(app, task_id) == recorded
    assert [type(e) for e in recorded].count(Task.Completed) == 1
    assert app.current_task(task_id).state == st.SUCCEEDED


def test_a_retried_complete_without_a_key_is_refused_as_before(app: TaskLedger) -> None:
    task_id, epoch = _running(app)
    app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}), WORKER)

    with pytest.raises(IllegalTransitionError):
        app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}), WORKER)
    key = _key()  # a key on the retry only finds nothing the first attempt recorded
    with pytest.raises(IllegalTransitionError):
        app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}, idempotency_key=key), WORKER)


@pytest.mark.parametrize("change", [{"result": {"rows": 4}}, {"result": None}, {"lease_epoch": 2}])
def test_the_key_of_a_complete_with_another_body_is_refused_and_nothing_recorded(
        app: TaskLedger, change: dict[str, Any]) -> None:
    task_id, epoch = _running(app)
    key = _key()
    app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}, idempotency_key=key), WORKER)
    recorded = _events(app, task_id)
    body: dict[str, Any] = {"lease_epoch": epoch, "result": {"rows": 3}, **change}

    with pytest.raises(IdempotencyKeyReusedError) as refused:
        app.complete_task(c.CompleteTask(task_id, idempotency_key=key, **body), WORKER)

    assert refused.value.code == "idempotency-key-reused"
    assert _events(app, task_id) == recorded


def test_the_same_result_in_another_key_order_is_the_same_body(app: TaskLedger) -> None:
    task_id, epoch = _running(app)
    key = _key()
    first = app.complete_task(c.CompleteTask(task_id, epoch, {"a": 1, "b": [2]}, idempotency_key=key), WORKER)

    again = app.complete_task(c.CompleteTask(task_id, epoch, {"b": [2], "a": 1}, idempotency_key=key), WORKER)

    assert again.replayed and _receipt(again) == _receipt(first)


def test_a_key_belongs_to_the_user_who_sent_it(app: TaskLedger) -> None:
    task_id, epoch = _running(app)
    key = _key()
    app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}, idempotency_key=key), WORKER)

    with pytest.raises(IllegalTransitionError):  # its own refusal, not the worker's receipt
        app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}, idempotency_key=key), ADMIN)


def test_a_retried_fail_after_the_requeued_task_was_claimed_again_answers_the_first_receipt(app: TaskLedger) -> None:
    task_id, epoch = _running(app, max_retries=1)
    key = _key()
    first = app.fail_task(c.FailTask(task_id, epoch, "disk full", idempotency_key=key), WORKER)
    assert app.current_task(task_id).state == st.QUEUED
    second_lease = app.start_task(c.StartTask(task_id, "w2"), OTHER_WORKER).lease_epoch
    for progress in (10.0, 20.0, 30.0):
        app.record_heartbeat(c.RecordHeartbeat(task_id, second_lease or 0, progress), OTHER_WORKER)
    recorded = _events(app, task_id)

    again = app.fail_task(c.FailTask(task_id, epoch, "disk full", idempotency_key=key), WORKER)

    assert again.replayed and _receipt(again) == _receipt(first) and again.lease_epoch == epoch
    assert _events(app, task_id) == recorded
    assert app.current_task(task_id).worker == "w2"  # the new lease is untouched
    with pytest.raises(LeaseMismatchError):
        app.fail_task(c.FailTask(task_id, epoch, "disk full"), WORKER)


@pytest.mark.parametrize("change", [{"error": "disk fuller"}, {"retry": False}, {"lease_epoch": 7}])
def test_the_key_of_a_fail_with_another_body_is_refused_and_nothing_recorded(
        app: TaskLedger, change: dict[str, Any]) -> None:
    task_id, epoch = _running(app, max_retries=1)
    key = _key()
    app.fail_task(c.FailTask(task_id, epoch, "disk full", retry=True, idempotency_key=key), WORKER)
    recorded = _events(app, task_id)
    body: dict[str, Any] = {"lease_epoch": epoch, "error": "disk full", "retry": True, **change}

    with pytest.raises(IdempotencyKeyReusedError):
        app.fail_task(c.FailTask(task_id, idempotency_key=key, **body), WORKER)

    assert _events(app, task_id) == recorded


def test_a_fail_not_requeued_with_retries_left_is_replayed_for_retry_false_only(app: TaskLedger) -> None:
    task_id, epoch = _running(app, max_retries=2)
    key = _key()
    first = app.fail_task(c.FailTask(task_id, epoch, "boom", retry=False, idempotency_key=key), WORKER)
    assert app.current_task(task_id).state == st.FAILED

    again = app.fail_task(c.FailTask(task_id, epoch, "boom", retry=False, idempotency_key=key), WORKER)

    assert again.replayed and _receipt(again) == _receipt(first)
    with pytest.raises(IdempotencyKeyReusedError):  # retry=true would have requeued it
        app.fail_task(c.FailTask(task_id, epoch, "boom", retry=True, idempotency_key=key), WORKER)


@pytest.mark.parametrize("retry", [True, False])
def test_with_no_retry_left_either_retry_flag_replays_the_failure_it_would_have_recorded(
        app: TaskLedger, retry: bool) -> None:
    task_id, epoch = _running(app, max_retries=0)
    key = _key()
    first = app.fail_task(c.FailTask(task_id, epoch, "boom", retry=retry, idempotency_key=key), WORKER)
    assert app.current_task(task_id).state == st.FAILED

    for flag in (retry, not retry):
        again = app.fail_task(c.FailTask(task_id, epoch, "boom", retry=flag, idempotency_key=key), WORKER)
        assert again.replayed and _receipt(again) == _receipt(first)


def test_a_key_used_by_a_complete_is_refused_for_a_fail(app: TaskLedger) -> None:
    task_id, epoch = _running(app)
    key = _key()
    app.complete_task(c.CompleteTask(task_id, epoch, None, idempotency_key=key), WORKER)

    with pytest.raises(IdempotencyKeyReusedError):
        app.fail_task(c.FailTask(task_id, epoch, "boom", idempotency_key=key), WORKER)


def test_a_dropped_task_still_replays_the_receipt(app: TaskLedger) -> None:
    task_id, epoch = _running(app)
    key = _key()
    first = app.complete_task(c.CompleteTask(task_id, epoch, None, idempotency_key=key), WORKER)
    app.drop_task(c.DropTask(task_id), OPERATOR)

    assert _receipt(app.complete_task(c.CompleteTask(task_id, epoch, None, idempotency_key=key), WORKER)) == (
        _receipt(first))
    with pytest.raises(TaskDroppedError):
        app.complete_task(c.CompleteTask(task_id, epoch, None), WORKER)


def test_a_write_older_than_the_look_back_is_not_found(app: TaskLedger) -> None:
    task_id, epoch = _running(app)
    key = _key()
    app.complete_task(c.CompleteTask(task_id, epoch, None, idempotency_key=key), WORKER)

    def retry() -> c.Written:
        return app.complete_task(c.CompleteTask(task_id, epoch, None, idempotency_key=key), WORKER)

    for n in range(REPLAY_LOOKBACK - 1):
        app.close_output(c.CloseOutput(task_id, f"buffer-{n}"), OPERATOR)
    assert retry().replayed  # the Completed event is the 100th newest

    app.close_output(c.CloseOutput(task_id, "one-more"), OPERATOR)

    with pytest.raises(IllegalTransitionError):
        retry()


def test_the_key_is_stored_only_on_events_that_had_one_and_shows_in_the_timeline(app: TaskLedger) -> None:
    task_id, epoch = _running(app, max_retries=1)
    key = _key()
    app.fail_task(c.FailTask(task_id, epoch, "flaky", idempotency_key=key), WORKER)
    epoch = app.start_task(c.StartTask(task_id, "w1"), WORKER).lease_epoch or 0
    app.complete_task(c.CompleteTask(task_id, epoch, {"ok": True}), WORKER)

    stored = [json.loads(app.mapper.to_stored_event(e).state) for e in _events(app, task_id)]
    failed, completed = stored[2], stored[4]
    assert failed["idempotency_key"] == key
    # Without a key the event is stored exactly as before the field existed.
    assert set(completed) == {"timestamp", "actor", "request_id", "facade", "prev_hash", "lease_epoch", "result_json"}
    timeline = app.task_events(task_id)
    assert timeline[2]["data"] == {"lease_epoch": 1, "error": "flaky", "requeued": True, "idempotency_key": key}
    assert timeline[4]["data"] == {"lease_epoch": 2, "result": {"ok": True}}
    assert [e["prev_hash"] for e in timeline[1:]] == [e["hash"] for e in timeline[:-1]]
    assert app.current_task(task_id).chain_hash == timeline[-1]["hash"]
