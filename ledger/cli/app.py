"""The Typer application every command module registers on."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from ledger.settings import LedgerSettings, SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The support-credit ledger.")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit."""
    typer.echo(message, err=True)
    sys.exit(code)


def settings_or_exit() -> LedgerSettings:
    try:
        return load_settings()
    except SettingsError as e:
        fail(f"invalid configuration: {e}")
