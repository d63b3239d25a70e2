"""``ledger webhooks list``, ``deliveries`` and ``replay --from``, as an
operator runs them after an integrator's outage."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from ledger.application import Ledger
from ledger.cli import app
from ledger.integrations.service import Integrations
from tests.integrations.test_delivery import ADMIN, activity, eventually
from tests.support.receiver import receiver

runner = CliRunner()


def test_list_deliveries_and_replay_from_a_position(
    ledger: Ledger,
    integrations_for: Callable[..., Integrations],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_SUPPORT_HOURS", "24/7")
    integrations = integrations_for().start()
    with receiver() as rec:
        registered = integrations.webhooks.register(
            rec.url, ["AccountOpened", "CreditsPurchased"], actor=ADMIN
        )
        webhook_id = str(registered.webhook.webhook_id)
        activity(ledger, charges=0)
        rec.wait_for(lambda r: len(r.got) == 2)
        first, second = rec.positions()
        eventually(
            lambda: integrations.webhooks.get(registered.webhook.webhook_id).position == second
        )

        listed = runner.invoke(app, ["webhooks", "list"])
        assert listed.exit_code == 0, listed.output
        assert webhook_id in listed.output and "active" in listed.output

        log = runner.invoke(app, ["webhooks", "deliveries", webhook_id])
        assert log.exit_code == 0, log.output
        assert log.output.count("delivered") == 2

        replayed = runner.invoke(app, ["webhooks", "replay", webhook_id, "--from", str(second)])
        assert replayed.exit_code == 0, replayed.output
        rec.wait_for(lambda r: len(r.got) == 3)
        assert rec.positions() == [first, second, second]

    unknown = runner.invoke(app, ["webhooks", "deliveries", "00000000-0000-4000-8000-000000000000"])
    assert unknown.exit_code == 1 and "no webhook" in unknown.output
    bad = runner.invoke(app, ["webhooks", "replay", "nope", "--from", "1"])
    assert bad.exit_code == 2 and "not a webhook id" in bad.output
