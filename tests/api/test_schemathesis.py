"""Property-based contract check: schemathesis generates requests from the
app's own OpenAPI document (as the admin, who may call everything) and checks
that no answer is a 5xx and every answer matches its documented schema.

Bounded: a few examples per operation, on SQLite; the lifespan runs for the
whole module (schemathesis keeps it alive between calls).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from tests.api.conftest import auth, make_settings

_DIRECTORY = Path(tempfile.mkdtemp(prefix="ledger-schemathesis-"))
app = create_app(make_settings(f"sqlite:///{_DIRECTORY / 'ledger.db'}"))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_every_answer_matches_the_schema(case: schemathesis.Case) -> None:
    wait = case.query.get("wait") if case.query else None
    if isinstance(wait, int | float) or (
        isinstance(wait, str) and wait.replace(".", "", 1).isdigit()
    ):
        # The event feed's long poll holds an empty answer up to ``wait``
        # seconds (at most 30): allowed here, but not for that long.
        case.query["wait"] = min(float(wait), 1.0)
    case.call_and_validate(
        headers=auth("admin"), checks=[not_a_server_error, response_schema_conformance]
    )
