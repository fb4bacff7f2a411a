"""Schemathesis settings of the OpenAPI conformance runs (the test, and `SCHEMATHESIS_HOOKS` for the CLI).

The document states every rule a request's *form* must follow, so schemathesis's `positive_data_acceptance`
stays strict about 400 and 422: a schema-valid request refused for its form is a failure. What no schema
can state is a refusal that depends on the state of the ledger or on a table the ledger reads; those
answer with a problem type of their own, listed here with the reason, and only those are tolerated.
(410 `task-dropped` and 412 `version-mismatch` are never answers to a request's form: the configuration
adds them to the statuses a valid request may get, beside schemathesis's own 404 and 409.)
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import jsonschema_rs
import schemathesis
from schemathesis.core.failures import AcceptedNegativeData, Failure
from schemathesis.openapi.checks import RejectedPositiveData

PROBLEM_BASE = "https://taskledger.dev/problems/"
STATEFUL_PROBLEMS = {
    "invalid-cursor": "a cursor is only valid as the next_cursor an earlier page of the same query answered",
    "position-beyond-head": "Ledger-Min-Position names a position no write has answered yet",
    "idempotency-key-reused": "the key was bound to another body by an earlier create, complete or fail (422, "
                              "as the IETF Idempotency-Key draft has it)",
    "user-not-found": "a token is minted for an existing user only",
}
# Rules of the ledger itself (422 `invalid-value`, naming the field), stated in the document's description.
DOMAIN_FIELDS = {
    "schedule.cron": "a cron expression must parse and fire again (the calendar reads it)",
    "schedule.timezone": "an IANA zone name the machine's tz database holds",
    "schedule": "a recurring task's schedule cannot be removed (pause or cancel it)",
    "step": "a step index within the task's steps",
}
CONFIG = {
    "checks": {
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "410", "412", "429", "5xx"],
        },
    },
}
PRINTABLE_RULE = "must not contain control characters"


def refused_for_state(response: schemathesis.Response) -> bool:
    """Whether a refusal is one the document cannot state: a stateful problem or a domain rule."""
    problem = _problem(response)
    code = problem.get("type", "")[len(PROBLEM_BASE):]
    if code in STATEFUL_PROBLEMS:
        return True
    fields = [error.get("field") for error in problem.get("errors") or []]
    return code == "invalid-value" and bool(fields) and all(field in DOMAIN_FIELDS for field in fields)


def refused_for_unassigned(case: schemathesis.Case, response: schemathesis.Response) -> bool:
    """Whether printable text was refused only for a code point this Python's Unicode has not assigned.

    The document says printable as Unicode categories (`\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}` and the space); schemathesis
    draws `\\p{M}` from whole blocks, unassigned code points (such as U+20F6) included, which `str.isprintable()`
    rightly refuses.
    """
    rules = {error.get("rule") for error in _problem(response).get("errors") or []}
    return rules == {PRINTABLE_RULE} and any(unicodedata.category(ch) == "Cn" for ch in _texts(case))


def _problem(response: schemathesis.Response) -> dict[str, Any]:
    try:
        problem: Any = response.json()
    except ValueError:
        return {}
    if not isinstance(problem, dict) or not str(problem.get("type", "")).startswith(PROBLEM_BASE):
        return {}
    return problem


def _texts(case: schemathesis.Case) -> str:
    return json.dumps([case.body, case.query, case.path_parameters], ensure_ascii=False, default=str)


def valid_by_the_standard(case: schemathesis.Case) -> bool:
    """Whether the body schemathesis made to break a rule is valid by JSON Schema itself (jsonschema_rs).

    schemathesis rewrites `\\p{L}`-style classes into explicit code point ranges of the Basic Multilingual Plane
    only, so a letter beyond U+FFFF (U+2C941, a CJK ideograph, category Lo) counts as breaking the pattern to
    it; JSON Schema 2020-12 (OpenAPI 3.1) patterns are ECMA-262 with Unicode semantics, where it matches.
    """
    bodies = [body for body in case.operation.body if body.media_type == case.media_type]
    if not bodies or case.body is None:
        return False
    return bool(jsonschema_rs.validator_for(bodies[0].resolved_schema).is_valid(case.body))


@schemathesis.hook
def filter_failure(context: schemathesis.HookContext, failure: Failure, case: schemathesis.Case,
                   response: schemathesis.Response) -> bool:
    """Keeps every failure but a schema-valid request refused for the ledger's state or its Unicode version,
    and a "schema-violating" body that JSON Schema itself finds valid."""
    if isinstance(failure, AcceptedNegativeData):
        return not valid_by_the_standard(case)
    if not isinstance(failure, RejectedPositiveData):
        return True
    return not (refused_for_state(response) or refused_for_unassigned(case, response))
