"""The read replica on the HTTP side: the middleware that routes each request, and the replica's metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator

import falcon
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from projections.replica import ReplicaRoutedView, Route, begin, finish

READS = Counter("taskledger_replica_reads_total", "GETs that read the read tables, by where they were answered",
                ["served_by"])
READ_METHODS = frozenset({"GET", "HEAD"})


class ReadRouting:
    """GETs read from the replica; a facade's writes wait until the replica shows them; other writes use the primary.

    A facade's clients cannot send `Ledger-Min-Position`, so their write waits for the replica: the GET they
    send next reads it there.
    """

    def __init__(self, facade_paths: tuple[re.Pattern[str], ...]) -> None:
        self.facade_paths = facade_paths

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method in READ_METHODS:
            begin(Route.REPLICA)
        elif any(paths.match(req.path) for paths in self.facade_paths):
            begin(Route.REPLICATED_WRITE)
        else:
            begin(Route.PRIMARY)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        served = finish()
        if served is not None:
            READS.labels(served.value).inc()


class ReplicaCollector(Collector):
    """The replica's state at each scrape: up, positions, lag in events and seconds (and, outside gunicorn's
    multiprocess mode, where this process's GETs were answered)."""

    def __init__(self, view: ReplicaRoutedView, with_counters: bool) -> None:
        self.view, self.with_counters = view, with_counters

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        status = self.view.replica_status()
        up = GaugeMetricFamily("taskledger_replica_up", "Whether the read replica answers (GETs fail over to the "
                               "primary while it does not)")
        up.add_metric([], 1.0 if status["status"] == "up" else 0.0)
        yield up
        position = GaugeMetricFamily("taskledger_replica_position", "Last event position the replica's read "
                                     "tables show", labels=["projection"])
        lag = GaugeMetricFamily("taskledger_replica_lag_events", "Events the primary's projections applied that "
                                "the replica does not show yet", labels=["projection"])
        for row in status["projections"]:
            position.add_metric([row["name"]], row["position"])
            lag.add_metric([row["name"]], row["lag_events"])
        replay = GaugeMetricFamily("taskledger_replica_replay_lag_seconds", "Seconds since the last transaction "
                                   "the replica replayed, while it has received WAL it has not replayed (else 0)")
        if status["replay_lag_seconds"] is not None:
            replay.add_metric([], status["replay_lag_seconds"])
        yield from (position, lag, replay)
        if self.with_counters:
            yield from READS.collect()
