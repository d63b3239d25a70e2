"""``ledger project``, ``ledger rebuild [NAME]`` and ``ledger reconcile``:
running, rebuilding and checking the read models from the command line."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ledger.bootstrap import Services, open_integrations, open_services
from ledger.cli.app import app, fail, settings_or_exit
from ledger.errors import ProjectionFailedError, StoreUnavailableError
from ledger.projections import reconcile as reconcile_read_models

log = logging.getLogger("ledger.project")

PROGRESS_LOG_INTERVAL_S = 5.0
#: ``ledger project``'s exit status when a read model cannot apply an event.
PROJECTION_FAILED_EXIT = 3

BatchSize = typer.Option(
    None,
    "--batch-size",
    envvar="LEDGER_PROJECTION_BATCH_SIZE",
    min=1,
    max=100_000,
    help="Events per read-model transaction.",
)


class RateColumn(ProgressColumn):
    """Events per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} ev/s" if speed else "- ev/s", style="progress.data.speed")


def _services(batch_size: int | None) -> Services:
    settings = settings_or_exit()
    try:
        return open_services(settings, batch_size=batch_size, rebuild_batch_size=batch_size)
    except StoreUnavailableError as e:
        fail(f"store unavailable: {e}", code=1)


@app.command()
def project(batch_size: int | None = BatchSize) -> None:
    """Run the read models until SIGTERM or SIGINT (a worker for PostgreSQL)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services = _services(batch_size)
    projections = services.projections
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    counted = {"events": 0, "position": 0}
    last_log = [time.monotonic()]

    def on_batch(position: int, events: int) -> None:
        counted["events"] += events
        counted["position"] = max(counted["position"], position)
        now = time.monotonic()
        if now - last_log[0] >= PROGRESS_LOG_INTERVAL_S:
            rate = counted["events"] / (now - last_log[0])
            log.info("processed up to %d (%.0f events/s)", counted["position"], rate)
            counted["events"] = 0
            last_log[0] = now

    log.info("read models %s: worker started", ", ".join(projections.names))
    # The webhooks are delivered from the same process, in threads of their own.
    integrations = open_integrations(services.settings, services.ledger).start()
    try:
        projections.run_forever(stop, on_batch)
    except ProjectionFailedError as e:
        # Logged by the worker too; the exit code tells the supervisor.
        fail(f"read model worker stopped: {e.detail}", code=PROJECTION_FAILED_EXIT)
    finally:
        integrations.close()
        services.close()
    log.info("worker stopped")


@app.command()
def rebuild(
    name: str | None = typer.Argument(None, help="One read model; all when omitted."),
    batch_size: int | None = BatchSize,
) -> None:
    """Empty the read models and rebuild them from the event store."""
    services = _services(batch_size)
    projections = services.projections
    if name is not None and name not in projections.names:
        services.close()
        fail(f"unknown read model {name!r}; known: {', '.join(projections.names)}")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
    )
    started = time.monotonic()
    try:
        with Progress(*columns) as progress:
            task = progress.add_task(f"rebuild {name or 'all'}", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            events = projections.rebuild([name] if name else None, on_progress)
    except StoreUnavailableError as e:
        fail(f"store unavailable: {e}", code=1)
    finally:
        services.close()
    elapsed = time.monotonic() - started
    typer.echo(f"rebuilt {name or 'all read models'}: {events} events in {elapsed:.1f} s")


@app.command()
def reconcile() -> None:
    """Recompute every balance from the events and compare it with the read
    models; exit 1 on any difference."""
    services = _services(None)
    try:
        differences = reconcile_read_models(services.ledger, services.projections)
        positions = services.projections.positions()
    except StoreUnavailableError as e:
        fail(f"store unavailable: {e}", code=1)
    finally:
        services.close()
    if differences:
        for line in differences:
            typer.echo(line)
        fail(f"{len(differences)} difference(s) between the events and the read models", 1)
    typer.echo(f"read models consistent with the events (processed up to {positions})")
