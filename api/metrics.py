"""Prometheus metrics: request counts and latencies per route, and projection lag read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from projections.queries import TaskView

REQUESTS = Counter("taskledger_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("taskledger_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["method", "route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                  5, 10, 30))


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
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(registry)


class _Local(Collector):
    """This process's own request metrics, when not running under a multiprocess directory."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from REQUESTS.collect()
        yield from LATENCY.collect()
