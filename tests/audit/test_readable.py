"""Statements and replays a customer can read: each statement line says what
the movement was (the request's subject and category, the invoice's
package) in words; ``ledger replay`` shows the credits each event moved and
the pre-quote note. Statements issued before these fields still verify."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from ledger.audit.statement import statement_digest
from ledger.cli import app
from tests.audit.conftest import HELPDESK, Story

runner = CliRunner()


def test_each_statement_line_says_what_it_was(story: Story) -> None:
    lines = story.audit.statement(story.customer_id).lines
    purchase, charge, refund, adjustment = lines

    assert purchase.package == 80 and purchase.subject is None
    assert purchase.description == f"Purchase of 80 credits (invoice {purchase.invoice_id[:8]})"
    assert (charge.subject, charge.category) == ("update to 4.4.4", "store_update")
    assert charge.description == "The answer to 'update to 4.4.4' (store update)"
    assert (
        refund.description == "Refund of the answer to 'update to 4.4.4' (store update): goodwill"
    )
    assert adjustment.description == "Balance adjustment: correction"
    assert all(line.description for line in lines)


def test_a_statement_issued_before_the_descriptions_still_verifies(story: Story) -> None:
    content: dict[str, Any] = story.audit.statement(story.customer_id).to_json()
    for line in content["lines"]:
        for field in ("subject", "category", "package", "description"):
            del line[field]
    content["digest"] = statement_digest(content)

    assert story.audit.check_statement(content) == []
    content["lines"][0]["amount"] = 800
    assert story.audit.check_statement(content) != []


@pytest.fixture
def env(story: Story, monkeypatch: pytest.MonkeyPatch) -> Story:
    monkeypatch.setenv("LEDGER_DATABASE_URL", story.url)
    monkeypatch.setenv("LEDGER_SUPPORT_HOURS", "24/7")
    return story


def test_replay_shows_the_credits_each_event_moved(env: Story) -> None:
    result = runner.invoke(app, ["replay", str(env.request_id)])

    assert result.exit_code == 0, result.output
    rows = {line.split("│")[3].strip(): line for line in _rows(result.output)}
    assert " -25 " in rows["AnswerCharged"]
    assert " +10 " in rows["ChargeRefunded"] and "goodwill" in rows["ChargeRefunded"]


def test_replay_shows_the_pre_quote_note(env: Story) -> None:
    request = env.ledger.open_request(
        env.customer_id,
        "complex_modification",
        "helpdesk",
        "a new checkout step",
        actor=HELPDESK,
    )
    env.ledger.request_pre_quote(request.request_id, "two screens, see ticket 42", actor=HELPDESK)

    result = runner.invoke(app, ["replay", str(request.request_id)])

    assert result.exit_code == 0, result.output
    assert "PreQuoteRequested" in result.output
    assert "two screens, see ticket 42" in result.output


def _rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.count("│") >= 9]
