"""Readable descriptions of stored task events, for timelines, feeds and audits."""

from __future__ import annotations

from typing import Any

from ledger.domain import event_hash
from ledger.state import load_json

META_FIELDS = ("originator_id", "originator_version", "timestamp", "actor", "request_id",
               "facade", "prev_hash", "originator_topic")


def event_type(event: Any) -> str:
    return type(event).__qualname__.split(".")[-1]


def event_data(event: Any) -> dict[str, Any]:
    """The event's own fields, with JSON-text fields decoded under their plain names."""
    data: dict[str, Any] = {}
    for key, value in vars(event).items():
        if key in META_FIELDS:
            continue
        if key.endswith("_json"):
            data[key[: -len("_json")]] = load_json(value)
        else:
            data[key] = value
    return data


def describe_event(event: Any, position: int | None = None) -> dict[str, Any]:
    """One event as the native API and the audit tools show it."""
    described: dict[str, Any] = {
        "task_id": str(event.originator_id),
        "version": event.originator_version,
        "type": event_type(event),
        "time": event.timestamp.isoformat(),
        "actor": getattr(event, "actor", "ledger"),
        "request_id": getattr(event, "request_id", None),
        "facade": getattr(event, "facade", "ledger"),
        "data": event_data(event),
        "hash": event_hash(event),
        "prev_hash": getattr(event, "prev_hash", None),
    }
    if position is not None:
        described["position"] = position
    return described
