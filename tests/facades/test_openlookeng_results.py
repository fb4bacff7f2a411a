"""openLooKeng output pages: `GET .../results/{bufferId}/{token}`, acknowledgements, closing a buffer."""

from __future__ import annotations

import threading
import time

import requests

from ledger.application import TaskLedger
from tests.facades.openlookeng_support import Presto, no_event, presto

__all__ = ["presto"]

FAST = {"X-Presto-Max-Wait": "100ms"}


def page_headers(answer: requests.Response) -> tuple[str, str, str]:
    headers = answer.headers
    return (headers["X-Presto-Page-Sequence-Id"], headers["X-Presto-Page-End-Sequence-Id"],
            headers["X-Presto-Buffer-Complete"])


def test_pages_come_back_from_a_token_with_the_next_token_and_the_complete_flag(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    for data, last in (("page-a;", False), ("page-b;", False), ("page-c;", True)):
        presto.append(uuid, epoch, data, last=last)
    answer = presto.get(f"/v1/task/{tid}/results/0/0", role="viewer")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/X-presto-pages"
    assert answer.content == b"page-a;page-b;page-c;"
    assert page_headers(answer) == ("0", "3", "true")
    later = presto.get(f"/v1/task/{tid}/results/0/1")
    assert later.content == b"page-b;page-c;" and page_headers(later) == ("1", "3", "true")


def test_max_size_pages_through_the_buffer_one_token_at_a_time(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    for data in ("aaaa", "bbbb", "cccc"):
        presto.append(uuid, epoch, data)
    seen = []
    token = 0
    while True:
        answer = presto.get(f"/v1/task/{tid}/results/0/{token}", headers={"X-Presto-Max-Size": "6B", **FAST})
        if answer.status_code == 204:
            break
        seen.append((answer.content, page_headers(answer)))
        token = int(answer.headers["X-Presto-Page-End-Sequence-Id"])
    assert seen == [(b"aaaa", ("0", "1", "false")), (b"bbbb", ("1", "2", "false")), (b"cccc", ("2", "3", "false"))]
    assert page_headers(answer) == ("3", "3", "false") and answer.content == b""


def test_no_page_ready_is_204_with_the_same_token_after_the_wait(presto: Presto) -> None:
    tid, _, _ = presto.running()
    began = time.monotonic()
    answer = presto.get(f"/v1/task/{tid}/results/0/0")
    took = time.monotonic() - began
    assert answer.status_code == 204 and answer.content == b""
    assert page_headers(answer) == ("0", "0", "false")
    assert 1.0 <= took < 3  # the real server also holds an empty read for about a second


def test_a_page_appended_while_waiting_is_answered_at_once(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()

    def append() -> None:
        time.sleep(0.3)
        presto.append(uuid, epoch, "late page")

    thread = threading.Thread(target=append)
    thread.start()
    answer = presto.get(f"/v1/task/{tid}/results/0/0", headers={"X-Presto-Max-Wait": "2s"})
    thread.join()
    assert answer.status_code == 200 and answer.content == b"late page"
    assert page_headers(answer) == ("0", "1", "false")


def test_a_finished_buffer_read_to_its_end_is_complete(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    presto.append(uuid, epoch, "only", last=True, buffer="out")
    answer = presto.get(f"/v1/task/{tid}/results/out/1")
    assert answer.status_code == 204 and page_headers(answer) == ("1", "1", "true")


def test_a_buffer_of_a_task_that_ended_without_output_is_complete_at_once(presto: Presto) -> None:
    tid = presto.create()["taskId"]
    presto.delete(f"/v1/task/{tid}")
    began = time.monotonic()
    answer = presto.get(f"/v1/task/{tid}/results/3/0")
    assert answer.status_code == 204 and page_headers(answer) == ("0", "0", "true")
    assert time.monotonic() - began < 1


def test_closing_a_buffer_records_it_once_and_stops_serving_its_pages(presto: Presto, ledger_app: TaskLedger) -> None:
    tid, uuid, epoch = presto.running()
    presto.append(uuid, epoch, "unread")
    answer = presto.delete(f"/v1/task/{tid}/results/0", role="worker")
    assert answer.status_code == 204 and answer.content == b""
    events = presto.get(f"/ledger/v1/tasks/{uuid}/events").json()["events"]
    assert events[-1]["type"] == "OutputClosed" and events[-1]["facade"] == "openlookeng"
    with no_event(ledger_app):
        assert presto.delete(f"/v1/task/{tid}/results/0").status_code == 204
    after = presto.get(f"/v1/task/{tid}/results/0/0")
    assert after.status_code == 204 and page_headers(after) == ("0", "0", "true")
    buffers = presto.get(f"/v1/task/{tid}").json()["outputBuffers"]["buffers"]
    assert [{k: b[k] for k in ("bufferId", "finished", "bufferedPages", "pagesSent")} for b in buffers] == [
        {"bufferId": "0", "finished": True, "bufferedPages": 0, "pagesSent": 0}]


def test_an_acknowledgement_is_204_and_records_nothing(presto: Presto, ledger_app: TaskLedger) -> None:
    tid, uuid, epoch = presto.running()
    presto.append(uuid, epoch, "page")
    with no_event(ledger_app):
        answer = presto.get(f"/v1/task/{tid}/results/0/1/acknowledge", role="viewer")
    assert answer.status_code == 204 and answer.content == b""
    assert presto.get(f"/v1/task/{tid}/results/0/0").content == b"page"


def test_a_buffer_of_a_failed_task_read_to_its_end_is_complete_at_once(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    presto.append(uuid, epoch, "partial")
    presto.native("POST", f"/tasks/{uuid}/fail", {"lease_epoch": epoch, "error": "boom"}, role="worker")
    assert page_headers(presto.get(f"/v1/task/{tid}/results/0/0")) == ("0", "1", "true")
    began = time.monotonic()
    answer = presto.get(f"/v1/task/{tid}/results/0/1")
    assert answer.status_code == 204 and page_headers(answer) == ("1", "1", "true")
    assert time.monotonic() - began < 1
