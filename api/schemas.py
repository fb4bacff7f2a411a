"""Request schemas: what each endpoint accepts in its body and its query string."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validates_schema

from api.fields import (
    Array, BodySchema, Bool, Int, JsonValue, Number, Object, QueryBool, QueryInt, QuerySchema, QueryTime, Str,
)
from api.rules import Between, OneOf, Pattern, Printable, Size
from ledger.schedule import CATCH_UP, MAX_CRON, MAX_TIMEZONE, OVERLAP
from ledger.state import STATES, STEP_STATUSES

ROLES = ("admin", "operator", "worker", "viewer")
SORTS = ("created_at", "updated_at", "name", "state")
RUN_SORTS = ("time", "run", "status", "took_ms")
MAX_EPOCH = 2**53
MAX_HEARTBEAT_TIMEOUT = 7 * 24 * 3600.0
MAX_TEXT = 1024 * 1024
MAX_TOKEN_SECONDS = 10 * 365 * 24 * 3600


def _name(high: int, required: bool = False) -> Str:
    return Str(required=required, validate=[Size(1, high), Printable()])


def _labels() -> Object:
    return Object(keys=Str(validate=[Size(1, 200), Printable()]), values=Str(validate=Size(0, 2000)),
                  validate=Size(0, 100, "labels"))


def _lease_epoch() -> Int:
    return Int(required=True, validate=Between(0, MAX_EPOCH))


def _progress(required: bool = False) -> Number:
    return Number(required=required, validate=Between(0, 100))


class ScheduleSchema(BodySchema):
    """A recurring task's schedule; the ledger fills in the defaults and checks the expression and the zone."""

    cron = Str(required=True, validate=[Size(1, MAX_CRON), Printable()], metadata={
        "description": "5-field cron (`0 3 * * *`) or Quartz with seconds first (`*/5 * * * * ?`, 6 or 7 fields)"})
    timezone = Str(validate=[Size(1, MAX_TIMEZONE), Printable()],
                   metadata={"description": "IANA time zone of the wall-clock times (default UTC)"})
    catch_up = Str(validate=OneOf(CATCH_UP), metadata={
        "description": "Occurrences found too late: all `missed` (default), or `run_once` for the latest"})
    overlap = Str(validate=OneOf(OVERLAP), metadata={
        "description": "An occurrence while a run waits or runs: `skip` (default) or `queue`"})


def _schedule() -> fields.Nested:
    return fields.Nested(ScheduleSchema, allow_none=True,
                         error_messages={"null": "must not be null", "type": "must be a JSON object"})


class CreateTaskSchema(BodySchema):
    namespace = _name(200, required=True)
    name = Str(required=True, validate=Size(1, 1000))
    type = _name(200)
    input = JsonValue()
    submitter = _name(200)
    labels = _labels()
    steps = Array(Str(validate=Size(1, 500)), validate=Size(0, 1000, "steps"))
    max_retries = Int(validate=Between(0, 1000))
    heartbeat_timeout = Number(validate=Between(0, MAX_HEARTBEAT_TIMEOUT, exclusive_low=True))
    schedule = _schedule()
    external_id = _name(500)


class UpdateTaskSchema(BodySchema):
    """Every field is optional; the fields given are changed, the others kept."""

    json_schema = {"minProperties": 1}
    name = Str(validate=Size(1, 1000))
    input = JsonValue()
    labels = _labels()
    max_retries = Int(validate=Between(0, 1000))
    heartbeat_timeout = Number(validate=Between(0, MAX_HEARTBEAT_TIMEOUT, exclusive_low=True))
    schedule = _schedule()

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError(f"must change at least one of {', '.join(self.fields)}", "body")


class StartSchema(BodySchema):
    worker = _name(200, required=True)


class HeartbeatSchema(BodySchema):
    lease_epoch = _lease_epoch()
    progress = _progress()
    message = Str(validate=Size(0, 10_000))
    stats = Object()


class ProgressSchema(BodySchema):
    lease_epoch = _lease_epoch()
    progress = _progress(required=True)
    message = Str(validate=Size(0, 10_000))


class CompleteSchema(BodySchema):
    lease_epoch = _lease_epoch()
    result = JsonValue()


class FailSchema(BodySchema):
    lease_epoch = _lease_epoch()
    error = Str(required=True, validate=Size(1, 65_536))
    retry = Bool()


class ReasonSchema(BodySchema):
    reason = Str(validate=Size(0, 2000))


class EmptySchema(BodySchema):
    """No fields: an empty body or `{}`."""


class StepUpdateSchema(BodySchema):
    lease_epoch = _lease_epoch()
    status = Str(validate=OneOf(STEP_STATUSES))
    output = Str(validate=Size(0, MAX_TEXT))
    append = Bool()


class OutputPageSchema(BodySchema):
    lease_epoch = _lease_epoch()
    data = Str(required=True, validate=Size(0, MAX_TEXT))
    positions = Int(validate=Between(0, MAX_EPOCH))
    last = Bool()


class ClaimSchema(BodySchema):
    worker = _name(200, required=True)
    namespace = _name(200)
    type = _name(200)


class HeartbeatItemSchema(HeartbeatSchema):
    task_id = fields.UUID(required=True, error_messages={"invalid_uuid": "must be a UUID", "required": "is required",
                                                         "null": "must not be null"})


class HeartbeatBatchSchema(BodySchema):
    heartbeats = Array(fields.Nested(HeartbeatItemSchema), required=True, validate=Size(1, 500, "heartbeats"))


class CreateUserSchema(BodySchema):
    name = Str(required=True, validate=[Size(1, 100), Printable(":")])
    password = Str(required=True, validate=Size(8, 1000))
    role = Str(required=True, validate=OneOf(ROLES))


class CreateTokenSchema(BodySchema):
    user = Str(validate=[Size(1, 100), Printable(":")])
    label = Str(validate=[Size(0, 200), Printable()])
    expires_in = Int(validate=Between(1, MAX_TOKEN_SECONDS), metadata={
        "description": "Seconds the token stays valid (at most 10 years); without it, until revoked"})


# `label=key:value` (that value) or `label=key` (any value); the key is what comes before the first colon.
LABEL_SELECTOR = r"^[^:\u0000]+(?::[^\u0000]*)?$"


class TaskFilterQuery(QuerySchema):
    """Which tasks: the filter of `GET /tasks`, also the selection of a bulk action."""

    state = Array(Str(validate=OneOf(STATES)))
    namespace = Str()
    namespace_prefix = Str()
    facade = Str()
    type = Str()
    name_prefix = Str()
    name_contains = Str(validate=Size(3, 200),
                        metadata={"description": "A substring of the name, in any case (3 characters or more)"})
    worker = Str()
    submitter = Str()
    label = Array(Str(validate=[Size(1, 500), Pattern(LABEL_SELECTOR, "must be key or key:value (a key of 1 or "
                                                                     "more characters, no colon in it)")]),
                  metadata={"description": "Repeatable, all must match: `key:value` or `key` (present)"})
    error_contains = Str(validate=Size(3, 200),
                         metadata={"description": "A substring of the error, in any case (3 characters or more)"})
    created_after = QueryTime()
    created_before = QueryTime()
    updated_after = QueryTime()
    updated_before = QueryTime()

    @pre_load
    def _split_states(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """`state=A,B` and `state=A&state=B` mean the same; `label` is repeatable only."""
        if "state" in data:
            given = data["state"] if isinstance(data["state"], list) else [data["state"]]
            data = {**data, "state": [s.strip() for value in given for s in value.split(",")]}
        if "label" in data and not isinstance(data["label"], list):
            data = {**data, "label": [data["label"]]}  # one label given once (a value may hold commas)
        return data


class ListTasksQuery(TaskFilterQuery):
    sort = Str(validate=OneOf(tuple(f"{p}{s}" for s in SORTS for p in ("", "-"))))
    limit = QueryInt(validate=Between(1, 500))
    cursor = Str(validate=Size(1, 2000))


# A bulk action's selection may hold at most this many tasks; `max` (default DEFAULT_BULK_MAX) must cover it.
MAX_BULK = 1_000_000
DEFAULT_BULK_MAX = 1_000


class BulkSchema(BodySchema):
    dry_run = Bool(metadata={"description": "Count and show the selection; write nothing"})
    max = Int(validate=Between(1, MAX_BULK), metadata={
        "description": f"The most tasks the selection may hold (default {DEFAULT_BULK_MAX}); a larger one is "
                       "refused before anything is written"})
    cursor = Str(validate=Size(1, 4000), metadata={
        "description": "The `cursor` of the previous answer: go on with that bulk action (same query string)"})


class BulkReasonSchema(BulkSchema):
    reason = Str(validate=Size(0, 2000))


class BulkDropSchema(BulkSchema):
    force = Bool(metadata={"description": "Drop tasks that have not ended too"})


class AsOf(fields.Field):
    """A version number (`7`) or an ISO-8601 instant with a UTC offset."""

    VERSION = re.compile(r"0*[1-9][0-9]*")
    MAX_DIGITS = 18
    default_error_messages = {"invalid": "must be a version number (1 or more) or an ISO-8601 time with a UTC offset"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            if len(value) > self.MAX_DIGITS or not self.VERSION.fullmatch(value):
                raise self.make_error("invalid")
            return int(value)
        try:
            return QueryTime().deserialize(value)
        except ValidationError:
            raise self.make_error("invalid") from None


class TaskQuery(QuerySchema):
    as_of = AsOf(metadata={"description": "A version number (7) or an ISO-8601 time with a UTC offset"})


class DropQuery(QuerySchema):
    force = QueryBool()


class TaskEventsQuery(QuerySchema):
    after_version = QueryInt(validate=Between(0, MAX_EPOCH))
    limit = QueryInt(validate=Between(1, 1000))


class TaskRunsQuery(QuerySchema):
    """Paging of a recurring task's occurrences (newest first by default)."""

    sort = Str(validate=OneOf(tuple(f"{p}{s}" for s in RUN_SORTS for p in ("", "-"))))
    limit = QueryInt(validate=Between(1, 500))
    offset = QueryInt(validate=Between(0, 10**9))


class FeedQuery(QuerySchema):
    after = QueryInt(validate=Between(0, 2**63 - 1))
    limit = QueryInt(validate=Between(1, 1000))
