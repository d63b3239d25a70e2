"""The ``ledger`` command: one Typer app; each group of commands lives in
its own module and registers itself here."""

from __future__ import annotations

from ledger.cli import audit as _audit  # noqa: F401 - registers its commands
from ledger.cli import db as _db  # noqa: F401 - registers its commands
from ledger.cli import lists as _lists  # noqa: F401 - registers its commands
from ledger.cli import projections as _projections  # noqa: F401 - registers its commands
from ledger.cli import serve as _serve  # noqa: F401 - registers its commands
from ledger.cli import webhooks as _webhooks  # noqa: F401 - registers its commands
from ledger.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
