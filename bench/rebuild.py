"""Rebuild rate of the read models on PostgreSQL, beside the raw rate of
reading and decoding the same events, in the same run.

Uses ``LEDGER_BENCH_DATABASE_URL`` (a database it may fill) or starts a
throwaway PostgreSQL with ``tests.pg.provision_postgres``. Writes ~50k
events through the application's aggregates and ``save`` (many aggregates
per append: the fast path), then measures:

- raw: ``select_notifications`` in pages + ``mapper.to_domain_event`` over
  the whole log;
- rebuild: ``Projections.rebuild()`` of every read model.

Each is measured ``ROUNDS`` times, interleaved; the ratio is the median of
the per-round ratios, beside the CPU time of this process for each (the
rebuild's CPU beyond the raw read's is the read models' own Python). Then
one more rebuild and one more raw read run under ``cProfile``, and the
section shows where their time went (``profile_table``).

Results: ``bench/results.json`` keys ``rebuild_events_per_s``,
``raw_read_events_per_s``, ``rebuild_vs_raw_read``, ``rebuild_rounds``;
section "Read-model rebuild" of ``bench/results.md``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import database, frame, profile_table, save_json, save_section, table
from ledger.aggregates import CustomerAccount, Invoice, SupportRequest
from ledger.application import Ledger
from ledger.bootstrap import open_ledger, open_services
from ledger.policy import Category, SupportCalendar, custom_package, standard_package
from ledger.projections import reconcile
from ledger.settings import LedgerSettings
from ledger.values import Actor, Role

HERE = Path(__file__).parent
TARGET_EVENTS = int(os.environ.get("LEDGER_BENCH_EVENTS", "50000"))
ACCOUNTS = 8
CHARGES_PER_PURCHASE = 15  # 15 x 20 credits out of a 320-credit package
PAGE = 2000
TARGET_RATE = 10_000
ROUNDS = 3

FINANCE = Actor(Role.FINANCE, "bench")
HELPDESK = Actor(Role.HELPDESK, "bench")
SPECIALIST = Actor(Role.SPECIALIST, "bench")


def write_events(ledger: Ledger, target: int) -> int:
    """About ``target`` events: purchases (standard and custom packages) and
    charges, a purchase and its charges saved in one append per account."""
    calendar = SupportCalendar.parse("24/7")
    now = datetime.now(UTC)
    accounts = []
    for i in range(ACCOUNTS):
        account = CustomerAccount.open(
            f"bench-{i}-{time.time_ns()}", f"Bench {i}", actor=HELPDESK, at=now
        )
        ledger.save(account)
        accounts.append(account)
    written = ACCOUNTS
    cycle = 0
    while written < target:
        account = accounts[cycle % ACCOUNTS]
        package = standard_package(320) if cycle % 3 else custom_package(350, "400.00")
        invoice = Invoice.issue(account, package, actor=FINANCE, at=now)
        invoice.pay(account, f"ref-{cycle}", actor=FINANCE, at=now)
        pending: list[Any] = [invoice]
        for _ in range(CHARGES_PER_PURCHASE):
            request = SupportRequest.open(
                account, Category.INVESTIGATION, "bench", "helpdesk", actor=HELPDESK, at=now
            )
            request.charge(account, calendar, actor=SPECIALIST, at=now)
            pending.append(request)
        recordings = ledger.save(*pending, account)
        written += len(recordings)
        cycle += 1
    return written


def raw_read(ledger: Ledger) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    start = 1
    while True:
        notes = ledger.recorder.select_notifications(start, PAGE)
        for note in notes:
            ledger.mapper.to_domain_event(note)
        count += len(notes)
        if len(notes) < PAGE:
            break
        start = notes[-1].id + 1
    return count, time.perf_counter() - started


_COPY = frame("ledger/persistence/store", "append", "many")
_WAIT = frame("psycopg/connection", "wait")
_READ = frame("eventsourcing/postgres", "select_notifications")
REBUILD_GROUPS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("reading the log (`select_notifications`)", _READ),
    ("decoding (`Worker._decode`: the library's mapper)", frame("projections/runner", "_decode")),
    ("the read models' `apply`, writes included", frame("projections/runner", "_apply")),
    ("... `requests`", frame("projections/requests", "apply")),
    ("... `summary`", frame("projections/summary", "apply")),
    ("... `movements`", frame("projections/movements", "apply")),
    ("... `balances`", frame("projections/balances", "apply")),
    ("... `invoices`", frame("projections/invoices", "apply")),
    ("... of which `COPY` and `executemany` (`Cur.append`, `Cur.many`)", _COPY),
    ("moving the tracking positions", frame("projections/base", "move_tracking")),
    ("commits (leaving the transaction)", frame("psycopg/transaction", "__exit__")),
    ("waiting for PostgreSQL (`Connection.wait`, in all of the above)", _WAIT),
]
RAW_GROUPS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("reading the log (`select_notifications`)", _READ),
    ("decoding (`mapper.to_domain_event`)", frame("eventsourcing/persistence", "to_domain_event")),
]


def save_results(figures: dict[str, Any], profiles: tuple[str, str]) -> None:
    save_json(figures)
    rounds = figures["rebuild_rounds"]
    save_section(
        "Read-model rebuild (PostgreSQL)",
        f"Measured {figures['rebuild_measured_at']} on {os.cpu_count()} CPUs, "
        f"{figures['rebuild_log_events']} events in the log; {ROUNDS} rounds, interleaved "
        "(medians).\n\n"
        + table(
            ("measure", "events/s"),
            [
                ("raw read + decode of the whole log", f"{figures['raw_read_events_per_s']:,.0f}"),
                (
                    "`rebuild()` of all read models (log events / s)",
                    f"{figures['rebuild_events_per_s']:,.0f}",
                ),
            ],
        )
        + f"\nRatio rebuild / raw read: **{figures['rebuild_vs_raw_read']:.2f}** "
        f"(per round: {_ratios(rounds)}; "
        f"target: rebuild >= {TARGET_RATE:,} events/s: "
        f"{'met' if figures['rebuild_events_per_s'] >= TARGET_RATE else 'NOT met'}). "
        "CPU time of this process per round, raw read / rebuild: "
        + ", ".join(f"{r['raw_cpu_s']:.2f} / {r['rebuild_cpu_s']:.2f} s" for r in rounds)
        + ".\n"
        "A rebuild reads the log by position (an index range scan whatever the "
        "table's statistics; the store here is just filled, so they are stale), decodes "
        f"only the events the read models use and commits every "
        f"{figures['rebuild_batch_size']} events, all read models in one "
        "transaction; a write of many rows is one `COPY` (and, for rows that may exist, one "
        "`INSERT ... SELECT ... ON CONFLICT` from a temporary table). This machine is "
        "shared: compare the ratio, not the rates.\n\n"
        "Where a rebuild's time goes:\n\n"
        + profiles[0]
        + "\nWhere the raw read's time goes:\n\n"
        + profiles[1],
    )


def _ratios(rounds: Sequence[dict[str, float]]) -> str:
    return ", ".join(f"{r['ratio']:.2f}" for r in rounds)


def _round(ledger: Ledger, services: Any) -> dict[str, float]:
    cpu = time.process_time()
    log_events, raw_s = raw_read(ledger)
    raw_cpu = time.process_time() - cpu
    cpu, started = time.process_time(), time.perf_counter()
    services.projections.rebuild()
    rebuild_s = time.perf_counter() - started
    rebuild_cpu = time.process_time() - cpu
    return {
        "events": log_events,
        "raw_s": raw_s,
        "rebuild_s": rebuild_s,
        "ratio": raw_s / rebuild_s,
        "raw_cpu_s": raw_cpu,
        "rebuild_cpu_s": rebuild_cpu,
    }


def main() -> None:
    with database() as url:
        settings = LedgerSettings(database_url=url, support_hours="24/7")
        ledger = open_ledger(settings)
        try:
            started = time.perf_counter()
            written = write_events(ledger, TARGET_EVENTS)
            print(f"wrote {written} events in {time.perf_counter() - started:.1f} s")
            services = open_services(settings, ledger=ledger)
            try:
                rounds = [_round(ledger, services) for _ in range(ROUNDS)]
                read = services.projections.rebuild()
                differences = reconcile(ledger, services.projections)
                profiles = (
                    profile_table(services.projections.rebuild, REBUILD_GROUPS),
                    profile_table(lambda: raw_read(ledger), RAW_GROUPS),
                )
            finally:
                services.close()
            log_events = int(rounds[0]["events"])
            raw_rate = log_events / statistics.median(r["raw_s"] for r in rounds)
            rebuild_rate = log_events / statistics.median(r["rebuild_s"] for r in rounds)
            ratio = statistics.median(r["ratio"] for r in rounds)
            print(
                f"raw read + decode {raw_rate:,.0f}/s; rebuild: {log_events} log events "
                f"({read} read) {rebuild_rate:,.0f}/s; ratio to raw read {ratio:.2f} "
                f"(rounds: {_ratios(rounds)})"
            )
            if differences:
                print("reconcile after rebuild found differences:", *differences[:5], sep="\n")
            save_results(
                {
                    "rebuild_events_per_s": round(rebuild_rate),
                    "raw_read_events_per_s": round(raw_rate),
                    "rebuild_vs_raw_read": round(ratio, 3),
                    "rebuild_rounds": [
                        {key: round(value, 3) for key, value in r.items()} for r in rounds
                    ],
                    "rebuild_log_events": log_events,
                    "rebuild_events_read": read,
                    "rebuild_batch_size": services.projections.rebuild_batch_size,
                    "rebuild_measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                },
                profiles,
            )
        finally:
            ledger.close()


if __name__ == "__main__":
    main()
