"""What every benchmark shares: the database it runs on, the seeding of
accounts and open requests through the application, percentiles, and the
writing of ``bench/results.json`` and of one section of ``bench/results.md``.

Seeding goes through the aggregates and ``Ledger.save`` in appends of at most
``MAX_EVENTS_PER_SAVE`` events: psycopg's pipeline mode over a Unix socket
stalls on appends of thousands of events.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.aggregates import CustomerAccount, SupportRequest
from ledger.application import Ledger
from ledger.policy import Category
from ledger.values import Actor, Role

HERE = Path(__file__).parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"
MAX_EVENTS_PER_SAVE = 400

FINANCE = Actor(Role.FINANCE, "bench")
HELPDESK = Actor(Role.HELPDESK, "bench")
SPECIALIST = Actor(Role.SPECIALIST, "bench")


@contextmanager
def database() -> Iterator[str]:
    """``LEDGER_BENCH_DATABASE_URL`` (a database the run may fill), or a
    throwaway PostgreSQL from ``tests.pg``, removed on exit."""
    url = os.environ.get("LEDGER_BENCH_DATABASE_URL")
    if url:
        yield url
        return
    from tests.pg import provision_postgres

    with provision_postgres() as url:
        yield url


def now() -> datetime:
    return datetime.now(UTC)


def seed_accounts(ledger: Ledger, prefix: str, count: int, credits: int) -> list[str]:
    """``count`` accounts, each credited ``credits`` by an adjustment; their customer ids."""
    at = now()
    customer_ids = [f"{prefix}-{i}" for i in range(count)]
    batch: list[CustomerAccount] = []
    for customer_id in customer_ids:
        account = CustomerAccount.open(customer_id, customer_id, actor=HELPDESK, at=at)
        account.adjust(credits, "bench seed", actor=FINANCE, at=at)
        batch.append(account)
        if 2 * len(batch) >= MAX_EVENTS_PER_SAVE:
            ledger.save(*batch)
            batch = []
    if batch:
        ledger.save(*batch)
    return customer_ids


def seed_requests(ledger: Ledger, customer_ids: Sequence[str], count: int) -> list[UUID]:
    """``count`` open investigations (price 20), round-robin over the accounts,
    so that consecutive requests belong to different accounts."""
    at = now()
    accounts = [ledger._account(c) for c in customer_ids]
    request_ids: list[UUID] = []
    batch: list[SupportRequest] = []
    for i in range(count):
        account = accounts[i % len(accounts)]
        request = SupportRequest.open(
            account, Category.INVESTIGATION, f"bench {i}", "helpdesk", actor=HELPDESK, at=at
        )
        batch.append(request)
        request_ids.append(request.id)
        if len(batch) >= MAX_EVENTS_PER_SAVE:
            ledger.save(*batch)
            batch = []
    if batch:
        ledger.save(*batch)
    return request_ids


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return float(cuts[min(998, max(0, round(fraction * 1000) - 1))])


def measured_at() -> str:
    return now().isoformat(timespec="seconds")


def save_json(figures: dict[str, Any]) -> None:
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    results.update(figures)
    RESULTS_JSON.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def save_section(title: str, body: str) -> None:
    """Replace (or append) the section ``## title`` of ``bench/results.md``."""
    section = f"## {title}\n\n{body.rstrip()}\n"
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    marker = f"## {title}\n"
    if marker in text:
        before, _, after = text.partition(marker)
        rest = after.split("\n## ", 1)
        text = before + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS_MD.write_text(text)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def profile_table(
    run: Callable[[], object], groups: Sequence[tuple[str, Callable[[str, str], bool]]]
) -> str:
    """Run ``run`` under ``cProfile``; a table of the cumulative time of the
    frames each group matches (``match(file, function)``), as seconds and
    as a share of the whole run. Groups may nest (a row "of which")."""
    profiler = cProfile.Profile()
    profiler.runcall(run)
    stats: Any = pstats.Stats(profiler)
    total = sum(entry[2] for entry in stats.stats.values())  # own time of every frame
    rows = []
    for label, match in groups:
        spent = sum(
            entry[3] for (file, _, function), entry in stats.stats.items() if match(file, function)
        )
        rows.append((label, f"{spent:.2f}", f"{100 * spent / total:.0f}%"))
    return (
        table(("where (cProfile, one run)", "s", "share"), rows)
        + f"\nWhole run under the profiler: {total:.2f} s.\n"
    )


def frame(file_part: str, *functions: str) -> Callable[[str, str], bool]:
    """Matches the frames of ``functions`` in a file whose path holds ``file_part``."""
    return lambda file, function: file_part in file and function in functions
