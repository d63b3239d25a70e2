"""``LEDGER_SECRET_KEY``, the lists' cursor secret: a secret value, at least
32 characters when set; unset (or empty) means the store's own secret."""

from __future__ import annotations

import pytest

from ledger.settings import MIN_SECRET_LENGTH, SettingsError, load_settings


def test_a_short_secret_key_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGER_SECRET_KEY", "x" * (MIN_SECRET_LENGTH - 1))
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith("LEDGER_SECRET_KEY: ")
    assert "32 characters" in str(error.value)


def test_a_secret_key_is_kept_out_of_every_printout(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "k" * MIN_SECRET_LENGTH
    monkeypatch.setenv("LEDGER_SECRET_KEY", key)
    settings = load_settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == key
    assert key not in repr(settings) and key not in str(settings.secret_key)


@pytest.mark.parametrize("value", ["", None])
def test_an_unset_or_empty_secret_key_means_the_stores_secret(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("LEDGER_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("LEDGER_SECRET_KEY", value)
    assert load_settings().secret_key is None
