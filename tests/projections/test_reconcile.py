"""``ledger reconcile`` recomputes balances from the events and finds a
tampered read-model row; ``ledger rebuild`` restores it. A difference is a
line naming the account, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ledger.application import Ledger
from ledger.bootstrap import Services
from ledger.cli import app
from ledger.persistence.store import Store
from ledger.projections import reconcile
from tests.projections.story import FINANCE, tell


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_SUPPORT_HOURS", "24/7")


def tamper(store: Store, sql: str) -> None:
    """Change a read-model table directly, behind the projections' back."""
    writer = store.writer()
    try:
        with writer.transaction() as cur:
            cur.run(sql)
    finally:
        writer.close()


def test_reconcile_finds_a_tampered_balance_and_exits_1(
    ledger: Ledger, services: Services, cli_env: None
) -> None:
    tell(ledger)
    runner = CliRunner()
    consistent = runner.invoke(app, ["reconcile"])
    assert consistent.exit_code == 0, consistent.output
    assert "consistent" in consistent.output

    tamper(
        services.store, "UPDATE rm_balances SET balance = balance + 1 WHERE customer_id = 'acme'"
    )
    differences = reconcile(ledger, services.projections)
    assert "acme: balance is 123 in the events, 124 in balances" in differences
    assert "summary: credits outstanding 238, balances sum to 239" in differences
    result = runner.invoke(app, ["reconcile"])
    assert result.exit_code == 1
    assert "acme: balance is 123 in the events, 124 in balances" in result.output

    rebuilt = runner.invoke(app, ["rebuild", "balances"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt balances" in rebuilt.output
    assert reconcile(ledger, services.projections) == []


def test_reconcile_finds_a_tampered_movement(ledger: Ledger, services: Services) -> None:
    tell(ledger)
    services.projections.catch_up()
    tamper(
        services.store,
        "UPDATE rm_movements SET amount = -11 WHERE amount = -10 AND customer_id = 'bolt'",
    )
    tamper(
        services.store,
        "DELETE FROM rm_movements WHERE kind = 'adjustment' AND customer_id = 'bolt'",
    )
    assert reconcile(ledger, services.projections) == [
        "bolt: balance is 115 in the events, movements sum to 99",
        "bolt: balance is 115 in the events, the last movement's balance_after is 100",
    ]


def test_lots_that_run_out_are_a_difference_naming_the_account_not_a_traceback(
    ledger: Ledger, services: Services, cli_env: None
) -> None:
    tell(ledger)
    services.projections.catch_up()
    tamper(services.store, "UPDATE rm_summary_lots SET remaining = 0")
    corrected = ledger.adjust_balance("acme", -5, "correction", actor=FINANCE)

    differences = reconcile(ledger, services.projections)

    assert differences[0] == (
        f"acme: the summary's FIFO lots cannot take the event at position "
        f"{corrected.position}: 5 of 5 credits found no lot"
    )
    assert "acme: balance is 118 in the events, its FIFO lots hold 0" in differences
    assert "bolt: balance is 115 in the events, its FIFO lots hold 0" in differences
    result = CliRunner().invoke(app, ["reconcile"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback: a report
    assert "acme: the summary's FIFO lots cannot take the event" in result.output


def test_lots_that_disagree_with_a_balance_name_the_account(
    ledger: Ledger, services: Services
) -> None:
    tell(ledger)
    services.projections.catch_up()
    tamper(services.store, "UPDATE rm_summary_lots SET remaining = remaining + 2")
    differences = reconcile(ledger, services.projections)
    assert any(
        line.startswith("acme: balance is 123 in the events, its FIFO lots hold ")
        for line in differences
    )
    assert any(
        line.startswith("bolt: balance is 115 in the events, its FIFO lots hold ")
        for line in differences
    )


def test_an_account_that_cannot_be_compared_is_a_difference(
    ledger: Ledger, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    tell(ledger)
    services.projections.catch_up()
    load = ledger.get_account

    def get_account(customer_id: str) -> object:
        if customer_id == "bolt":
            raise ArithmeticError("balance_after 100 does not follow 85 + 10")
        return load(customer_id)

    monkeypatch.setattr(ledger, "get_account", get_account)
    assert reconcile(ledger, services.projections) == [
        "bolt: cannot be compared: ArithmeticError: balance_after 100 does not follow 85 + 10"
    ]


def test_rebuild_refuses_an_unknown_read_model(cli_env: None) -> None:
    result = CliRunner().invoke(app, ["rebuild", "nonsense"])
    assert result.exit_code == 2
    assert "unknown read model" in result.output
