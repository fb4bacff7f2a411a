"""Response schemas: what the API answers, and the helpers that dump it."""

from __future__ import annotations

from typing import Any

import falcon
from marshmallow import Schema, fields

from api.dumping import compile_dump
from ledger.commands import Written


class StepSchema(Schema):
    name = fields.String()
    status = fields.String()
    output = fields.String()


class BufferSchema(Schema):
    pages = fields.Integer()
    bytes = fields.Integer()
    positions = fields.Integer()
    finished = fields.Boolean()
    closed = fields.Boolean()


class RunRefSchema(Schema):
    run = fields.Integer()
    time = fields.String()


class TaskSchema(Schema):
    """A task as the native API shows it; timestamps are ISO-8601 strings in UTC."""

    id = fields.UUID()
    version = fields.Integer(metadata={"description": "Number of events recorded; the ETag value."})
    namespace = fields.String()
    facade = fields.String()
    external_ids = fields.Dict(keys=fields.String(), values=fields.String())
    name = fields.String()
    type = fields.String()
    input = fields.Raw(allow_none=True)
    submitter = fields.String()
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    state = fields.String()
    progress = fields.Float()
    message = fields.String(allow_none=True)
    stats = fields.Dict()
    steps = fields.List(fields.Nested(StepSchema))
    buffers = fields.Dict(keys=fields.String(), values=fields.Nested(BufferSchema))
    retries = fields.Integer()
    max_retries = fields.Integer()
    heartbeat_timeout = fields.Float()
    worker = fields.String(allow_none=True)
    lease_epoch = fields.Integer()
    last_heartbeat = fields.String(allow_none=True)
    result = fields.Raw(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    schedule = fields.Dict(allow_none=True, metadata={
        "description": "cron, timezone, catch_up and overlap of a recurring task; null for a one-shot task"})
    run_count = fields.Integer(metadata={"description": "Runs of the schedule that ended (succeeded or failed)."})
    last_run_time = fields.String(allow_none=True, metadata={"description": "Occurrence time of the last ended run."})
    schedule_cursor = fields.String(allow_none=True, metadata={
        "description": "Occurrences up to this instant are settled (recorded, or passed while paused)."})
    occurrence_count = fields.Integer(metadata={"description": "Occurrences recorded: run, skipped or missed."})
    pending_runs = fields.List(fields.Nested(RunRefSchema), metadata={"description": "Runs waiting for a worker."})
    current_run = fields.Nested(RunRefSchema, allow_none=True, metadata={"description": "The run the lease works on."})
    dropped = fields.Boolean()
    chain_hash = fields.String(metadata={"description": "Hash of the task's latest event (hash chain head)."})


class TaskPageSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema))
    total = fields.Integer(metadata={"description": "Tasks matching the filters, over all pages: exact up to "
                                                    "200, beyond that PostgreSQL's estimate (a substring search "
                                                    "expected to match over 2 000 tasks: the estimate, uncounted)"})
    total_is_estimate = fields.Boolean(metadata={"description": "Whether `total` is an estimate (more than 200 "
                                                                "tasks match, or a substring search is expected "
                                                                "to match far more)"})
    next_cursor = fields.String(allow_none=True)


class SkippedTaskSchema(Schema):
    task_id = fields.String()
    state = fields.String(allow_none=True)
    reason = fields.String()


class BulkResultSchema(Schema):
    """A bulk action's answer: a dry run's count, or one part of a run (`done`, else go on with `cursor`)."""

    bulk_id = fields.String(metadata={"description": "The request id every event of the run carries"})
    action = fields.String()
    dry_run = fields.Boolean()
    done = fields.Boolean()
    cursor = fields.String(allow_none=True, metadata={"description": "Send it back (same query string) to go on"})
    matched = fields.Integer(metadata={"description": "Tasks in the selection (fixed when the run started)"})
    matched_is_lower_bound = fields.Boolean(metadata={"description": "Dry run: more than 1 000 000 match"})
    by_state = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "Dry run"})
    would_act = fields.Integer(metadata={"description": "Dry run: tasks whose state accepts the action"})
    would_skip = fields.Integer(metadata={"description": "Dry run: tasks whose state refuses it"})
    max = fields.Integer()
    within_max = fields.Boolean(metadata={"description": "Dry run: whether a run with this `max` may start"})
    items = fields.List(fields.Nested(TaskSchema), metadata={"description": "Dry run: the first 50 it would act on"})
    acted = fields.Integer(metadata={"description": "Tasks changed so far, over every part"})
    skipped = fields.Integer(metadata={"description": "Tasks left alone so far: their state refused the action"})
    part = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "This part's counts"})
    skipped_items = fields.List(fields.Nested(SkippedTaskSchema),
                                metadata={"description": "Up to 50 tasks this part left alone, and why"})


class WriteReceiptSchema(Schema):
    """What every task action answers: the new version and the log position of the write."""

    task_id = fields.UUID()
    version = fields.Integer()
    position = fields.Integer(metadata={"description": "Send as Ledger-Min-Position to read your write."})
    lease_epoch = fields.Integer()
    directive = fields.String(metadata={"description": "Heartbeats only: continue, pause, cancel or stop."})
    sequence = fields.Integer(metadata={"description": "Output pages only: the page's sequence number."})


class ClaimedSchema(WriteReceiptSchema):
    task = fields.Nested(TaskSchema)


class HeartbeatResultSchema(Schema):
    task_id = fields.String()
    status = fields.Integer()
    directive = fields.String()
    version = fields.Integer()
    position = fields.Integer()
    problem = fields.Dict()


class HeartbeatResultsSchema(Schema):
    results = fields.List(fields.Nested(HeartbeatResultSchema))


class EventSchema(Schema):
    task_id = fields.UUID()
    version = fields.Integer()
    type = fields.String()
    time = fields.String()
    actor = fields.String()
    request_id = fields.String(allow_none=True, metadata={
        "description": "The request that recorded it (a bulk action's bulk id); null for the ledger's own "
                       "bookkeeping events in the feed (id sequences)"})
    facade = fields.String()
    data = fields.Dict()
    hash = fields.String()
    prev_hash = fields.String(allow_none=True, metadata={"description": "null where the stream has no chain "
                                                                        "(bookkeeping events)"})
    position = fields.Integer()


class TaskEventsSchema(Schema):
    events = fields.List(fields.Nested(EventSchema))
    next_after_version = fields.Integer(metadata={"description": "Pass as after_version for the next page."})


class FeedSchema(Schema):
    events = fields.List(fields.Nested(EventSchema))
    next_after = fields.Integer(metadata={"description": "Pass as after for the next page."})


class RunSchema(Schema):
    attempt = fields.Integer()
    worker = fields.String()
    started_at = fields.AwareDateTime()
    ended_at = fields.AwareDateTime(allow_none=True)
    outcome = fields.String()
    message = fields.String(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)


class OccurrenceSchema(Schema):
    """One occurrence of a recurring task's schedule and how it ended."""

    run = fields.Integer(metadata={"description": "1-based number of the occurrence"})
    time = fields.AwareDateTime(metadata={"description": "The instant the schedule named"})
    status = fields.String(metadata={"description": "pending, running, succeeded, failed, skipped or missed"})
    reason = fields.String(allow_none=True, metadata={
        "description": "overlap, queue-full, catch-up, lease-expired, cancelled, aborted or dropped"})
    message = fields.String(allow_none=True)
    took_ms = fields.Integer(allow_none=True)
    started_at = fields.AwareDateTime(allow_none=True)
    ended_at = fields.AwareDateTime(allow_none=True)


class RunsSchema(Schema):
    runs = fields.List(fields.Nested(RunSchema), metadata={"description": "One row per lease (attempt)."})
    occurrences = fields.List(fields.Nested(OccurrenceSchema), metadata={
        "description": "A page of the schedule's occurrences (recurring tasks; newest first by default)."})
    occurrences_total = fields.Integer()


class TransactionSchema(Schema):
    pid = fields.Integer()
    database = fields.String(allow_none=True)
    application_name = fields.String(allow_none=True)
    state = fields.String(allow_none=True)
    open_seconds = fields.Float(allow_none=True)


class ProjectionStatusSchema(Schema):
    name = fields.String()
    position = fields.Integer()
    head = fields.Integer()
    lag_events = fields.Integer()
    lag_seconds = fields.Float()
    held_at = fields.Integer(allow_none=True, metadata={
        "description": "A position not committed yet (or rolled back) the projection waits at; null if none."})
    held_by = fields.Nested(TransactionSchema, allow_none=True, metadata={
        "description": "While held: the oldest open transaction on the server, which every log reader waits for."})


class ProjectionsSchema(Schema):
    projections = fields.List(fields.Nested(ProjectionStatusSchema))


class HealthSchema(Schema):
    status = fields.String()
    time = fields.String()


class ReplicaPositionSchema(Schema):
    name = fields.String()
    position = fields.Integer()
    lag_events = fields.Integer()


class ReplicaStatusSchema(Schema):
    status = fields.String(metadata={"description": "`up`, or `down` (GETs then read the primary)"})
    serving = fields.String(metadata={"description": "Where GETs read now: `replica` or `primary`"})
    reason = fields.String(allow_none=True)
    in_recovery = fields.Boolean(allow_none=True)
    replay_lag_seconds = fields.Float(allow_none=True)
    lag_events = fields.Integer(allow_none=True, metadata={
        "description": "Events the primary's projections show and the replica does not yet (the largest)"})
    projections = fields.List(fields.Nested(ReplicaPositionSchema))


class ReadySchema(Schema):
    status = fields.String()
    projections = fields.List(fields.Nested(ProjectionStatusSchema))
    replica = fields.Nested(ReplicaStatusSchema, metadata={
        "description": "Only with TASKLEDGER_READ_DATABASE_URL: the read replica (docs/replicas.md)"})


class UserSchema(Schema):
    name = fields.String()
    role = fields.String()


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "Shown once; only its hash is stored."})
    id = fields.String(metadata={"description": "Names the token to revoke it (`DELETE /tokens/{id}`, "
                                                "`taskledger tokens revoke`); not a credential."})
    user = fields.String()
    label = fields.String(allow_none=True)
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "Null: valid until revoked."})


class FieldErrorSchema(Schema):
    field = fields.String(metadata={"description": "Dotted path of the offending field or parameter."})
    rule = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(fields.Nested(FieldErrorSchema))


TASK = TaskSchema()
RECEIPT = WriteReceiptSchema()
EVENT = EventSchema()
RUN = RunSchema()
OCCURRENCE = OccurrenceSchema()


_TASK_DUMP = compile_dump(TASK)


def task_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """A task document as `TaskSchema` answers it (compiled: this runs on every write and read)."""
    return _TASK_DUMP(doc)


def receipt(written: Written, **extra: Any) -> dict[str, Any]:
    """The write receipt; absent values (no lease, no directive) are left out."""
    fields_ = {"task_id": written.task_id, "version": written.version, "position": written.position,
               "lease_epoch": written.lease_epoch, "directive": written.directive, "sequence": written.sequence}
    fields_.update(extra)
    result: dict[str, Any] = RECEIPT.dump({k: v for k, v in fields_.items() if v is not None})
    return result


def events(described: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = EVENT.dump(described, many=True)
    return result


def runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = RUN.dump(rows, many=True)
    return result


def occurrences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = OCCURRENCE.dump(rows, many=True)
    return result


def written_doc(written: Written) -> dict[str, Any]:
    """The task as the write left it (writes carry their state: nothing is read back to answer)."""
    if written.state is None:
        raise ValueError(f"the write of task {written.task_id} v{written.version} carries no state")
    return dict(vars(written.state))  # the write's own copy: no second deep copy


def etag(version: int) -> str:
    return f'"{version}"'


def write_headers(resp: falcon.Response, written: Written) -> None:
    """Every write answers with the task's new ETag and the log position to read it back at."""
    resp.set_header("ETag", etag(written.version))
    resp.set_header("Ledger-Position", str(written.position))
