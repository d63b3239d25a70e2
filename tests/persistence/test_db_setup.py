"""``ledger db setup --owner ROLE --app-role ROLE`` (issue 18, point 3): the
schema belongs to a role the service never runs as; the service runs under a
role that may insert and read the events, the snapshots and the chain, and
nothing more: no UPDATE, DELETE, TRUNCATE, ALTER, or disabling a trigger.

Before: the service's own login owned the tables, so ``ALTER TABLE ...
DISABLE TRIGGER`` or ``TRUNCATE ledger_chain`` was one statement away."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from typer.testing import CliRunner

from api.app import create_app
from ledger.bootstrap import open_services
from ledger.cli import app
from ledger.settings import LedgerSettings
from tests.api.conftest import Api, make_settings
from tests.audit.conftest import tell_story
from tests.pg import make_url, split_url

runner = CliRunner()
APPEND_ONLY = ("ledger_events", "ledger_snapshots", "ledger_chain")


@dataclass
class Roles:
    admin_url: str
    app_url: str
    owner: str
    app_role: str


@pytest.fixture
def roles(fresh_postgres_url: str) -> Iterator[Roles]:
    """An owner (no login) and a service role (login) of this test's own;
    dropped afterwards, with everything they own in the test's database."""
    suffix = secrets.token_hex(4)
    owner, app_role, password = f"ledger_owner_{suffix}", f"ledger_app_{suffix}", "app-pw-1"
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(app_role), sql.Literal(password)
            )
        )
    app_url = make_url(**{**split_url(fresh_postgres_url), "user": app_role, "password": password})
    try:
        yield Roles(fresh_postgres_url, app_url, owner, app_role)
    finally:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (app_role,),
            )
            for role in (owner, app_role):
                conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _setup(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", roles.admin_url)
    result = runner.invoke(
        app, ["db", "setup", "--owner", roles.owner, "--app-role", roles.app_role]
    )
    assert result.exit_code == 0, result.output
    assert f"owned by {roles.owner}" in result.output


@pytest.mark.postgres
def test_the_service_runs_under_the_restricted_role(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(roles, monkeypatch)
    monkeypatch.setenv("CREATE_TABLE", "false")  # the service creates nothing

    settings = LedgerSettings(database_url=roles.app_url, support_hours="24/7", snapshot_interval=2)
    services = open_services(settings)
    ledger, read_models = services.ledger, services.projections
    read_models.start()
    try:
        customer_id = f"cust-{uuid4().hex[:8]}"
        tell_story(ledger, customer_id)  # events and snapshots
        deadline = time.monotonic() + 20
        while any(read_models.lag().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(read_models.lag().values()), read_models.lag()
        result = services.audit.verify()
        assert result.ok and result.checked == ledger.position()
        assert result.snapshots_checked >= 2
    finally:
        services.close()

    # And the API, its commands and reads, under the same role.
    with TestClient(create_app(make_settings(roles.app_url))) as client:
        api = Api(client)
        customer_id = api.open_account()
        api.buy(customer_id)
        charged = api.charged_request(customer_id)
        assert charged["balance"] == 80 - charged["charged"] < 80
        account = api.ok(
            api.get("helpdesk", f"/v1/accounts/{customer_id}?after={charged['position']}")
        )
        assert account["balance"] == charged["balance"]
        assert api.ok(api.get("finance", "/v1/audit/verify"))["ok"] is True

    with psycopg.connect(roles.admin_url) as conn:
        owners = conn.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert {owner for _, owner in owners} == {roles.owner}


@pytest.mark.postgres
def test_the_restricted_role_cannot_change_or_unprotect_the_append_only_tables(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(roles, monkeypatch)
    monkeypatch.setenv("CREATE_TABLE", "false")
    services = open_services(
        LedgerSettings(database_url=roles.app_url, support_hours="24/7", snapshot_interval=2)
    )
    tell_story(services.ledger, f"cust-{uuid4().hex[:8]}")
    services.audit.catch_up()
    services.close()

    attacks = [
        "UPDATE {t} SET originator_version = originator_version",
        "DELETE FROM {t}",
        "TRUNCATE {t}",
        "ALTER TABLE {t} DISABLE TRIGGER ALL",
        "ALTER TABLE {t} ADD COLUMN forged int",
        "DROP TABLE {t}",
        "ALTER TABLE {t} OWNER TO CURRENT_USER",
    ]
    with psycopg.connect(roles.app_url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (roles.app_role,)
        with pytest.raises(psycopg.Error):
            conn.execute("SET session_replication_role = replica")  # a superuser's switch
        for table in APPEND_ONLY:
            before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert before is not None and before[0] > 0, table
            for attack in attacks:
                statement = attack.format(t=table)
                with pytest.raises(psycopg.Error) as refused:
                    conn.execute(statement)
                message = str(refused.value)
                assert "permission denied" in message or "must be owner" in message, (
                    statement,
                    message,
                )
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == before


@pytest.mark.postgres
def test_setup_names_a_missing_role(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", fresh_postgres_url)
    result = runner.invoke(app, ["db", "setup", "--owner", "nobody_x1", "--app-role", "nobody_x2"])
    assert result.exit_code != 0
    assert 'role "nobody_x1" does not exist' in result.output


@pytest.mark.postgres
def test_setup_refuses_a_service_role_that_owns_the_database(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner of a schema may drop any table in it (``public`` belongs to
    the database's owner since PostgreSQL 15)."""
    dbname = split_url(roles.admin_url)["dbname"]
    with psycopg.connect(roles.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(dbname), sql.Identifier(roles.app_role)
            )
        )
    try:
        monkeypatch.setenv("LEDGER_DATABASE_URL", roles.admin_url)
        result = runner.invoke(
            app, ["db", "setup", "--owner", roles.owner, "--app-role", roles.app_role]
        )
        assert result.exit_code != 0
        assert f'role "{roles.app_role}" owns the database' in result.output
    finally:
        with psycopg.connect(roles.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(sql.Identifier(dbname))
            )
