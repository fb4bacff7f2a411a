"""Every projection, by name: its projection class and the view (tracking recorder) it writes."""

from __future__ import annotations

from typing import Any

from projections.runs import PostgresRunHistory, RunHistoryProjection
from projections.task_view import PostgresTaskView, TaskViewProjection

PROJECTIONS: dict[str, tuple[Any, Any]] = {
    TaskViewProjection.name: (TaskViewProjection, PostgresTaskView),
    RunHistoryProjection.name: (RunHistoryProjection, PostgresRunHistory),
}
