"""The client's retry rules (docs/client.md) against a scripted HTTP server: what is sent again, with which
headers, and what is never sent twice. The ledger's own behaviour is tested against the real service in
test_ledger.py and test_worker.py; this server only answers statuses, so each rule is seen in isolation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from taskledger.client import (
    ConnectionFailedError,
    IllegalTransitionError,
    Ledger,
    StaleLeaseError,
    UnavailableError,
)

RECEIPT = {"task_id": "t", "version": 3, "position": 41, "lease_epoch": 1}


class Script:
    """Answers requests from a list of (status, body, headers) in turn, recording what it was sent."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any, dict[str, str]]] = []
        self.seen: list[dict[str, Any]] = []


@pytest.fixture
def script() -> Iterator[tuple[Script, str]]:
    state = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                               "body": json.loads(body) if body else None})
            status, answer, headers = state.answers.pop(0) if state.answers else (200, {}, {})
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _problem(code: str, status: int) -> dict[str, Any]:
    return {"type": f"https://taskledger.dev/problems/{code}", "title": "x", "status": status, "detail": code}


def test_a_complete_is_retried_after_a_503_with_the_same_idempotency_key_and_request_id(
        script: tuple[Script, str]) -> None:
    state, url = script
    state.answers = [(503, _problem("database-unavailable", 503), {"Retry-After": "0"}),
                     (502, {"detail": "bad gateway"}, {}),
                     (200, RECEIPT, {"Ledger-Position": "41", "Idempotent-Replayed": "true"})]
    with Ledger(url, ("w", "p")) as ledger:
        receipt = ledger.complete("t", 1, {"rows": 2})
    assert receipt.replayed and receipt.version == 3
    keys = {s["headers"]["Idempotency-Key"] for s in state.seen}
    request_ids = {s["headers"]["X-Request-Id"] for s in state.seen}
    assert len(state.seen) == 3 and len(keys) == 1 and len(request_ids) == 1
    assert ledger.position == 41


def test_a_claim_or_an_output_page_is_not_sent_again_after_a_503(script: tuple[Script, str]) -> None:
    state, url = script
    state.answers = [(503, _problem("database-unavailable", 503), {"Retry-After": "0"})] * 2
    with Ledger(url, ("w", "p")) as ledger:
        with pytest.raises(UnavailableError):
            ledger.claim("w1", namespace="n")
        with pytest.raises(UnavailableError):
            ledger.output("t", "stdout", 1, "a page")
    assert [s["path"].split("?")[0] for s in state.seen] == ["/ledger/v1/claims", "/ledger/v1/tasks/t/outputs/stdout"]


def test_a_lagging_projection_is_waited_out_even_for_a_claim(script: tuple[Script, str]) -> None:
    state, url = script
    state.answers = [(503, _problem("projection-lagging", 503), {"Retry-After": "0"}), (204, None, {})]
    with Ledger(url, ("w", "p")) as ledger:
        assert ledger.claim("w1") is None
    assert len(state.seen) == 2


@pytest.mark.parametrize("code, error", [("stale-lease", StaleLeaseError),
                                         ("illegal-transition", IllegalTransitionError)])
def test_a_409_is_never_retried(script: tuple[Script, str], code: str, error: type[Exception]) -> None:
    state, url = script
    state.answers = [(409, _problem(code, 409), {})]
    with Ledger(url, ("w", "p")) as ledger, pytest.raises(error):
        ledger.heartbeat("t", 1)
    assert len(state.seen) == 1


def test_reads_send_the_last_written_position_and_history_reads_do_not(script: tuple[Script, str]) -> None:
    state, url = script
    state.answers = [(200, RECEIPT, {"Ledger-Position": "41"}),
                     (200, {"items": [], "total": 0, "total_is_estimate": False, "next_cursor": None}, {}),
                     (200, {"events": [], "next_after_version": 0}, {})]
    with Ledger(url, ("w", "p")) as ledger:
        ledger.progress("t", 1, 50)
        ledger.list(state=["RUNNING", "PAUSED"], label={"team": "data", "urgent": None}, namespace="n")
        ledger.events("t")
    progress, listing, events = state.seen
    assert "Ledger-Min-Position" not in progress["headers"]
    assert listing["headers"]["Ledger-Min-Position"] == "41"
    assert listing["path"] == "/ledger/v1/tasks?state=RUNNING&state=PAUSED&label=team%3Adata&label=urgent&namespace=n"
    assert "Ledger-Min-Position" not in events["headers"]


def test_a_refused_connection_is_retried_then_reported_with_its_reason() -> None:
    with Ledger("http://127.0.0.1:9", ("w", "p"), retries=2, retry_deadline=5) as ledger:
        with pytest.raises(ConnectionFailedError) as failed:
            ledger.claim("w1")  # not repeatable once sent, but this one was never sent
    assert failed.value.reason == "Connection refused"


def test_an_unknown_filter_is_refused_before_sending(script: tuple[Script, str]) -> None:
    state, url = script
    with Ledger(url, ("w", "p")) as ledger, pytest.raises(TypeError, match="nmaespace"):
        ledger.list(nmaespace="typo")
    assert state.seen == []
