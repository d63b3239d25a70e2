"""The Typer application every command module registers on.

Invariants owned here:
- every command accepts ``--database-url`` (before or after the command's
  name), which sets ``LEDGER_DATABASE_URL`` for this run (and the API
  workers ``ledger serve`` starts);
- a command opens the ledger through ``services_or_exit`` or
  ``ledger_or_exit``: a database that cannot be used (unreachable, missing,
  wrong password, no privilege on the schema) prints one line naming
  ``LEDGER_DATABASE_URL`` (password masked) and what the server said, and
  exits 2.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, get_type_hints

import typer

from ledger.application import Ledger
from ledger.bootstrap import DATABASE_VARIABLE, Services, open_checked, open_checked_ledger
from ledger.errors import DatabaseUnusableError
from ledger.settings import LedgerSettings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])

#: The exit status of a configuration or database that cannot be used.
CONFIG_EXIT = 2


def _set_database_url(value: str | None) -> None:
    if value:
        os.environ[DATABASE_VARIABLE] = value


def database_url_option() -> Any:
    """``--database-url``, accepted by every command."""
    return typer.Option(
        None,
        "--database-url",
        help=f"The database ({DATABASE_VARIABLE}), e.g. postgresql://user:pw@host:5432/ledger.",
        callback=_set_database_url,
        expose_value=False,
        is_eager=True,
    )


app = typer.Typer(no_args_is_help=True, add_completion=False, help="The support-credit ledger.")


@app.callback()
def _main(_database_url: str | None = database_url_option()) -> None:
    """The support-credit ledger."""


def command(
    name: str | None = None, *, group: typer.Typer | None = None, **kwargs: Any
) -> Callable[[F], F]:
    """``app.command`` (or ``group.command``) whose command also accepts
    ``--database-url``."""

    def register(function: F) -> F:
        signature = inspect.signature(function, eval_str=True)
        parameter = inspect.Parameter(
            "_database_url",
            inspect.Parameter.KEYWORD_ONLY,
            default=database_url_option(),
            annotation=str | None,
        )

        def wrapper(*args: Any, _database_url: None = None, **kw: Any) -> Any:
            return function(*args, **kw)

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), parameter]
        )
        wrapper.__annotations__ = {**get_type_hints(function), "_database_url": str | None}
        wrapper.__doc__ = function.__doc__
        wrapper.__name__ = function.__name__
        (group or app).command(name, **kwargs)(wrapper)
        return function

    return register


def fail(message: str, code: int = CONFIG_EXIT) -> NoReturn:
    """Print one line to stderr and exit."""
    typer.echo(message, err=True)
    sys.exit(code)


def settings_or_exit() -> LedgerSettings:
    try:
        return load_settings()
    except SettingsError as e:
        fail(f"invalid configuration: {e}")


def services_or_exit(
    settings: LedgerSettings | None = None,
    *,
    batch_size: int | None = None,
    rebuild_batch_size: int | None = None,
) -> Services:
    """The services of these settings (the environment's by default), or one
    line and exit 2 when the database cannot be used."""
    try:
        return open_checked(
            settings or settings_or_exit(),
            batch_size=batch_size,
            rebuild_batch_size=rebuild_batch_size,
        )
    except DatabaseUnusableError as e:
        fail(e.detail)


def ledger_or_exit(settings: LedgerSettings | None = None) -> Ledger:
    """The ledger alone, with the same one-line errors as ``services_or_exit``."""
    try:
        return open_checked_ledger(settings or settings_or_exit())
    except DatabaseUnusableError as e:
        fail(e.detail)
