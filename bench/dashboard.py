"""taskledger dashboard benchmark (issue 13): server time of the dashboard's pages against the view's size,
each next to the API request that reads the same rows (the baseline, measured in the same run).

It is bench/search.py with other queries: the same fill through the ledger (to 10k and 100k tasks by
default), the same service, clients and report; each page is timed over keep-alive HTTP with Basic auth
(the dashboard accepts it), so what is measured is the page's whole server time plus loopback.
The goal of issue 13: a list page under 100 ms at 100k tasks.

Run: .venv/bin/python bench/dashboard.py [--sizes 10000,100000] [--rounds 3] [--requests 200]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import search  # noqa: E402
from bench.search import API, NAMESPACES, TEAMS, Query, Request, task_id_of  # noqa: E402


def _ui(path: str, params: dict[str, object]) -> Request:
    return Request("GET", f"{path}?{urlencode(params, doseq=True)}" if params else path)


def _ns(r: random.Random) -> dict[str, object]:
    return {"namespace": r.choice(NAMESPACES), "state": "RUNNING"}


PAGES: tuple[Query, ...] = (
    Query("api_list", "API  GET /tasks?sort=-created_at (baseline)",
          lambda r, n: Request("GET", f"{API}/tasks?sort=-created_at&limit=50")),
    Query("ui_list", "page /ui/tasks (newest 50, state counts)", lambda r, n: _ui("/ui/tasks", {})),
    Query("api_ns", "API  ?namespace&state=RUNNING (baseline)",
          lambda r, n: Request("GET", f"{API}/tasks?{urlencode(_ns(r))}&limit=50")),
    Query("ui_ns", "page /ui/tasks?namespace&state=RUNNING", lambda r, n: _ui("/ui/tasks", _ns(r))),
    Query("api_label", "API  ?label=team:T&sort=name (baseline)",
          lambda r, n: Request("GET", f"{API}/tasks?{urlencode({'label': f'team:{r.choice(TEAMS)}', 'sort': 'name'})}"
                                      "&limit=50")),
    Query("ui_label", "page /ui/tasks?label=team:T&sort=name",
          lambda r, n: _ui("/ui/tasks", {"label": f"team:{r.choice(TEAMS)}", "sort": "name"})),
    Query("api_get", "API  GET /tasks/{id} (baseline)",
          lambda r, n: Request("GET", f"{API}/tasks/{task_id_of(r.randrange(n))}")),
    Query("ui_task", "page /ui/tasks/{id} (timeline, runs, output)",
          lambda r, n: _ui(f"/ui/tasks/{task_id_of(r.randrange(n))}", {})),
    Query("ui_as_of", "page /ui/tasks/{id}?as_of=1 (time travel)",
          lambda r, n: _ui(f"/ui/tasks/{task_id_of(r.randrange(n))}", {"as_of": 1})),
)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--sizes") for a in args):
        args += ["--sizes", "10000,100000"]
    if not any(a.startswith("--bulk-tasks") for a in args):
        args += ["--bulk-tasks", "0"]
    search.QUERIES = PAGES  # the runner and the report read the module's table
    search.SCRATCH_DB = "taskledger_bench_dashboard"
    return search.main(args)


if __name__ == "__main__":
    sys.exit(main())
