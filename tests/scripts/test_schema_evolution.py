"""Schema evolution: an event class changes, events stored in the old form still load, and the hash
chain over them still verifies (docs/tooling.md#schema-evolution describes the same path for Task).

`Ticket` is a throwaway hash-chained aggregate standing in for `Task`. Its `Noted` event gained a
`severity` field in version 2; `V1_ROWS` are the exact rows version 1 of this module stored
(generated once by the old class, then frozen here: a stored fixture of the old JSON).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, StoredEvent

from ledger.domain import event_hash
from taskledger.tools.chain import Link, check_chain
from taskledger.tools.store import Decoder, StoredRow

TICKET_ID = UUID("7d1c3a0e-4b8f-4c1e-9a52-3f0d6b8e2a11")
MODULE = "tests.scripts.test_schema_evolution"
V1_ROWS = [
    (1, f"{MODULE}:Ticket.Opened",
     '{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-02T03:04:05+00:00"},'
     f'"originator_topic":"{MODULE}:Ticket","title":"disk alarm","prev_hash":""}}'),
    (2, f"{MODULE}:Ticket.Noted",
     '{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-02T03:05:00+00:00"},"text":"disk 91% full",'
     '"prev_hash":"1bbfb64268fed0ea3dbb34c31a6b80dd0f55d921e744293f3d470e39f16873e6"}'),
    (3, f"{MODULE}:Ticket.Noted",
     '{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-02T03:09:30+00:00"},"text":"cleaned /var/log",'
     '"prev_hash":"6951f62d6384c11d47d801f734309f35c7c20adc08e92783caa47209eece2688"}'),
]


def _head(event: Any) -> str:
    """The hash the next event links to: the hash of what was written, even if it was upcast since."""
    return str(vars(event).get("_written_hash") or event_hash(event))


class Ticket(Aggregate):
    class Opened(Aggregate.Created):
        title: str
        prev_hash: str

        def apply(self, aggregate: Any) -> None:
            aggregate.head = _head(self)

    class Noted(Aggregate.Event):
        class_version = 2
        text: str
        severity: str
        prev_hash: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 had no severity: every note then was informational."""
            state["severity"] = "info"

        def apply(self, aggregate: Any) -> None:
            aggregate.notes.append((self.text, self.severity))
            aggregate.head = _head(self)

    def __init__(self, title: str, prev_hash: str) -> None:
        self.title = title
        self.notes: list[tuple[str, str]] = []
        self.head = ""

    def note(self, text: str, severity: str) -> None:
        self.trigger_event(self.Noted, text=text, severity=severity, prev_hash=self.head)


class WrittenHashMapper(Mapper[UUID]):
    """Remembers, on each loaded event, the hash of its stored form (what its successor recorded)."""

    def to_domain_event(self, stored: StoredEvent) -> Any:
        event = super().to_domain_event(stored)
        row = StoredRow(0, UUID(str(stored.originator_id)), stored.originator_version, stored.topic, stored.state)
        event.__dict__["_written_hash"] = event_hash(Decoder(self).stored_form(row))
        return event


class Tickets(Application[UUID]):
    def construct_mapper(self) -> Mapper[UUID]:
        return WrittenHashMapper(transcoder=self.construct_transcoder())


def _tickets_with_v1_rows() -> Tickets:
    app = Tickets({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.recorder.insert_events([StoredEvent(TICKET_ID, version, topic, state.encode())
                                for version, topic, state in V1_ROWS])
    return app


def _stored(app: Tickets) -> list[StoredRow]:
    return [StoredRow(0, UUID(str(s.originator_id)), s.originator_version, s.topic, s.state)
            for s in app.recorder.select_events(TICKET_ID)]


def test_events_stored_in_the_old_form_load_through_the_upcaster() -> None:
    app = _tickets_with_v1_rows()

    ticket: Any = app.repository.get(TICKET_ID)

    assert ticket.notes == [("disk 91% full", "info"), ("cleaned /var/log", "info")]
    assert ticket.version == 3


def test_new_events_are_stored_in_the_new_form_next_to_the_old_ones() -> None:
    app = _tickets_with_v1_rows()
    ticket: Any = app.repository.get(TICKET_ID)
    ticket.note("volume resized", "warning")
    app.save(ticket)

    newest = json.loads(_stored(app)[-1].state)
    reloaded: Any = app.repository.get(TICKET_ID)

    assert newest["class_version"] == 2 and newest["severity"] == "warning"
    assert [json.loads(r.state).get("class_version") for r in _stored(app)[:3]] == [None, None, None]
    assert reloaded.notes[-1] == ("volume resized", "warning") and len(reloaded.notes) == 3


def test_the_hash_chain_over_old_and_new_events_verifies_after_the_upcast() -> None:
    app = _tickets_with_v1_rows()
    ticket: Any = app.repository.get(TICKET_ID)
    ticket.note("volume resized", "warning")
    app.save(ticket)
    decoder = Decoder(app.mapper)
    rows = _stored(app)

    links = [Link.of(decoder.stored_form(row)) for row in rows]

    assert check_chain(str(TICKET_ID), links) == []
    upcast_second = decoder.event(rows[1])
    assert upcast_second.severity == "info"
    assert event_hash(_without_written_hash(upcast_second)) != links[2].prev_hash, (
        "hashing the upcast event instead of the stored form would report an untouched event as edited")


def _without_written_hash(event: Any) -> Any:
    bare = object.__new__(type(event))
    bare.__dict__.update({k: v for k, v in vars(event).items() if k != "_written_hash"})
    return bare
