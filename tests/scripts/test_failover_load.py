"""The failover test's writers: a start answered 503 that had committed is recognised, a refusal is not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.failover.load import Abandoned, Load
from taskledger.client import Receipt
from taskledger.client.errors import IllegalTransitionError, UnavailableError


def _answers(*outcomes: BaseException | Receipt) -> Callable[[], Any]:
    """A call answering each outcome in turn (an exception is raised)."""
    pending: Iterator[BaseException | Receipt] = iter(outcomes)

    def call() -> Any:
        outcome = next(pending)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return call


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Load:
    import time

    monkeypatch.setattr(time, "sleep", lambda _seconds: None)  # no pause between tries here
    return Load(bases=[], auth=("u", "p"))


UNAVAILABLE = UnavailableError(503, {"type": "database-unavailable"})
ALREADY_RUNNING = IllegalTransitionError(409, {"type": "illegal-transition"})
LANDED = Receipt("t", 2, 0, 1)


def test_a_start_refused_after_an_unanswered_try_is_the_tasks_start_when_the_task_says_so(load: Load) -> None:
    receipt, _sent = load._persist(_answers(UNAVAILABLE, ALREADY_RUNNING), landed=lambda: LANDED)
    assert receipt == LANDED and load.landed_unanswered == 1
    assert load.errors == {"UnavailableError 503": 1}


def test_a_start_refused_at_its_first_try_is_a_refusal_whatever_the_task_says(load: Load) -> None:
    with pytest.raises(Abandoned):
        load._persist(_answers(ALREADY_RUNNING), landed=lambda: LANDED)
    assert load.landed_unanswered == 0 and load.errors == {"IllegalTransitionError 409": 1}


def test_a_refusal_after_an_unanswered_try_stays_one_when_the_task_is_not_ours(load: Load) -> None:
    with pytest.raises(Abandoned):
        load._persist(_answers(UNAVAILABLE, ALREADY_RUNNING), landed=lambda: None)
    assert load.landed_unanswered == 0 and load.errors == {"UnavailableError 503": 1, "IllegalTransitionError 409": 1}
