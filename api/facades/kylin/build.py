"""`PUT /cubes/{cube}/rebuild|build`: Kylin's JobBuildRequest, turned into a ledger task to create."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

from api.facades.common import Refusal
from api.facades.kylin.jobs import PREFIX
from ledger.commands import CreateTask

BUILD_TYPES = ("BUILD", "MERGE", "REFRESH")
FIELDS = ("startTime", "endTime", "buildType", "project", "force", "forceMergeEmptySegment", "priorityOffset")
DEFAULT_PROJECT = "default"
# A build that names no project (kylinpy's never does) carries this label: the default project holds it, and
# its submitter's lists of any project show it too (docs/compatibility.md, Kylin: projects).
UNSTATED_PROJECT = ("kylin.project", "unstated")
MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_NAME = re.compile(r"[A-Za-z0-9_]{1,100}")

# Kylin's usual MapReduce build steps (a fixed list: the ledger has no cube model to derive them from).
BUILD_STEPS = (
    "Create Intermediate Flat Hive Table", "Redistribute Flat Hive Table", "Extract Fact Table Distinct Columns",
    "Build Dimension Dictionary", "Save Cuboid Statistics", "Create HTable", "Build Cube In-Mem",
    "Convert Cuboid Data to HFile", "Load HFile to HBase Table", "Update Cube Info", "Garbage Collection",
)
MERGE_STEPS = (
    "Merge Segment Dictionary", "Merge Cuboid Statistics", "Create HTable", "Merge Cuboid Data",
    "Convert Cuboid Data to HFile", "Load HFile to HBase Table", "Update Cube Info", "Garbage Collection",
)


def build_command(cube: str, body: dict[str, Any], query_project: str | None, now: datetime) -> CreateTask:
    """The task a build request creates in `kylin:<project>`, named as Kylin names its cubing jobs."""
    _check_name("cube name", cube)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise Refusal(400, f"Unknown field '{unknown[0]}'; a build request takes {', '.join(FIELDS)}")
    kind = _build_type(body.get("buildType"))
    start, end = _millis(body, "startTime"), _millis(body, "endTime")
    _check_range(kind, start, end)
    _check_options(body)
    segment = segment_name(start, end)
    verb = "MERGE" if kind == "MERGE" else "BUILD"
    project = _project(body, query_project)
    unstated = body.get("project") is None and query_project is None
    return CreateTask(
        namespace=PREFIX + project, type=kind, labels=dict([UNSTATED_PROJECT]) if unstated else {},
        name=f"{verb} CUBE - {cube} - {segment} - GMT+00:00 {now.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}",
        input={"cube": cube, "segment": str(uuid4()), "segmentName": segment, "startTime": start,
               "endTime": end, "buildType": kind, "force": bool(body.get("force", False))},
        steps=MERGE_STEPS if kind == "MERGE" else BUILD_STEPS)


def segment_name(start: int, end: int) -> str:
    """Kylin's segment name: both ends as yyyyMMddHHmmss (GMT), or FULL_BUILD for 0..0."""
    if start == end == 0:
        return "FULL_BUILD"
    return f"{_stamp(start)}_{_stamp(end)}"


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y%m%d%H%M%S")


def _build_type(value: Any) -> str:
    if value not in BUILD_TYPES:
        raise Refusal(400, f"Field 'buildType' must be one of {', '.join(BUILD_TYPES)}, not {value!r:.50}")
    return str(value)


def _millis(body: dict[str, Any], field: str) -> int:
    """A JobBuildRequest time: milliseconds since the epoch; absent means 0, as the Java default."""
    value = body.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MILLIS:
        raise Refusal(400, f"Field '{field}' must be an integer of milliseconds between 0 and {MAX_MILLIS}")
    return value


def _check_range(kind: str, start: int, end: int) -> None:
    if start == end == 0 and kind != "MERGE":
        return
    if start >= end:
        raise Refusal(400, f"Field 'endTime' ({end}) must be later than 'startTime' ({start})"
                         + ("; a MERGE needs a range" if kind == "MERGE" else ""))


def _check_options(body: dict[str, Any]) -> None:
    for flag in ("force", "forceMergeEmptySegment"):
        if flag in body and not isinstance(body[flag], bool):
            raise Refusal(400, f"Field '{flag}' must be true or false")
    offset = body.get("priorityOffset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) > 2**31 - 1:
        raise Refusal(400, "Field 'priorityOffset' must be an integer")


def _project(body: dict[str, Any], query_project: str | None) -> str:
    given = body.get("project")
    if given is not None and query_project is not None and given != query_project:
        raise Refusal(400, f"Project '{query_project}' in the query and '{given}' in the body differ")
    project = given if given is not None else query_project or DEFAULT_PROJECT
    if not isinstance(project, str):
        raise Refusal(400, "Field 'project' must be a string")
    _check_name("project name", project)
    return project


def _check_name(what: str, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise Refusal(400, f"Invalid {what} '{value[:100]}': it must be 1 to 100 letters, digits or underscores")
