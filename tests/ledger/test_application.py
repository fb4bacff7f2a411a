"""TaskLedger: idempotent creates, external ids, optimistic updates and claims."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import external_task_id, idempotent_task_id
from ledger.domain import Task
from ledger.errors import (
    DuplicateTaskError,
    IdempotencyKeyReusedError,
    NoTaskAvailableError,
    TaskNotFoundError,
    VersionMismatchError,
)
from tests.ledger.support import OPERATOR, WORKER, Clock, drive, events_of, new_ledger, state_of

ALICE = c.Caller("alice", "req-1")
BOB = c.Caller("bob", "req-2")
BODY = c.CreateTask("ns", "export", input={"table": "orders"}, labels={"team": "bi"}, steps=("a",),
                    idempotency_key="key-1")


def test_creating_a_task_records_one_created_event_with_the_commands_fields() -> None:
    clock = Clock()
    app = new_ledger(clock)

    written = app.create_task(c.CreateTask("ns", "export", type="pandora", input={"q": 1},
                                           labels={"team": "bi"}, steps=("a", "b"), max_retries=2,
                                           heartbeat_timeout=30, schedule={"cron": "0 0 * * * ?"}), ALICE)

    (created,) = events_of(app, written.task_id)
    assert isinstance(created, Task.Created)
    assert (written.version, written.position, written.replayed) == (1, 1, False)
    state = state_of(app, written.task_id)
    assert (state.id, state.namespace, state.facade, state.name, state.type, state.submitter) == (
        str(written.task_id), "ns", "native", "export", "pandora", "alice")
    assert (state.input, state.labels, state.max_retries, state.heartbeat_timeout, state.schedule) == (
        {"q": 1}, {"team": "bi"}, 2, 30.0, {"cron": "0 0 * * * ?", "timezone": "UTC", "catch_up": "missed", "overlap": "skip"})
    assert state.steps == [{"name": "a", "status": "PENDING", "output": ""},
                           {"name": "b", "status": "PENDING", "output": ""}]
    assert (state.state, state.progress, state.retries, state.lease_epoch, state.version) == (st.QUEUED, 0.0, 0, 0, 1)


def test_an_explicit_submitter_is_kept_instead_of_the_actor() -> None:
    app = new_ledger()

    task_id = app.create_task(c.CreateTask("ns", "n", submitter="etl-bot"), ALICE).task_id

    assert state_of(app, task_id).submitter == "etl-bot"


def test_repeating_a_create_with_the_same_idempotency_key_and_body_returns_the_first_answer() -> None:
    app = new_ledger()
    first = app.create_task(BODY, ALICE)

    again = app.create_task(BODY, c.Caller("alice", "req-retry"))

    assert (again.task_id, again.version, again.replayed) == (first.task_id, 1, True)
    assert first.task_id == idempotent_task_id("alice", "key-1")
    assert len(events_of(app, first.task_id)) == 1
    assert app.head_position() == 1


def test_a_replayed_create_answers_the_first_version_even_after_the_task_moved_on() -> None:
    app = new_ledger()
    first = app.create_task(BODY, ALICE)
    app.start_task(c.StartTask(first.task_id, "w"), WORKER)

    again = app.create_task(BODY, ALICE)

    assert (again.task_id, again.version, again.replayed) == (first.task_id, 1, True)
    assert len(events_of(app, first.task_id)) == 2


@pytest.mark.parametrize("change", [{"name": "other"}, {"input": {"table": "users"}}, {"steps": ("a", "b")},
                                    {"labels": {}}, {"max_retries": 1}])
def test_reusing_an_idempotency_key_with_a_different_body_is_refused(change: dict) -> None:
    app = new_ledger()
    first = app.create_task(BODY, ALICE)
    different = c.CreateTask(**{**vars(BODY), **change})

    with pytest.raises(IdempotencyKeyReusedError) as refused:
        app.create_task(different, ALICE)

    assert refused.value.key == "key-1"
    assert len(events_of(app, first.task_id)) == 1
    assert app.head_position() == 1


def test_idempotency_keys_belong_to_the_actor_who_sent_them() -> None:
    app = new_ledger()

    mine = app.create_task(BODY, ALICE)
    theirs = app.create_task(BODY, BOB)

    assert mine.task_id != theirs.task_id
    assert not theirs.replayed
    assert app.head_position() == 2


def test_a_create_without_idempotency_key_makes_a_new_task_every_time() -> None:
    app = new_ledger()
    body = c.CreateTask("ns", "n")

    ids = {app.create_task(body, ALICE).task_id for _ in range(3)}

    assert len(ids) == 3


def test_a_task_with_an_external_id_gets_the_deterministic_id_of_its_namespace_and_id() -> None:
    app = new_ledger()
    kylin = c.Caller("alice", "req-1", "kylin")

    written = app.create_task(c.CreateTask("learn_kylin", "cube", external_id="job-42"), kylin)

    assert written.task_id == external_task_id("learn_kylin", "job-42")
    state = state_of(app, written.task_id)
    assert (state.facade, state.external_ids) == ("kylin", {"kylin": "job-42"})


def test_creating_a_second_task_with_the_same_external_id_is_refused() -> None:
    app = new_ledger()
    kylin = c.Caller("alice", "req-1", "kylin")
    first = app.create_task(c.CreateTask("learn_kylin", "cube", external_id="job-42"), kylin)

    with pytest.raises(DuplicateTaskError) as refused:
        app.create_task(c.CreateTask("learn_kylin", "another cube", external_id="job-42"),
                        c.Caller("bob", "req-2", "kylin"))

    assert (refused.value.task_id, refused.value.external_id) == (first.task_id, "job-42")
    assert state_of(app, first.task_id).name == "cube"
    assert app.head_position() == 1


def test_the_same_external_id_in_another_namespace_is_another_task_whatever_the_facade() -> None:
    app = new_ledger()

    a = app.create_task(c.CreateTask("kylin:a", "n", external_id="7"), c.Caller("a", "r", "kylin")).task_id
    b = app.create_task(c.CreateTask("kylin:b", "n", external_id="7"), c.Caller("a", "r", "kylin")).task_id
    with pytest.raises(DuplicateTaskError):
        app.create_task(c.CreateTask("kylin:a", "n", external_id="7"), c.Caller("a", "r", "native"))

    assert a != b
    assert state_of(app, a).external_ids == {"kylin": "7"}


def test_tasks_of_a_hugegraph_namespace_are_numbered_one_two_three_per_namespace() -> None:
    app = new_ledger()
    native, hugegraph = c.Caller("a", "r", "native"), c.Caller("a", "r", "hugegraph")

    first = app.create_task(c.CreateTask("hugegraph:DEFAULT/g1", "gremlin"), hugegraph)
    second = app.create_task(c.CreateTask("hugegraph:DEFAULT/g1", "made natively"), native)
    other_graph = app.create_task(c.CreateTask("hugegraph:DEFAULT/g2", "gremlin"), hugegraph)

    assert [state_of(app, w.task_id).external_ids for w in (first, second, other_graph)] == [
        {"hugegraph": "1"}, {"hugegraph": "2"}, {"hugegraph": "1"}]
    assert first.task_id == external_task_id("hugegraph:DEFAULT/g1", "1")


def test_an_idempotent_retry_in_a_numbered_namespace_replays_the_first_task_and_number() -> None:
    app = new_ledger()
    caller = c.Caller("a", "r", "hugegraph")
    body = c.CreateTask("hugegraph:DEFAULT/g1", "gremlin", idempotency_key="k1")

    first = app.create_task(body, caller)
    again = app.create_task(body, caller)

    assert (again.task_id, again.replayed) == (first.task_id, True)
    assert state_of(app, first.task_id).external_ids == {"hugegraph": "1"}


def test_an_idempotent_retry_of_an_external_id_create_is_replayed_not_refused() -> None:
    app = new_ledger()
    caller = c.Caller("alice", "req-1", "openlookeng")
    body = c.CreateTask("node-1", "query", external_id="20240301_0001.1.0", idempotency_key="k")
    first = app.create_task(body, caller)

    again = app.create_task(body, caller)

    assert (again.task_id, again.replayed) == (first.task_id, True)
    with pytest.raises(DuplicateTaskError):
        app.create_task(c.CreateTask("node-1", "query", external_id="20240301_0001.1.0",
                                     idempotency_key="k", input={"sql": "select 2"}), caller)


def test_an_update_with_the_current_expected_version_is_recorded() -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)

    written = app.update_task(c.UpdateTask(task.task_id, {"name": "v2"}, expected_version=1), OPERATOR)

    assert written.version == 2
    assert state_of(app, task.task_id).name == "v2"
    assert events_of(app, task.task_id)[-1].changes_json == '{"name":"v2"}'


@pytest.mark.parametrize("expected", [0, 2, 7])
def test_an_update_with_a_stale_expected_version_is_refused(expected: int) -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)

    with pytest.raises(VersionMismatchError) as refused:
        app.update_task(c.UpdateTask(task.task_id, {"name": "v2"}, expected_version=expected), OPERATOR)

    assert (refused.value.expected, refused.value.actual) == (expected, 1)
    assert len(events_of(app, task.task_id)) == 1


def test_acting_on_an_unknown_task_raises_task_not_found() -> None:
    app = new_ledger()
    missing = uuid4()

    with pytest.raises(TaskNotFoundError) as refused:
        app.pause_task(c.PauseTask(missing), OPERATOR)

    assert refused.value.task_id == missing


def test_a_claim_starts_the_first_candidate_that_is_still_queued() -> None:
    app = new_ledger()
    running = drive(app, st.RUNNING).task_id
    paused = drive(app, st.PAUSED).task_id
    dropped = drive(app, st.QUEUED).task_id
    app.drop_task(c.DropTask(dropped, force=True), OPERATOR)
    queued = drive(app, st.QUEUED).task_id
    later = drive(app, st.QUEUED).task_id

    written = app.claim_task(c.ClaimTask("worker-9", (uuid4(), running, paused, dropped, queued, later)),
                             c.Caller("worker-9", "req-claim"))

    assert (written.task_id, written.lease_epoch) == (queued, 1)
    claimed = state_of(app, queued)
    assert (claimed.state, claimed.worker) == (st.RUNNING, "worker-9")
    assert state_of(app, later).state == st.QUEUED
    assert isinstance(events_of(app, queued)[-1], Task.Started)


def test_a_claim_with_no_queued_candidate_raises_no_task_available() -> None:
    app = new_ledger()
    running = drive(app, st.RUNNING).task_id
    done = drive(app, st.SUCCEEDED).task_id
    head = app.head_position()

    with pytest.raises(NoTaskAvailableError):
        app.claim_task(c.ClaimTask("worker-9", (running, done, uuid4())), WORKER)
    with pytest.raises(NoTaskAvailableError):
        app.claim_task(c.ClaimTask("worker-9", ()), WORKER)

    assert app.head_position() == head


def test_two_claims_over_the_same_candidates_never_get_the_same_task() -> None:
    app = new_ledger()
    candidates = (drive(app, st.QUEUED).task_id, drive(app, st.QUEUED).task_id)

    first = app.claim_task(c.ClaimTask("w1", candidates), WORKER)
    second = app.claim_task(c.ClaimTask("w2", candidates), WORKER)

    assert (first.task_id, second.task_id) == candidates
    with pytest.raises(NoTaskAvailableError):
        app.claim_task(c.ClaimTask("w3", candidates), WORKER)


def test_an_id_sequence_named_where_a_task_is_meant_is_no_task() -> None:
    # The global event feed shows every aggregate's id, the ledger's own id sequences' too: a client that
    # sends one of those to a task command is told there is no such task (it was an AttributeError, a 500).
    from ledger.application import sequence_id

    app = new_ledger(Clock())
    app.allocate_number("hugegraph:DEFAULT/g")
    sequence = sequence_id("hugegraph:DEFAULT/g")

    for act in (lambda: app.pause_task(c.PauseTask(sequence), OPERATOR),
                lambda: app.abort_task(c.AbortTask(sequence), OPERATOR),
                lambda: app.record_heartbeat(c.RecordHeartbeat(sequence, 1), WORKER),
                lambda: app.current_task(sequence),
                lambda: app.task_as_of(sequence, version=1),
                lambda: app.task_as_of(sequence, at=datetime(2030, 1, 1, tzinfo=timezone.utc)),
                lambda: app.task_events(sequence),
                lambda: app.task_events(sequence, after_version=1)):
        with pytest.raises(TaskNotFoundError):
            act()
    (refused,) = app.record_heartbeats([c.RecordHeartbeat(sequence, 1)], WORKER)
    assert isinstance(refused, TaskNotFoundError)
    assert app.allocate_number("hugegraph:DEFAULT/g") == 2  # the sequence itself is untouched
