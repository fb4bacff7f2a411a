"""The write-path figures of issue 8, each beside its baseline from the same run, its ratio and its goal."""

from __future__ import annotations

import statistics
from typing import Any


def _rate(m: dict[str, Any], key: str) -> str:
    row = m.get(key)
    return "-" if row is None else f"{row['rate']:,.0f} {row['unit']}"


def _ratio(result: dict[str, Any], measured: str, baseline: str) -> float | None:
    for r in result["ratios"]:
        if r["measured"] == measured and r["baseline"] == baseline:
            return float(r["ratio"])
    return None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(figure, taskledger, baseline, ratio, goal) lines."""
    m, once = result["measurements"], result.get("once") or {}
    out = [
        ("POST /tasks, {} connections".format(m.get("create", {}).get("connections", "?")), _rate(m, "create"),
         f"constant POST {_rate(m, 'trivial_post')}", _fmt(_ratio(result, "create", "trivial_post")), ">= 0.25"),
        ("single heartbeat, {} connections".format(m.get("heartbeat", {}).get("connections", "?")),
         _rate(m, "heartbeat"), f"constant POST {_rate(m, 'trivial_post_n')}",
         _fmt(_ratio(result, "heartbeat", "trivial_post_n")), ">= 0.25"),
        ("", "", f"raw INSERT+COMMIT {_rate(m, 'raw')}", _fmt(_ratio(result, "heartbeat", "raw")), ""),
        ("POST /heartbeats x{}, {} clients, disjoint tasks".format(
            m.get("batch", {}).get("per_round", [{}])[0].get("details", {}).get("per_request", "?"),
            m.get("batch", {}).get("connections", "?")), _rate(m, "batch"),
         f"raw multi-row INSERT {_rate(m, 'raw_batch')}", _fmt(_ratio(result, "batch", "raw_batch")),
         ">= 15,000 ev/s"),
        ("store append, {} threads, no HTTP".format(m.get("append", {}).get("connections", "?")),
         _rate(m, "append"), f"raw INSERT+COMMIT {_rate(m, 'raw')}", _fmt(_ratio(result, "append", "raw")),
         ">= 0.7"),
        ("", "", f"python threads INSERT {_rate(m, 'python_raw')}", _fmt(_ratio(result, "append", "python_raw")),
         ""),
    ]
    first = once.get("first_write")
    if first:
        for label, key in (("after a service restart (API worker)", "http_ms"),
                           ("in a fresh process (roles, CLI)", "process_ms")):
            long_ms, short_ms = _median(first[key]["long"]), _median(first[key]["short"])
            out.append((f"first heartbeat, {first['events']:,}-event task, {label}", f"{long_ms:.1f} ms",
                        f"2-event task {short_ms:.1f} ms", _fmt(long_ms / short_ms if short_ms else None),
                        "<= 1.5"))
    decode = once.get("decode")
    for name, row in (once.get("catch_up") or {}).items():
        out.append((f"catch-up from 0, {row['completed']:,} events: {name}", f"{row['rate']:,.0f} ev/s",
                    f"read+decode only {decode['rate']:,.0f} ev/s" if decode else "-",
                    _fmt(row["rate"] / decode["rate"] if decode else None), ">= 10,000 ev/s"))
    rebuild = once.get("rebuild")
    if rebuild:
        minutes = 1_000_000 / rebuild["rate"] / 60
        out.append((f"taskledger rebuild, both projections, {rebuild['completed']:,} events",
                    f"{rebuild['rate']:,.0f} ev/s", f"1M events ~ {minutes:.1f} min", "-", "1M < 3 min"))
    skip = once.get("skip")
    if skip:
        out.append((f"skip test, 8 writers, {skip['overtaken']} commits out of order",
                    f"{skip['fenced_skipped']} of {skip['events']} skipped",
                    f"naive reader {skip['naive_skipped']} skipped", "-", "0 skipped, in order"))
    for key, samples in (result.get("lag") or {}).items():
        if samples:
            p99 = max(s.get("p99_ms", 0.0) for s in samples)
            p50 = _median([s.get("p50_ms", 0.0) for s in samples])
            out.append((f"write -> visible during the {key} load", f"p50 {p50:.0f} / p99 {p99:.0f} ms",
                        f"{sum(s['samples'] for s in samples)} probes", "-", "p99 < 100 ms"))
    return out


def print_figures(result: dict[str, Any]) -> None:
    table = rows(result)
    widths = [max(len(r[i]) for r in [*table, ("figure", "taskledger", "baseline (same run)", "ratio", "goal")])
              for i in range(5)]
    header = ("figure", "taskledger", "baseline (same run)", "ratio", "goal")
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
