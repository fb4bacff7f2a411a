"""Which stored events a projection reads, decided from the topic before any event is decoded."""

from __future__ import annotations

from functools import lru_cache

from eventsourcing.utils import resolve_topic


@lru_cache(maxsize=1024)
def topic_is(topic: str, *classes: type) -> bool:
    """Whether a stored topic names one of these event classes (renamed topics resolve as the library does)."""
    return issubclass(resolve_topic(topic), classes)
