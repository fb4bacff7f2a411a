"""The archive file of `taskledger archive`: JSON Lines that `taskledger verify --archive` checks offline.

    {"archive": "header", "format": 1, ...}          the policy, the source database, when
    {"position": ..., "originator_id": ..., ...}     every event of the archived tasks, exactly as
                                                     `taskledger export` writes it, in log order
    {"archive": "head", "task_id": ..., ...}         per task: event count, last version, chain head
    {"archive": "trailer", "tasks": n, "events": m, "sha256": ...}

The trailer's sha256 is the digest of every byte before the trailer line, so a file cut short or changed
anywhere fails; the heads and the per-stream hash chain name the task and version that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO
from uuid import UUID

from ledger.application import TaskLedger
from taskledger.tools.chain import Finding, Head, Link, check_chain
from taskledger.tools.export import export_line, parse_line
from taskledger.tools.store import Decoder, StoredRow, ToolError
from taskledger.tools.verify import UNREADABLE

FORMAT = 1
MARK = "archive"


@dataclass
class TaskHead:
    """One archived task: what its stream holds and the hash of its last event (the chain head)."""

    task_id: str
    namespace: str
    events: int = 0
    version: int = 0
    chain_hash: str = ""
    first_position: int = 0
    last_position: int = 0

    def to_line(self) -> str:
        return json.dumps({MARK: "head", **vars(self)}, separators=(",", ":"))


@dataclass
class ArchiveReport:
    """What verify --archive read and every problem it found."""

    path: str
    tasks: int = 0
    events: int = 0
    header: dict[str, Any] = field(default_factory=dict)
    heads: dict[str, TaskHead] = field(default_factory=dict)
    sha256: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "archive": self.path, "tasks": self.tasks, "events": self.events,
                "sha256": self.sha256, "header": self.header, "findings": [f.to_dict() for f in self.findings]}


def offline_decoder() -> Decoder:
    """The ledger's own transcoder over an in-memory store: decoding needs no database."""
    return Decoder(TaskLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper)


class ArchiveWriter:
    """Writes one archive: the header, event lines in log order, then (on close) heads and trailer."""

    def __init__(self, out: TextIO, decoder: Decoder, header: dict[str, Any], namespaces: dict[UUID, str]) -> None:
        self.out, self.decoder, self.namespaces = out, decoder, namespaces
        self.digest = hashlib.sha256()
        self.heads: dict[UUID, TaskHead] = {}
        self.events = 0
        self._line(json.dumps({MARK: "header", "format": FORMAT, **header}, separators=(",", ":")))

    def event(self, row: StoredRow) -> None:
        head = self.heads.get(row.originator_id)
        if head is None:
            head = self.heads[row.originator_id] = TaskHead(str(row.originator_id),
                                                            self.namespaces[row.originator_id],
                                                            first_position=row.position)
        head.events += 1
        head.version, head.last_position = row.originator_version, row.position
        head.chain_hash = Link.of(self.decoder.stored_form(row)).hash
        self.events += 1
        self._line(export_line(row))

    def finish(self) -> str:
        """Writes the heads (task id order) and the trailer, flushes and fsyncs; returns the digest."""
        for task_id in sorted(self.heads):
            self._line(self.heads[task_id].to_line())
        sha = self.digest.hexdigest()
        self.out.write(json.dumps({MARK: "trailer", "tasks": len(self.heads), "events": self.events,
                                   "sha256": sha}, separators=(",", ":")) + "\n")
        self.out.flush()
        os.fsync(self.out.fileno())
        return sha

    def _line(self, text: str) -> None:
        line = text + "\n"
        self.digest.update(line.encode())
        self.out.write(line)


@dataclass
class _Stream:
    links: list[Link] = field(default_factory=list)
    where: dict[int, tuple[int, int]] = field(default_factory=dict)  # version -> (line, position)
    unreadable: list[int] = field(default_factory=list)


def check_archive(path: str, decoder: Decoder | None = None) -> ArchiveReport:
    """Reads an archive file end to end, without a database; the report lists every problem found."""
    report = ArchiveReport(path)
    try:
        with open(path, encoding="utf-8", newline="\n") as source:
            _check_lines(source, decoder or offline_decoder(), report)
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        report.findings.append(Finding("archive", None, None, "unreadable", f"not UTF-8 text ({exc.reason})"))
    return report


def _check_lines(lines: Iterable[str], decoder: Decoder, report: ArchiveReport) -> None:
    digest = hashlib.sha256()
    streams: dict[str, _Stream] = {}
    trailer: dict[str, Any] | None = None
    previous = 0
    for number, line in enumerate(lines, 1):
        if trailer is not None:
            report.findings.append(_problem("extra", f"line {number}: a line after the trailer"))
            break
        record = _json(line)
        if isinstance(record, dict) and MARK in record:
            if record[MARK] == "trailer":
                trailer = record
                continue
            _structural(record, number, report)
        else:
            previous = _event(line, number, previous, decoder, streams, report)
        digest.update(line.encode())
    report.sha256 = digest.hexdigest()
    _check_heads(streams, report)
    _check_trailer(trailer, report)


def _json(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _structural(record: dict[str, Any], number: int, report: ArchiveReport) -> None:
    kind = record[MARK]
    if kind == "header" and number == 1:
        report.header = record
        if record.get("format") != FORMAT:
            report.findings.append(_problem("format", f"line 1: format {record.get('format')!r}; this release "
                                                      f"reads format {FORMAT}"))
    elif kind == "head":
        try:
            head = TaskHead(**{k: v for k, v in record.items() if k != MARK})
        except TypeError:
            report.findings.append(_problem("malformed", f"line {number}: a head line with other fields"))
            return
        report.heads[head.task_id] = head
    else:
        report.findings.append(_problem("malformed", f"line {number}: an unexpected {kind!r} line"))
    if number == 1 and kind != "header" or number > 1 and kind == "header":
        report.findings.append(_problem("malformed", f"line {number}: the header must be line 1, and only it"))


def _event(line: str, number: int, previous: int, decoder: Decoder, streams: dict[str, _Stream],
           report: ArchiveReport) -> int:
    """One event line: parsed as import parses it, hashed as verify hashes it."""
    if number == 1:
        report.findings.append(_problem("malformed", "line 1: no header (not an archive file?)"))
    try:
        row = StoredRow(*parse_line(line, number, previous))
    except ToolError as exc:
        report.findings.append(_problem("malformed", str(exc)))
        return previous
    report.events += 1
    stream = streams.setdefault(str(row.originator_id), _Stream())
    stream.where[row.originator_version] = (number, row.position)
    try:
        written = decoder.stored_form(row)
        stream.links.append(Link.of(written))
    except (*UNREADABLE, ValueError) as exc:
        stream.unreadable.append(row.originator_version)
        report.findings.append(Finding("archive", str(row.originator_id), row.originator_version, "undecodable",
                                       f"line {number} (position {row.position}): {str(exc)[:200]}"))
    return row.position


def _check_heads(streams: dict[str, _Stream], report: ArchiveReport) -> None:
    report.tasks = len(report.heads)
    for task_id in sorted(set(streams) | set(report.heads)):
        stream, head = streams.get(task_id, _Stream()), report.heads.get(task_id)
        if head is None:
            report.findings.append(Finding("archive", task_id, None, "unlisted",
                                           "the file holds events of this task but no head line for it"))
            continue
        found = [_placed(f, stream) for f in
                 check_chain(task_id, stream.links, Head(head.version, head.chain_hash), stream.unreadable)]
        report.findings += [Finding("archive", f.task_id, f.version, f.kind, f.detail) for f in found]
        count = len(stream.links) + len(stream.unreadable)
        if count != head.events or (stream.links and max(stream.where) != head.version):
            report.findings.append(Finding("archive", task_id, head.version, "count",
                                           f"the head lists {head.events} events up to version {head.version}; "
                                           f"the file holds {count}"))


def _placed(finding: Finding, stream: _Stream) -> Finding:
    """A chain finding with the line and log position of the event it names."""
    if finding.version not in stream.where:
        return finding
    line, position = stream.where[finding.version]
    return Finding(finding.check, finding.task_id, finding.version, finding.kind,
                   f"line {line} (position {position}): {finding.detail}")


def _check_trailer(trailer: dict[str, Any] | None, report: ArchiveReport) -> None:
    if not report.header:
        report.findings.append(_problem("malformed", "no header line"))
    if trailer is None:
        report.findings.append(_problem("incomplete", "no trailer line: the file was cut short "
                                                      "(an archive run stopped while writing it?)"))
        return
    if trailer.get("tasks") != report.tasks or trailer.get("events") != report.events:
        report.findings.append(_problem("count", f"the trailer counts {trailer.get('tasks')} tasks and "
                                                 f"{trailer.get('events')} events; the file holds {report.tasks} "
                                                 f"and {report.events}"))
    if trailer.get("sha256") != report.sha256:
        report.findings.append(_problem("digest", "the file's content does not match the trailer's sha256 "
                                                  "(a line was changed, added or removed)"))


def _problem(kind: str, detail: str) -> Finding:
    return Finding("archive", None, None, kind, detail)


def render_archive(report: ArchiveReport) -> Iterable[str]:
    """One aligned line per problem, then the verdict (as `taskledger verify` prints a database's)."""
    for f in report.findings:
        version = "" if f.version is None else f"v{f.version}"
        yield f"{f.check}  task {f.task_id or '-':<36}  {version:<6}  {f.kind:<11}  {f.detail}"
    verdict = "intact" if report.ok else f"{len(report.findings)} problems"
    yield (f"verify --archive: {verdict} — {report.path}: {report.tasks} tasks, {report.events} events, "
           f"sha256 {report.sha256}")
