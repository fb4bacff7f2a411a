"""IdSequence: sequential numbers per scope, as an aggregate so concurrent allocations never collide."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate


class IdSequence(Aggregate):
    """Hands out sequential numbers within one scope (HugeGraph task ids are numbers per graph)."""

    class Created(Aggregate.Created):
        scope: str

    class Allocated(Aggregate.Event):
        value: int

        def apply(self, aggregate: Any) -> None:
            aggregate.last = self.value

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.last = 0

    def allocate(self, at: datetime) -> int:
        self.trigger_event(self.Allocated, timestamp=at, value=self.last + 1)
        return self.last
