"""The per-stream hash chain: a deterministic content hash of every stored task event."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from ledger.state import dump_json


def event_hash(event: Any) -> str:
    """Deterministic content hash of one stored event (links the per-stream hash chain).

    The canonical JSON of every field and the event's topic: sorted keys, no spaces, UTF-8; times as
    ISO-8601, ids and any other value as their text.
    """
    fields = dict(vars(event))
    fields["topic"] = f"{type(event).__module__}:{type(event).__qualname__}"
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_text_of)
    return hashlib.sha256(text.encode()).hexdigest()


def _text_of(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def reference_hash(event: Any) -> str:
    """The same hash computed the slow, explicit way (kept to check `event_hash` against)."""
    fields = {k: v for k, v in vars(event).items()}
    fields["topic"] = f"{type(event).__module__}:{type(event).__qualname__}"
    return hashlib.sha256(dump_json(_canonical(fields)).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
