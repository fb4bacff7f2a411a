"""openLooKeng long polls (`X-Presto-Current-State`/`X-Presto-Max-Wait`) and `DELETE /v1/task/{id}`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from api.facades.longpoll import PER_USER, LongPolls
from ledger.application import TaskLedger, external_task_id
from tests.facades.openlookeng_support import Presto, no_event, presto

__all__ = ["presto"]


def _later(seconds: float, action: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("path", ["/v1/task/{tid}", "/v1/task/{tid}/status"])
def test_a_long_poll_returns_as_soon_as_the_state_changes(presto: Presto, path: str) -> None:
    tid = presto.create()["taskId"]
    ledger_id = external_task_id("openlookeng:default", tid)
    thread = _later(0.3, lambda: presto.native("POST", f"/tasks/{ledger_id}/start", {"worker": "w"}, role="worker"))
    began = time.monotonic()
    answer = presto.get(path.format(tid=tid), headers={"X-Presto-Current-State": "PLANNED",
                                                       "X-Presto-Max-Wait": "10.00s"})
    took = time.monotonic() - began
    thread.join()
    assert answer.status_code == 200 and answer.json()["state"] == "RUNNING"
    assert 0.25 <= took < 5


def test_a_long_poll_on_an_unchanged_task_answers_when_the_wait_ends(presto: Presto) -> None:
    tid = presto.create()["taskId"]
    began = time.monotonic()
    answer = presto.get(f"/v1/task/{tid}", headers={"X-Presto-Current-State": "PLANNED", "X-Presto-Max-Wait": "600ms"})
    took = time.monotonic() - began
    assert answer.status_code == 200 and answer.json()["state"] == "PLANNED"
    assert 0.6 <= took < 3


def test_a_long_poll_answers_at_once_when_the_state_already_differs_or_a_header_is_missing(presto: Presto) -> None:
    tid = presto.create()["taskId"]
    for headers in ({"X-Presto-Current-State": "RUNNING", "X-Presto-Max-Wait": "20s"},
                    {"X-Presto-Max-Wait": "20s"}, {"X-Presto-Current-State": "PLANNED"}):
        began = time.monotonic()
        assert presto.get(f"/v1/task/{tid}", headers=headers).json()["state"] == "PLANNED"
        assert time.monotonic() - began < 3


def test_one_user_waits_in_at_most_eight_long_polls_at_once_and_others_still_wait(presto: Presto) -> None:
    tid = presto.create()["taskId"]
    poll = {"X-Presto-Current-State": "PLANNED", "X-Presto-Max-Wait": "4s"}
    took: list[float] = []

    def hog() -> None:
        began = time.monotonic()
        presto.get(f"/v1/task/{tid}/status", role="viewer", headers=poll)
        took.append(time.monotonic() - began)

    hogs = [threading.Thread(target=hog) for _ in range(PER_USER)]
    for thread in hogs:
        thread.start()
    time.sleep(1.0)  # all eight are waiting now
    began = time.monotonic()
    ninth = presto.get(f"/v1/task/{tid}", role="viewer", headers=poll)
    assert ninth.status_code == 200 and ninth.json()["state"] == "PLANNED"
    assert time.monotonic() - began < 2, "the ninth poll of one user answers the current state at once"
    began = time.monotonic()
    other = presto.get(f"/v1/task/{tid}", role="operator", headers={**poll, "X-Presto-Max-Wait": "600ms"})
    assert other.status_code == 200 and time.monotonic() - began >= 0.6, "another user's poll still waits"
    for thread in hogs:
        thread.join()
    assert len(took) == PER_USER and min(took) >= 3.5


def test_long_polls_are_bounded_per_user_and_in_all() -> None:
    polls = LongPolls(per_user=2, total=3)
    with polls.slot("a") as a1, polls.slot("a") as a2, polls.slot("a") as a3:
        assert (a1, a2, a3) == (True, True, False)
        with polls.slot("b") as b1, polls.slot("c") as c1:
            assert (b1, c1) == (True, False)
    with polls.slot("a") as again:
        assert again, "slots are given back when the polls end"
    assert polls.refused == 2


@pytest.mark.parametrize(("query", "state"), [
    ("", "ABORTED"), ("?targetState=ABORTED", "ABORTED"), ("?targetState=CANCELED", "CANCELED"),
    ("?abort=true", "ABORTED"), ("?abort=false", "CANCELED"), ("?abort=FALSE", "CANCELED"),
])
def test_delete_ends_a_planned_task_in_the_target_state(presto: Presto, query: str, state: str) -> None:
    tid = presto.create()["taskId"]
    answer = presto.delete(f"/v1/task/{tid}{query}", role="worker")
    assert answer.status_code == 200
    info = answer.json()
    assert (info["state"], info["version"]) == (state, 2) and "endTime" in info["stats"]
    assert presto.get(f"/v1/task/{tid}").json()["state"] == state


def test_cancelling_a_running_task_waits_for_its_worker_so_it_still_shows_running(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    answer = presto.delete(f"/v1/task/{tid}?targetState=CANCELED", role="operator")
    assert answer.status_code == 200 and answer.json()["state"] == "RUNNING"
    native = presto.get(f"/ledger/v1/tasks/{uuid}").json()
    assert native["state"] == "CANCELLING"
    heartbeat = presto.native("POST", f"/tasks/{uuid}/heartbeat", {"lease_epoch": epoch}, role="worker")
    assert heartbeat["directive"] == "cancel"


def test_a_worker_may_finish_or_fail_its_running_task_through_delete(presto: Presto) -> None:
    finished, _, _ = presto.running()
    answer = presto.delete(f"/v1/task/{finished}?targetState=FINISHED", role="worker")
    assert answer.status_code == 200 and answer.json()["state"] == "FINISHED"
    failed, uuid, _ = presto.running()
    answer = presto.delete(f"/v1/task/{failed}?targetState=FAILED", role="worker")
    assert answer.status_code == 200 and answer.json()["state"] == "FAILED"
    assert answer.json()["failures"][0]["message"] == "failed through DELETE /v1/task (targetState=FAILED)"
    assert presto.get(f"/ledger/v1/tasks/{uuid}").json()["state"] == "FAILED"


@pytest.mark.parametrize("query", ["", "?targetState=CANCELED", "?targetState=FINISHED", "?abort=false"])
def test_delete_of_a_task_already_done_answers_it_unchanged_and_records_nothing(
        presto: Presto, ledger_app: TaskLedger, query: str) -> None:
    tid = presto.create()["taskId"]
    assert presto.delete(f"/v1/task/{tid}").json()["state"] == "ABORTED"
    with no_event(ledger_app):
        answer = presto.delete(f"/v1/task/{tid}{query}")
    assert answer.status_code == 200 and (answer.json()["state"], answer.json()["version"]) == ("ABORTED", 2)


def test_finishing_a_planned_task_is_refused_with_409(presto: Presto, ledger_app: TaskLedger) -> None:
    tid = presto.create()["taskId"]
    with no_event(ledger_app):
        answer = presto.delete(f"/v1/task/{tid}?targetState=FINISHED", role="worker")
    assert answer.status_code == 409 and answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == f"Task {tid} is PLANNED; only a RUNNING task can be moved to FINISHED."


def test_failing_a_suspended_task_is_refused_with_409(presto: Presto, ledger_app: TaskLedger) -> None:
    tid, uuid, _ = presto.running()
    presto.native("POST", f"/tasks/{uuid}/pause", {}, role="operator")
    with no_event(ledger_app):
        answer = presto.delete(f"/v1/task/{tid}?targetState=FAILED", role="worker")
    assert answer.status_code == 409
    assert answer.text == f"Task {tid} is SUSPENDED; only a RUNNING task can be moved to FAILED."


def test_finishing_a_task_whose_cancel_is_pending_is_refused_with_409(presto: Presto, ledger_app: TaskLedger) -> None:
    tid, uuid, _ = presto.running()
    presto.delete(f"/v1/task/{tid}?targetState=CANCELED")
    with no_event(ledger_app):
        answer = presto.delete(f"/v1/task/{tid}?targetState=FINISHED", role="worker")
    assert answer.status_code == 409 and f"Task {tid} is being canceled" in answer.text
    assert "CANCELLING" not in answer.text and uuid not in answer.text


def test_an_operator_may_not_finish_a_task_only_its_worker_may(presto: Presto, ledger_app: TaskLedger) -> None:
    tid, _, _ = presto.running()
    with no_event(ledger_app):
        answer = presto.delete(f"/v1/task/{tid}?targetState=FINISHED", role="operator")
    assert answer.status_code == 403 and answer.headers["Content-Type"].startswith("text/plain")

