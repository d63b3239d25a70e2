"""The audit commands, run as a finance person would: ``ledger verify``,
``statement``, ``verify-statement``, ``replay`` and ``export-audit``."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from ledger.cli import app
from tests.audit.conftest import FINANCE, Story, tamper_sqlite

runner = CliRunner()


@pytest.fixture
def env(story: Story, monkeypatch: pytest.MonkeyPatch) -> Story:
    monkeypatch.setenv("LEDGER_DATABASE_URL", story.url)
    monkeypatch.setenv("LEDGER_SUPPORT_HOURS", "24/7")
    return story


def test_verify_says_ok_with_the_head(env: Story) -> None:
    result = runner.invoke(app, ["verify"])

    assert result.exit_code == 0, result.output
    head = env.audit.head()
    assert f"head position {head.position}" in result.output
    assert head.hash in result.output


def test_a_statement_verifies_until_the_store_is_tampered_with(env: Story, tmp_path: Path) -> None:
    file = tmp_path / "statement.json"
    issued = runner.invoke(app, ["statement", env.customer_id, "--out", str(file)])
    assert issued.exit_code == 0, issued.output
    content = json.loads(file.read_text())
    assert content["opening_balance"] == 0
    assert [line["amount"] for line in content["lines"]] == [80, -25, 10, -5]
    assert content["closing_balance"] == 60

    untouched = runner.invoke(app, ["verify-statement", str(file)])
    assert untouched.exit_code == 0, untouched.output
    assert untouched.output.startswith("OK")

    charged = content["lines"][1]["position"]
    _rewrite_amount(env, charged)
    tampered = runner.invoke(app, ["verify-statement", str(file)])

    assert tampered.exit_code == 1
    assert f"position {charged}: the stored event differs" in tampered.output
    assert "the history up to position" in tampered.output


def test_an_edited_statement_file_fails_its_digest(env: Story, tmp_path: Path) -> None:
    file = tmp_path / "statement.json"
    runner.invoke(app, ["statement", env.customer_id, "--out", str(file)])
    content = json.loads(file.read_text())
    content["closing_balance"] = 1000
    file.write_text(json.dumps(content))

    result = runner.invoke(app, ["verify-statement", str(file)])

    assert result.exit_code == 1
    assert "digest does not match" in result.output


def test_statement_of_a_period_starts_from_the_balance_before_it(env: Story) -> None:
    lines = env.audit.statement(env.customer_id).lines
    since = lines[1].at

    statement = env.audit.statement(env.customer_id, since=_dt(since))

    assert statement.opening_balance == 80
    assert [line.kind for line in statement.lines] == ["charge", "refund", "adjustment"]


def test_replay_prints_the_timeline_of_a_request(env: Story) -> None:
    result = runner.invoke(app, ["replay", str(env.request_id)])

    assert result.exit_code == 0, result.output
    for event in ("RequestOpened", "AnswerCharged", "ChargeDisputed", "ChargeRefunded"):
        assert event in result.output
    assert "goodwill" in result.output


def test_replay_of_an_unknown_request_says_so(env: Story) -> None:
    result = runner.invoke(app, ["replay", "00000000-0000-0000-0000-000000000000"])

    assert result.exit_code == 2
    assert "no support request" in result.output


def test_export_writes_every_movement_and_ends_with_the_chain_head(
    env: Story, tmp_path: Path
) -> None:
    out = tmp_path / "audit.csv"

    result = runner.invoke(app, ["export-audit", "--out", str(out)])

    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    head = env.audit.head()
    assert lines[-1] == (
        f"# chain head: position={head.position} count={head.count} hash={head.hash}"
    )
    rows = list(csv.DictReader(lines[:-1]))
    assert [int(r["amount"]) for r in rows] == [80, -25, 10, -5]
    assert {r["customer_id"] for r in rows} == {env.customer_id}


def test_verify_exits_1_and_names_the_break(env: Story) -> None:
    if not env.url.startswith("postgresql"):
        return  # the SQLite tampering is covered in test_chain
    charged = env.audit.statement(env.customer_id).lines[1].position
    _rewrite_amount(env, charged)

    result = runner.invoke(app, ["verify"])

    assert result.exit_code == 1
    assert f"BROKEN at position {charged}: changed" in result.output


def _rewrite_amount(story: Story, position: int) -> None:
    old, new = '"amount":-25', '"amount":-2'
    if story.url.startswith("postgresql"):
        with psycopg.connect(story.url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                "UPDATE ledger_events SET state = convert_to(replace(convert_from(state, "
                "'UTF8'), %s, %s), 'UTF8') WHERE notification_id = %s",
                (old, new, position),
            )
        return
    tamper_sqlite(
        story.url,
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), ?, ?) AS BLOB) "
        "WHERE rowid = ?",
        params=(old, new, position),
    )


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_export_writes_formula_like_text_as_text_and_keeps_amounts_numbers(
    env: Story, tmp_path: Path
) -> None:
    env.ledger.adjust_balance(env.customer_id, 7, '=HYPERLINK("http://x","click")', actor=FINANCE)
    out = tmp_path / "audit.csv"

    result = runner.invoke(app, ["export-audit", "--out", str(out)])

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text().splitlines()[:-1]))
    assert rows[-1]["reason"] == '\'=HYPERLINK("http://x","click")'
    assert [int(r["amount"]) for r in rows] == [80, -25, 10, -5, 7]
