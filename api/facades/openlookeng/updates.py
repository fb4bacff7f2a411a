"""TaskUpdateRequest bodies: checked as hetu-core's JSON creators bind them, merged as a worker accumulates them.

A coordinator (`HttpRemoteTask.sendUpdate`) sends each update with only the splits still pending, `noMoreSplits`
once per plan node, and the plan fragment only until the worker answers `needsPlan: false`; a worker keeps what
came before (`TaskSource.update`). The task's input is therefore the merge of every update, never the last one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from api.facades.openlookeng.wire import refuse

REQUIRED = ("session", "sources", "outputIds")


def check(body: dict[str, Any]) -> None:
    """Refuses (400) a body hetu-core's TaskUpdateRequest creator would not bind: a required field missing or
    of the wrong JSON type."""
    missing = [name for name in REQUIRED if body.get(name) is None]
    if missing:
        raise refuse(400, f"The TaskUpdateRequest lacks {', '.join(missing)}.")
    if not isinstance(body["session"], dict):
        raise refuse(400, "session must be a JSON object (a SessionRepresentation).")
    if not isinstance(body["sources"], list):
        raise refuse(400, "sources must be an array of TaskSource objects.")
    for index, source in enumerate(body["sources"]):
        _check_source(source, f"sources[{index}]")
    _check_output_ids(body["outputIds"])


def _check_source(source: Any, where: str) -> None:
    if not isinstance(source, dict):
        raise refuse(400, f"{where} must be a TaskSource object.")
    if not _is_node(source.get("planNodeId")):
        raise refuse(400, f"{where}.planNodeId must be a plan node id (a string).")
    splits = source.get("splits")
    if not isinstance(splits, list):
        raise refuse(400, f"{where}.splits must be an array of ScheduledSplit objects.")
    for index, split in enumerate(splits):
        if not isinstance(split, dict):
            raise refuse(400, f"{where}.splits[{index}] must be a ScheduledSplit object.")
        if not _is_count(split.get("sequenceId")):
            raise refuse(400, f"{where}.splits[{index}].sequenceId must be an integer of at least 0.")
    if not isinstance(source.get("noMoreSplits", False), bool):
        raise refuse(400, f"{where}.noMoreSplits must be true or false.")
    if not isinstance(source.get("noMoreSplitsForLifespan", []), list):
        raise refuse(400, f"{where}.noMoreSplitsForLifespan must be an array of lifespans.")


def _check_output_ids(output_ids: Any) -> None:
    if not isinstance(output_ids, dict):
        raise refuse(400, "outputIds must be a JSON object (an OutputBuffers).")
    buffers = output_ids.get("buffers", {})
    if not isinstance(buffers, dict) or not all(_is_count(p) for p in buffers.values()):
        raise refuse(400, "outputIds.buffers must map each buffer id to its partition (an integer of at least 0).")


def merge(stored: Any, update: dict[str, Any]) -> dict[str, Any]:
    """The task's input once a checked update is applied to it (None or a non-object: nothing came before).

    Every other field takes the update's value; the fragment an update leaves out (or sends as null) stays."""
    before = stored if isinstance(stored, dict) else {}
    merged = {**before, **update}
    if update.get("fragment") is None and before.get("fragment") is not None:
        merged["fragment"] = before["fragment"]
    merged["outputIds"] = _newer_buffers(before.get("outputIds"), update["outputIds"])
    merged["sources"] = _merge_sources(before.get("sources"), update["sources"])
    return merged


def _newer_buffers(old: Any, new: dict[str, Any]) -> Any:
    """A worker ignores OutputBuffers older than those it has (`OutputBuffer.setOutputBuffers`)."""
    if isinstance(old, dict) and _is_count(old.get("version")) and _is_count(new.get("version")) \
            and old["version"] > new["version"]:
        return old
    return new


def _merge_sources(old: Any, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One TaskSource per plan node, in the order the nodes first came."""
    merged: dict[str, dict[str, Any]] = {}
    for source in old if isinstance(old, list) else []:
        if isinstance(source, dict) and _is_node(source.get("planNodeId")):
            merged[str(source["planNodeId"])] = source
    for source in new:
        node = str(source["planNodeId"])
        merged[node] = _merge_source(node, merged.get(node), source)
    return list(merged.values())


def _merge_source(node: str, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Splits accumulate by sequenceId (a split sent again is the same split), noMoreSplits is sticky."""
    before = old or {}
    merged = {**before, **new}
    stored = before.get("splits")
    old_splits: list[Any] = stored if isinstance(stored, list) else []
    merged["splits"] = _union(old_splits, new["splits"], _sequence)
    if before.get("noMoreSplits") is True:
        if {_sequence(s) for s in new["splits"]} - {_sequence(s) for s in old_splits}:
            # hetu-core's TaskSource.update refuses this too (and fails the task); we leave the task as it was
            raise refuse(409, f"Plan node {node} was closed (noMoreSplits) by an earlier update; "
                              "it takes no new splits.")
        merged["noMoreSplits"] = True
    if "noMoreSplitsForLifespan" in merged:
        old_spans = before.get("noMoreSplitsForLifespan")
        merged["noMoreSplitsForLifespan"] = _union(old_spans if isinstance(old_spans, list) else [],
                                                   new.get("noMoreSplitsForLifespan", []), _canonical)
    return merged


def _union(first: Iterable[Any], then: Iterable[Any], key: Callable[[Any], Any]) -> list[Any]:
    """The items of both, each key once, the first occurrence kept."""
    seen: set[Any] = set()
    kept = []
    for item in (*first, *then):
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept


def _sequence(split: Any) -> Any:
    # ScheduledSplit equality is its sequenceId alone; a stored split without one keeps its own identity
    return split.get("sequenceId") if isinstance(split, dict) and _is_count(split.get("sequenceId")) \
        else ("stored", _canonical(split))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _is_node(value: Any) -> bool:
    # PlanNodeId is a JSON string; Jackson also coerces a number to it
    return (isinstance(value, str) and value != "") or (isinstance(value, int) and not isinstance(value, bool))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
