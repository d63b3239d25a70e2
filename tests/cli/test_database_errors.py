"""A database that cannot be used is one line naming ``LEDGER_DATABASE_URL``
(password masked) and what the server said, exit 2, in every command and at
``ledger serve``'s start-up; every command accepts ``--database-url``."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from ledger.cli import app
from tests.pg import controlled_postgres, make_url, split_url

runner = CliRunner()
ANY_ID = "00000000-0000-0000-0000-000000000001"


def commands(tmp: Path) -> list[list[str]]:
    statement = tmp / "statement.json"
    statement.write_text('{"lines": [], "chain_head": {"position": 0}}')
    return [
        ["verify"],
        ["statement", "acme", "--out", str(tmp / "out.json")],
        ["verify-statement", str(statement)],
        ["replay", ANY_ID],
        ["export-audit", "--out", str(tmp / "out.csv")],
        ["project"],
        ["rebuild"],
        ["reconcile"],
        ["db", "setup", "--owner", "o", "--app-role", "a"],
        ["webhooks", "list"],
        ["accounts"],
        ["requests"],
    ]


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def missing_database_url(postgres_url: str) -> str:
    return make_url(**{**split_url(postgres_url), "dbname": f"missing_{secrets.token_hex(4)}"})


@pytest.mark.postgres
def test_every_command_names_a_missing_database_in_one_line(
    missing_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", missing_database_url)
    dbname = split_url(missing_database_url)["dbname"]
    for args in commands(tmp_path):
        result = runner.invoke(app, args)

        assert result.exit_code == 2, (args, result.output)
        line = one_line(result.output)
        assert f"LEDGER_DATABASE_URL={missing_database_url}" in line, args
        assert f'database "{dbname}" does not exist' in line, args


def test_an_unreachable_server_is_one_line_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://ledger:s3cret-pw@127.0.0.1:{closed_port()}/ledger"
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)

    result = runner.invoke(app, ["verify"])

    assert result.exit_code == 2
    line = one_line(result.output)
    assert "s3cret-pw" not in line
    assert "LEDGER_DATABASE_URL=postgresql://ledger:***@127.0.0.1:" in line
    assert "Connection refused" in line


@pytest.mark.postgres
def test_a_role_without_privilege_on_the_schema_is_named(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = f"ledger_nopriv_{secrets.token_hex(4)}"
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-1'").format(sql.Identifier(role)))
        conn.execute("CREATE SCHEMA locked")
    url = make_url(**{**split_url(fresh_postgres_url), "user": role, "password": "pw-1"})
    try:
        monkeypatch.setenv("LEDGER_DATABASE_URL", url + "?schema=locked")
        result = runner.invoke(app, ["reconcile"])

        assert result.exit_code == 2
        line = one_line(result.output)
        assert "permission denied for schema locked" in line
        assert ":***@" in line and "pw-1" not in line
    finally:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """A throwaway cluster that checks passwords (the shared test server may
    trust its clients), with a role ``ledger_pw`` whose password is ``right-pw``."""
    with controlled_postgres() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE ROLE ledger_pw LOGIN PASSWORD 'right-pw'")
            conn.execute("CREATE DATABASE ledger_pw OWNER ledger_pw")
            hba = conn.execute("SHOW hba_file").fetchone()
            assert hba is not None
            admin = split_url(server.url)["user"]
            Path(hba[0]).write_text(f"local all {admin} trust\nlocal all all scram-sha-256\n")
            conn.execute("SELECT pg_reload_conf()")
        yield make_url(
            **{
                **split_url(server.url),
                "user": "ledger_pw",
                "password": "wrong-pw",
                "dbname": "ledger_pw",
            }
        )


def test_a_wrong_password_is_one_line(
    password_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", password_server)

    result = runner.invoke(app, ["verify"])

    assert result.exit_code == 2
    line = one_line(result.output)
    assert 'password authentication failed for user "ledger_pw"' in line
    assert "wrong-pw" not in line


@pytest.mark.postgres
def test_database_url_option_before_or_after_the_command(
    missing_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", "sqlite:///./never-used.db")
    after = runner.invoke(app, ["replay", ANY_ID, "--database-url", missing_database_url])
    before = runner.invoke(app, ["--database-url", missing_database_url, "replay", ANY_ID])

    for result in (after, before):
        assert result.exit_code == 2
        assert "does not exist" in one_line(result.output)
    assert not Path("never-used.db").exists()


@pytest.mark.postgres
def test_serve_stops_before_uvicorn_with_one_line(missing_database_url: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "LEDGER_DATABASE_URL": missing_database_url,
        "LEDGER_API_KEYS": "admin:admin-token-123",
        "LEDGER_SECRET_KEY": "s" * 40,
    }
    done = subprocess.run(
        [sys.executable, "-c", "from ledger.cli import main; main()", "serve", "--port", "8765"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2, done.stderr
    assert "does not exist" in one_line(done.stderr)
    assert "Uvicorn running" not in done.stdout + done.stderr
