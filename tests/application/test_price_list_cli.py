"""``ledger price-list publish FILE.json`` and ``ledger price-list show``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.bootstrap import open_ledger
from ledger.cli import app
from ledger.policy import DEFAULT_PRICE_LIST
from ledger.settings import load_settings

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("LEDGER_SUPPORT_HOURS", "24/7")
    return tmp_path


def write_list(directory: Path, **changes: object) -> Path:
    data = json.loads(json.dumps(DEFAULT_PRICE_LIST.to_data(), default=str))
    data["categories"]["theme_update"] = 120
    data["effective_from"] = "2099-01-04T00:00:00+04:00"
    data.update(changes)
    file = directory / "prices.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    return file


def test_publish_a_file_then_show_it(store: Path) -> None:
    published = runner.invoke(app, ["price-list", "publish", str(write_list(store))])

    assert published.exit_code == 0, published.output
    assert "version 2" in published.output
    shown = runner.invoke(app, ["price-list", "show", "--at", "2099-02-01T00:00:00Z"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert (body["version"], body["categories"]["theme_update"]) == (2, 120)
    ledger = open_ledger(load_settings())
    try:
        assert [p.version for p in ledger.price_lists()] == [1, 2]
    finally:
        ledger.close()


def test_a_refused_file_names_the_field_and_stores_nothing(store: Path) -> None:
    file = write_list(store, store_update={"base": 20, "included_steps": -1, "per_step": 5})

    refused = runner.invoke(app, ["price-list", "publish", str(file)])

    assert refused.exit_code == 2
    assert "store_update.included_steps" in refused.output
    ledger = open_ledger(load_settings())
    try:
        assert ledger.position() == 0
    finally:
        ledger.close()
