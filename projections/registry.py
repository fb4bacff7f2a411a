"""Every projection, by name: its projection class and the view (tracking recorder) it writes."""

from __future__ import annotations

from typing import Any

from projections.runs import RunHistoryRecorder, RunHistoryProjection
from projections.task_view import TaskViewRecorder, TaskViewProjection

PROJECTIONS: dict[str, tuple[Any, Any]] = {
    TaskViewProjection.name: (TaskViewProjection, TaskViewRecorder),
    RunHistoryProjection.name: (RunHistoryProjection, RunHistoryRecorder),
}
