"""The per-stream hash chain check: which stored events were edited, deleted or moved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ledger.domain import event_hash
from taskledger.tools.store import hash_at


@dataclass(frozen=True)
class Finding:
    """One problem verify (or audit) found: which check, which task and version, what and why."""

    check: str
    task_id: str | None
    version: int | None
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Link:
    """One stored event of a chained stream: its content hash and the predecessor hash it recorded."""

    version: int
    hash: str
    prev_hash: str
    written: Any

    @classmethod
    def of(cls, written: Any) -> Link:
        return cls(written.originator_version, event_hash(written), written.prev_hash, written)


@dataclass(frozen=True)
class Head:
    """What the task view recorded when it last applied this stream: the version and its hash."""

    version: int
    chain_hash: str


def check_chain(task_id: str, links: Sequence[Link], head: Head | None = None,
                absent: Sequence[int] = ()) -> list[Finding]:
    """Every break in one stream's chain, named by version.

    An event is intact when its successor recorded its hash. The last event has no successor, so
    only the task view's recorded head can vouch for it; without one an edit of the last event is
    invisible to the chain (see docs/tooling.md). `absent` lists versions stored but undecodable.
    """
    by_version = {link.version: link for link in links}
    top = max([0, *by_version, *absent, *([head.version] if head else [])])
    findings = [_deleted(task_id, v, v > max(by_version, default=0))
                for v in range(1, top + 1) if v not in by_version and v not in absent]
    recorded = {link.prev_hash for link in links}
    for link in links:
        successor = by_version.get(link.version + 1)
        if successor is not None and successor.prev_hash == link.hash:
            continue
        if successor is None and link.version < top:
            continue  # its successor is missing, reported above; nothing left to vouch for it
        if successor is None:
            if head is not None and head.version == link.version and head.chain_hash != link.hash:
                findings.append(Finding("chain", task_id, link.version, "edited",
                                        "it no longer hashes to the chain head the task view recorded "
                                        "when it applied this version"))
            continue
        if link.hash in recorded:
            continue  # a later event links to it; the event after it is the one out of place
        findings.append(_explain(task_id, link, recorded, top))
    return findings


def _deleted(task_id: str, version: int, after_last: bool) -> Finding:
    where = "the task view had applied it" if after_last else "later versions are stored"
    return Finding("chain", task_id, version, "deleted", f"no event is stored at this version, but {where}")


def _explain(task_id: str, link: Link, recorded: set[str], top: int) -> Finding:
    """A broken link: the event moved to another version, or its content (or its successor's) changed."""
    for candidate in range(1, top + 2):
        if candidate != link.version and hash_at(link.written, candidate) in recorded:
            return Finding("chain", task_id, link.version, "reordered",
                           f"stored as version {link.version}, but the chain recorded it as version {candidate}")
    return Finding("chain", task_id, link.version, "edited",
                   f"its content no longer hashes to the prev_hash that version {link.version + 1} recorded "
                   f"(this event was edited, or that prev_hash was)")
