"""Reading tasks of one graph from the task view: by number, by ids, or a page in creation order."""

from __future__ import annotations

from typing import Any

from api.facades.common import scan
from api.facades.hugegraph.params import ListQuery
from api.facades.hugegraph.wire import states_for, task_map, task_not_found, task_number
from projections.queries import TaskFilter, TaskView


def find(view: TaskView, namespace: str, number: int) -> dict[str, Any]:
    """The current task with this number in the graph; dropped tasks are gone, as HugeGraph deletes them."""
    doc = view.find_external(namespace, str(number))
    if doc is None or doc.get("dropped"):
        raise task_not_found(number)
    return doc


def list_tasks(view: TaskView, namespace: str, query: ListQuery) -> dict[str, Any]:
    """`{"tasks": [...]}`, plus the next `page` token (null at the end) when a page was asked for."""
    if query.ids is not None:
        return {"tasks": _by_ids(view, namespace, query.ids)}
    states = states_for(query.status) if query.status is not None else ()
    if query.status is not None and not states:
        docs: list[dict[str, Any]] = []
        cursor: str | None = None
    else:
        docs, cursor = scan(view, TaskFilter(states=states, namespace=namespace), cursor=query.page or None,
                            limit=query.limit)
    body: dict[str, Any] = {"tasks": [task_map(doc, details=False) for doc in docs
                                      if task_number(doc) is not None]}
    if query.page is not None:
        body["page"] = cursor
    return body


def _by_ids(view: TaskView, namespace: str, ids: tuple[int, ...]) -> list[dict[str, Any]]:
    found = (view.find_external(namespace, str(number)) for number in ids)
    return [task_map(doc, details=False) for doc in found if doc is not None and not doc.get("dropped")]

