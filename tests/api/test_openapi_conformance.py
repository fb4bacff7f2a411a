"""The OpenAPI document states what the server accepts and answers: schemathesis on every operation, every check.

Bounded here (a few minutes on two cores); `-m soak` runs the same with many more examples. Both run
in-process over WSGI against the real ledger, view and accounts on PostgreSQL, authenticated as admin.
What is tolerated, and why, is in `tests/api/conformance_checks.py`.
"""

from __future__ import annotations

from typing import Any

import falcon
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.core.failures import FailureGroup
from schemathesis.pytest.lazy import get_all_tests

from tests.api import conformance_checks
from tests.api.conformance_checks import CONFIG

OPENAPI = "/ledger/v1/openapi.json"
EXAMPLES = 25
STATEFUL_SCENARIOS = 15
SOAK_EXAMPLES = 400
SOAK_SCENARIOS = 300


# Sequences run against one database whose state each step changes: replaying a failing sequence to shrink it
# meets another state (a user that now exists, a task now done), which hypothesis reports as an inconsistent
# strategy instead of the failure. So sequences are not shrunk: a failure is reported as it was found.
UNSHRUNK = (Phase.explicit, Phase.generate)
# hypothesis also notices, while generating, that a choice it made before now leads elsewhere (a bundle of
# created tasks filled differently): FlakyStrategyDefinition, a property of testing against a persistent
# database, not a finding. A run that meets it is run again, at most this many times in all; any failure
# schemathesis reports fails at once.
SEQUENCE_ATTEMPTS = 3


def run_sequences(schema: schemathesis.BaseSchema, scenarios: int, steps: int) -> None:
    for attempt in range(1, SEQUENCE_ATTEMPTS + 1):
        try:
            schema.as_state_machine().run(settings=_settings(scenarios, stateful_step_count=steps, phases=UNSHRUNK))
            return
        except FlakyStrategyDefinition:
            if attempt == SEQUENCE_ATTEMPTS:
                raise


def _settings(examples: int, **extra: Any) -> settings:
    # No example database: runs stay independent of each other and write nothing into the tree.
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), **extra)


@pytest.fixture(scope="module")
def conformance_schema(app: falcon.App, credentials: dict[str, dict[str, str]]) -> schemathesis.BaseSchema:
    assert conformance_checks.filter_failure  # the hook is registered by importing the module
    config = schemathesis.Config.from_dict({
        **CONFIG,
        "auth": {"basic": {"username": "api-admin", "password": "admin-secret-pw"}},
        "checks": {**CONFIG["checks"], "enabled": True},
        "phases": {"enabled": True},
        "generation": {"mode": "all", "database": "none"},
    })
    return schemathesis.openapi.from_wsgi(OPENAPI, app, config=config)


def run_every_operation(schema: schemathesis.BaseSchema, examples: int, subtests: pytest.Subtests) -> None:
    """Every operation's schemathesis test (all phases) as a subtest; schemathesis's failures are reported as such.

    Not `schemathesis.pytest.from_fixture`: with pytest 9 it fails before running anything (it renames the
    test item through `Function._nodeid`, which pytest 9 no longer has), so the operations are run here.
    """
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate()

    ran = 0
    for result in get_all_tests(schema=schema, test_func=check, settings=_settings(examples), given_kwargs={}):
        operation, test = result.ok()  # an operation schemathesis cannot build a test for is a broken document
        with subtests.test(label=operation.label):
            ran += 1
            try:
                test()
            except FailureGroup as failures:
                raise AssertionError(f"{operation.label}: {failures}") from None
    assert ran >= 20, f"only {ran} operations in the document"


def test_every_operation_accepts_what_the_document_allows_and_answers_as_documented(
        conformance_schema: schemathesis.BaseSchema, subtests: pytest.Subtests) -> None:
    run_every_operation(conformance_schema, EXAMPLES, subtests)


def test_sequences_of_operations_answer_as_documented(conformance_schema: schemathesis.BaseSchema) -> None:
    run_sequences(conformance_schema, STATEFUL_SCENARIOS, 8)


@pytest.mark.soak
@pytest.mark.timeout(3600)  # 400 examples of each operation: POST /users alone hashes 400 passwords
def test_every_operation_conforms_under_a_long_run(conformance_schema: schemathesis.BaseSchema,
                                                   subtests: pytest.Subtests) -> None:
    run_every_operation(conformance_schema, SOAK_EXAMPLES, subtests)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_sequences_of_operations_conform_under_a_long_run(conformance_schema: schemathesis.BaseSchema) -> None:
    run_sequences(conformance_schema, SOAK_SCENARIOS, 12)
