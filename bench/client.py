"""A small keep-alive JSON client for preparing tasks through the native API (one per thread)."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class ApiError(RuntimeError):
    """The API answered something the benchmark cannot use."""


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class Client:
    """One keep-alive connection per thread to the API."""

    def __init__(self, base_url: str, authorization: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Authorization": authorization, "Content-Type": "application/json",
                        "Accept": "application/json"}
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self._local.conn = conn
        return conn

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        payload = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, self.prefix + path, body=payload, headers=self.headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, decoded)

    def expect(self, method: str, path: str, body: Any, statuses: tuple[int, ...]) -> Answer:
        answer = self.call(method, path, body)
        if answer.status not in statuses:
            raise ApiError(f"{method} {self.prefix}{path} answered {answer.status}, expected "
                           f"{'/'.join(map(str, statuses))}: {str(answer.body)[:500]}")
        return answer


@dataclass(frozen=True)
class LeasedTask:
    task_id: str
    lease_epoch: int
    connection: int


def prepare_leased_tasks(client: Client, run_tag: str, connections: int, per_connection: int,
                         wait_for_projections: Any, parallel: int = 8) -> list[LeasedTask]:
    """Creates and claims `connections * per_connection` tasks, each in a namespace of its own.

    A namespace per task makes each claim unambiguous (exactly one queued candidate), so claims can
    run in parallel without stealing each other's tasks.
    """
    slots = [(c, t) for c in range(connections) for t in range(per_connection)]

    def namespace(slot: tuple[int, int]) -> str:
        return f"bench-{run_tag}-c{slot[0]}-t{slot[1]}"

    def create(slot: tuple[int, int]) -> None:
        client.expect("POST", "/tasks", {"namespace": namespace(slot), "name": "bench-heartbeat"}, (200, 201))

    def claim(slot: tuple[int, int]) -> LeasedTask:
        deadline = time.monotonic() + 30
        while True:
            answer = client.call("POST", "/claims", {"worker": f"bench-worker-{slot[0]}", "namespace": namespace(slot)})
            if answer.status == 200 and isinstance(answer.body, dict):
                return LeasedTask(str(answer.body["task_id"]), int(answer.body["lease_epoch"]), slot[0])
            if time.monotonic() > deadline:
                raise ApiError(f"POST /claims for {namespace(slot)} answered {answer.status}: {str(answer.body)[:500]}")
            time.sleep(0.1)  # the view may not show the new task yet

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(create, slots))
        wait_for_projections()
        leased = list(pool.map(claim, slots))
    wait_for_projections()
    return leased
