"""``ledger reconcile`` recomputes balances from the events and finds a
tampered read-model row; ``ledger rebuild`` restores it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ledger.application import Ledger
from ledger.cli import app
from ledger.projections import ReadModels
from tests.projections.story import tell


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_SUPPORT_HOURS", "24/7")


def tamper(read_models: ReadModels, sql: str) -> None:
    writer = read_models.store.writer()
    try:
        with writer.transaction() as cur:
            cur.run(sql)
    finally:
        writer.close()


def test_reconcile_finds_a_tampered_balance_and_exits_1(
    ledger: Ledger, read_models: ReadModels, cli_env: None
) -> None:
    tell(ledger)
    runner = CliRunner()
    consistent = runner.invoke(app, ["reconcile"])
    assert consistent.exit_code == 0, consistent.output
    assert "consistent" in consistent.output

    tamper(read_models, "UPDATE rm_balances SET balance = balance + 1 WHERE customer_id = 'acme'")
    differences = read_models.reconcile()
    assert "acme: balance is 123 in the events, 124 in balances" in differences
    assert "summary: credits outstanding 238, balances sum to 239" in differences
    result = runner.invoke(app, ["reconcile"])
    assert result.exit_code == 1
    assert "acme: balance is 123 in the events, 124 in balances" in result.output

    rebuilt = runner.invoke(app, ["rebuild", "balances"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt balances" in rebuilt.output
    assert read_models.reconcile() == []


def test_reconcile_finds_a_tampered_movement(ledger: Ledger, read_models: ReadModels) -> None:
    tell(ledger)
    read_models.catch_up()
    tamper(
        read_models,
        "UPDATE rm_movements SET amount = -11 WHERE amount = -10 AND customer_id = 'bolt'",
    )
    tamper(
        read_models, "DELETE FROM rm_movements WHERE kind = 'adjustment' AND customer_id = 'bolt'"
    )
    assert read_models.reconcile() == [
        "bolt: balance is 115 in the events, movements sum to 99",
        "bolt: balance is 115 in the events, the last movement's balance_after is 100",
    ]


def test_rebuild_refuses_an_unknown_read_model(cli_env: None) -> None:
    result = CliRunner().invoke(app, ["rebuild", "nonsense"])
    assert result.exit_code == 2
    assert "unknown read model" in result.output
