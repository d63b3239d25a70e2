"""Audit commands: ``verify``, ``statement``, ``verify-statement``,
``replay`` and ``export-audit``. Each reads the event store itself."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from ledger.audit.service import EXPORT_COLUMNS, Audit
from ledger.bootstrap import Services
from ledger.cli.app import command, fail, ledger_or_exit, services_or_exit
from ledger.cli.progress import event_progress
from ledger.errors import LedgerError
from ledger.exports import safe_record


def _open() -> Services:
    return services_or_exit()


@contextmanager
def _audit() -> Iterator[Audit]:
    """The audit of a freshly opened ``Services``, closed afterwards."""
    services = _open()
    try:
        yield services.audit
    finally:
        services.close()


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: not an ISO 8601 time: {value!r}")
    if parsed.tzinfo is None:
        fail(f"{option}: give a time zone offset, e.g. {value}+00:00")
    return parsed


@command("verify")
def verify_command() -> None:
    """Recompute the hash chain from the event store and compare it with the
    recorded chain, then check every snapshot against a replay of its
    aggregate's events. Exit 1 at the first break."""
    with _audit() as audit, event_progress() as progress:
        total = audit.ledger.position()
        task = progress.add_task("verifying", total=total or None)
        result = audit.verify(progress=lambda done: progress.update(task, completed=done))
        progress.update(task, completed=total)
    head = result.head
    if result.ok:
        typer.echo(
            f"OK: {result.checked} events chained, head position {head.position}, "
            f"count {head.count}, hash {head.hash}; "
            f"{result.snapshots_checked} snapshots match their events"
            + (f"; {result.unchained} newer events not chained yet" if result.unchained else "")
        )
        return
    assert result.first_break is not None
    brk = result.first_break
    typer.echo(f"BROKEN at position {brk.position}: {brk.kind}: {brk.detail}")
    raise typer.Exit(1)


@command("statement")
def statement_command(
    customer_id: str,
    since: str | None = typer.Option(None, help="ISO time with offset (inclusive)."),
    until: str | None = typer.Option(None, help="ISO time with offset (exclusive)."),
    out: Path = typer.Option(..., help="Where to write the statement (JSON)."),
) -> None:
    """Issue a customer statement with the chain head and a digest."""
    with _audit() as audit:
        try:
            statement = audit.statement(
                customer_id, _time(since, "--since"), _time(until, "--until")
            )
        except LedgerError as e:
            fail(e.detail)
    out.write_text(json.dumps(statement.to_json(), indent=2, ensure_ascii=False) + "\n")
    typer.echo(
        f"statement of {customer_id}: {len(statement.lines)} movements, closing balance "
        f"{statement.closing_balance}, digest {statement.digest} -> {out}"
    )


@command("verify-statement")
def verify_statement_command(file: Path) -> None:
    """Check that the history shown in a saved statement is still the history
    in the store. Exit 1 when it is not."""
    try:
        content = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        fail(f"cannot read the statement {file}: {e}")
    with _audit() as audit:
        problems = audit.check_statement(content)
    if problems:
        for problem in problems:
            typer.echo(f"FAIL: {problem}")
        raise typer.Exit(1)
    head = content["chain_head"]
    typer.echo(
        f"OK: {len(content['lines'])} movements and the history up to position "
        f"{head['position']} are unchanged"
    )


@command("replay")
def replay_command(request_id: str) -> None:
    """A readable timeline of one request, event by event: the credits each
    event moved (charges and refunds) and each reason or pre-quote note."""
    try:
        entries = ledger_or_exit().request_history(UUID(request_id))
    except ValueError:
        fail(f"not a request id: {request_id!r}")
    except LedgerError as e:
        fail(e.detail)
    table = Table(title=f"request {request_id}")
    columns = ("#", "time", "event", "actor", "status", "price", "credits", "reason or note")
    for column in (*columns, "balance after"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            str(entry.position or ""),
            entry.at.isoformat(timespec="seconds"),
            entry.type,
            entry.actor,
            entry.state.status,
            "" if entry.state.price is None else str(entry.state.price),
            _credits(entry.data.get("amount")),
            str(entry.data.get("reason") or entry.data.get("note") or ""),
            str(entry.data.get("balance_after", "")),
        )
    console = Console()
    if not console.is_terminal:  # a file or a pipe: do not wrap at 80 columns
        console = Console(width=240)
    console.print(table)


def _credits(amount: object) -> str:
    """The credits an event moved, signed as the account saw them: ``-25``
    for a charge, ``+10`` for a refund, ``0`` for a free answer."""
    if not isinstance(amount, int):
        return ""
    return f"+{amount}" if amount > 0 else str(amount)


@command("export-audit")
def export_audit_command(
    out: Path = typer.Option(..., help="The CSV file to write."),
    since: str | None = typer.Option(None, help="ISO time with offset (inclusive)."),
    until: str | None = typer.Option(None, help="ISO time with offset (exclusive)."),
) -> None:
    """Every credit movement as CSV; the last line holds the chain head."""
    count = 0
    with (
        _audit() as audit,
        out.open("w", newline="") as f,
        event_progress() as progress,
    ):
        audit.catch_up()
        head = audit.head()
        task = progress.add_task("exporting", total=head.position or None)
        writer = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        rows = audit.movements(
            _time(since, "--since"),
            _time(until, "--until"),
            upto=head.position,
            progress=lambda done: progress.update(task, completed=done),
        )
        for row in rows:
            writer.writerow(safe_record(row))
            count += 1
        progress.update(task, completed=head.position)
        f.write(f"# chain head: position={head.position} count={head.count} hash={head.hash}\n")
    typer.echo(f"{count} movements -> {out} (chain head {head.position}, {head.hash})")
