"""Prometheus metrics: request counts and latencies per route and of claims; projection lag, the domain (tasks by
namespace and state, lease expiries, occurrences not run) and the build, read at scrape time
(docs/observability.md)."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol, runtime_checkable

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.replica import ReplicaCollector
from ledger.state import STATES, TERMINAL
from projections.queries import TaskView
from projections.replica import replica_of

REQUESTS = Counter("taskledger_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("taskledger_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["method", "route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                  5, 10, 30))
# A worker's POST /claims from its arrival to the answer (a lease, or 204 when nothing is queued): how long
# workers wait for work, whatever the HTTP route is called.
CLAIM_LATENCY = Histogram("taskledger_claim_duration_seconds", "Time to answer a worker's claim",
                          ["outcome"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
# Each (namespace, state) is counted exactly up to its state's bound, beyond it estimated (docs/observability.md):
# the states work waits or runs in exactly up to far more than those that only pile up with history.
LIVE_EXACT_UP_TO = 100_000
ENDED_EXACT_UP_TO = 1_000
TASKS_EXACT_UP_TO = {state: ENDED_EXACT_UP_TO if state in TERMINAL else LIVE_EXACT_UP_TO for state in STATES}
# Namespaces shown, the first by name: a bound on the series a scrape returns (8 states each).
MAX_NAMESPACES = 500


class RequestMetrics:
    """Middleware that counts and times every request by its route template (never by raw path)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        route = req.uri_template or "unmatched"
        REQUESTS.labels(req.method, route, resp.status_code).inc()
        LATENCY.labels(req.method, route).observe(time.perf_counter() - req.context.started)


class ProjectionCollector(Collector):
    """Projection position, head and lag, asked of the read side at each scrape."""

    def __init__(self, view: TaskView) -> None:
        self.view = view

    def collect(self) -> Iterator[GaugeMetricFamily]:
        position = GaugeMetricFamily("taskledger_projection_position", "Last event position applied",
                                     labels=["projection"])
        lag = GaugeMetricFamily("taskledger_projection_lag_events", "Events not yet applied", labels=["projection"])
        lag_seconds = GaugeMetricFamily("taskledger_projection_lag_seconds", "Age of the oldest unapplied event",
                                        labels=["projection"])
        head = GaugeMetricFamily("taskledger_event_log_head", "Position of the newest event")
        held = GaugeMetricFamily("taskledger_projection_held_seconds",
                                 "How long the transaction a projection waits for at a gap has been open "
                                 "(0: not held)", labels=["projection"])
        status = self.view.status()
        for item in status:
            position.add_metric([item["name"]], item["position"])
            lag.add_metric([item["name"]], item["lag_events"])
            lag_seconds.add_metric([item["name"]], item["lag_seconds"])
            held.add_metric([item["name"]], float((item.get("held_by") or {}).get("open_seconds") or 0.0))
        head.add_metric([], status[0]["head"] if status else 0)
        yield from (position, lag, lag_seconds, head, held)


class MetricsEndpoint:
    """`/metrics` in the Prometheus text format; sums every gunicorn worker in multiprocess mode."""

    def __init__(self, view: TaskView, multiprocess: bool) -> None:
        self.view, self.multiprocess = view, multiprocess

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        registry = CollectorRegistry()
        if self.multiprocess:
            MultiProcessCollector(registry)
        else:
            registry.register(_Local())
        registry.register(ProjectionCollector(self.view))
        source = routed.primary if (routed := replica_of(self.view)) is not None else self.view
        if isinstance(source, DomainView):
            registry.register(DomainCollector(source))
        routed = replica_of(self.view)
        if routed is not None:
            registry.register(ReplicaCollector(routed, with_counters=not self.multiprocess))
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(registry)


class _Local(Collector):
    """This process's own request metrics, when not running under a multiprocess directory."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from REQUESTS.collect()
        yield from LATENCY.collect()
        yield from CLAIM_LATENCY.collect()


@runtime_checkable
class DomainView(Protocol):
    """The read side's counts of the domain (projections.queries.PostgresTaskView.domain_counts)."""

    def domain_counts(self, bounds: Mapping[str, int], max_namespaces: int) -> dict[str, Any]: ...


class DomainCollector(Collector):
    """Tasks by namespace and state, lease expiries, skipped and missed occurrences and the build, asked of the
    read side at each scrape: one bounded read (its own cost is shown too)."""

    def __init__(self, view: DomainView) -> None:
        self.view = view

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        started = time.perf_counter()
        counts = self.view.domain_counts(TASKS_EXACT_UP_TO, MAX_NAMESPACES)
        took = time.perf_counter() - started
        tasks = GaugeMetricFamily("taskledger_tasks", "Tasks in the task view (dropped ones left out), exact up "
                                  "to taskledger_tasks_exact_up_to, estimated beyond", labels=["namespace", "state"])
        for row in counts["tasks"]:
            tasks.add_metric([row["namespace"], row["state"]], row["n"])
        yield tasks
        bound = GaugeMetricFamily("taskledger_tasks_exact_up_to", "Above this, a taskledger_tasks value of the "
                                  "state is PostgreSQL's estimate", labels=["state"])
        for state, up_to in TASKS_EXACT_UP_TO.items():
            bound.add_metric([state], up_to)
        yield bound
        yield CounterMetricFamily("taskledger_lease_expiries", "Leases the watchdog expired (runs in the run "
                                  "history)", value=counts["lease_expiries"])
        yield CounterMetricFamily("taskledger_occurrences_skipped", "Occurrences of schedules recorded skipped "
                                  "(an overlap, a full queue, or the task ended)", value=counts["skipped"])
        yield CounterMetricFamily("taskledger_occurrences_missed", "Occurrences of schedules recorded missed "
                                  "(found after their grace)", value=counts["missed"])
        yield GaugeMetricFamily("taskledger_domain_scrape_seconds", "Time the read side took to count the domain "
                                "for this scrape", value=took)
        build = GaugeMetricFamily("taskledger_build_info", "The running build (always 1)",
                                  labels=["version", "python", "eventsourcing", "postgres"])
        build.add_metric([_version("taskledger"), platform.python_version(), _version("eventsourcing"),
                          str(counts["postgres"])], 1)
        yield build


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"
