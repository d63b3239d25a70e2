"""Time to load an account by history length: 10, 1,000 and 100,000 events,
through ``Ledger.get_account``. Cold: the process's account cache is emptied
before each load, so the repository reads the latest snapshot, then the
events after it (what a new process, or an account evicted from the cache,
pays); this is the figure the goal applies to. Cached: the account is in the
cache and the load is one query for newer events. Snapshots are taken every
``snapshot_interval`` events of a ``CustomerAccount`` (50 by default).

The 100,000-event account is seeded truthfully and fast: one ``open`` and
adjustments of one credit through the aggregate, saved by the application in
appends of ``MAX_EVENTS_PER_SAVE`` events (snapshots taken as in production).
A worst case, 100,000 + (interval - 1) events (the longest tail after the
last snapshot), and a full replay without snapshots are measured beside it.

Results: ``history_load_100k_vs_10`` (and ``history_*``) in
``bench/results.json``; section "History length" of ``bench/results.md``.
If either ratio (exact or worst tail) is 2 or more, the run is repeated with
``FALLBACK_INTERVAL`` and both are reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    FINANCE,
    HELPDESK,
    MAX_EVENTS_PER_SAVE,
    database,
    measured_at,
    now,
    save_json,
    save_section,
    table,
)
from ledger.aggregates import CustomerAccount, account_id_for
from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.settings import LedgerSettings

LENGTHS = (10, 1_000, 100_000)
LOADS = 30  # loads timed per account (after one warm-up)
LOAD_BUDGET_S = 5.0  # and at most this long per account
SEED_BUDGET_S = 240.0
GOAL = 2.0
FALLBACK_INTERVAL = 10


def seed_account(ledger: Ledger, customer_id: str, events: int) -> None:
    """An account with exactly ``events`` events: opened, then +1 adjustments."""
    deadline = time.monotonic() + SEED_BUDGET_S
    at = now()
    account = CustomerAccount.open(customer_id, customer_id, actor=HELPDESK, at=at)
    written, pending = 1, 1
    while written < events:
        account.adjust(1, "history seed", actor=FINANCE, at=at)
        written += 1
        pending += 1
        if pending >= MAX_EVENTS_PER_SAVE:
            ledger.save(account)
            pending = 0
            if time.monotonic() > deadline:
                raise RuntimeError(f"seeding {events} events took over {SEED_BUDGET_S:.0f} s")
    if pending:
        ledger.save(account)


def time_loads(load: Callable[[], object]) -> float:
    """Median seconds of ``load()`` over ``LOADS`` runs (bounded by ``LOAD_BUDGET_S``)."""
    load()
    spent: list[float] = []
    deadline = time.monotonic() + LOAD_BUDGET_S
    while len(spent) < LOADS and time.monotonic() < deadline:
        began = time.perf_counter()
        load()
        spent.append(time.perf_counter() - began)
    return statistics.median(spent)


def cold_load(ledger: Ledger, customer_id: str) -> object:
    """``get_account`` with the account cache emptied first."""
    cache = ledger.repository.cache
    if cache is not None:
        cache.clear()
    return ledger.get_account(customer_id)


def measure(url: str, interval: int) -> dict[str, Any]:
    ledger = open_ledger(
        LedgerSettings(database_url=url, support_hours="24/7", snapshot_interval=interval)
    )
    try:
        prefix = f"history-{interval}-{time.time_ns()}"
        lengths = [*LENGTHS, LENGTHS[-1] + interval - 1]
        started = time.perf_counter()
        for length in lengths:
            seed_account(ledger, f"{prefix}-{length}", length)
        seeded_s = time.perf_counter() - started
        loads_ms = {
            length: time_loads(lambda c=f"{prefix}-{length}": cold_load(ledger, c)) * 1000
            for length in lengths
        }
        cached_ms = {
            length: time_loads(lambda c=f"{prefix}-{length}": ledger.get_account(c)) * 1000
            for length in lengths
        }
        longest = account_id_for(f"{prefix}-{LENGTHS[-1]}")
        began = time.perf_counter()
        replayed = sum(1 for _ in ledger.events.get(longest))
        replay_ms = (time.perf_counter() - began) * 1000
    finally:
        ledger.close()
    base = loads_ms[LENGTHS[0]]
    return {
        "interval": interval,
        "seeded_events": sum(lengths),
        "seed_s": round(seeded_s, 1),
        "load_ms": {str(k): round(v, 3) for k, v in loads_ms.items()},
        "cached_load_ms": {str(k): round(v, 3) for k, v in cached_ms.items()},
        "vs_10": {str(k): round(v / base, 3) for k, v in loads_ms.items()},
        "replay_without_snapshot_ms": round(replay_ms, 1),
        "replayed_events": replayed,
    }


def main() -> None:
    runs: list[dict[str, Any]] = []
    with database() as url:
        runs.append(measure(url, LedgerSettings().snapshot_interval))
        print("history", runs[-1])
        # The worst tail counts too: an account rarely ends on a snapshot.
        if max(runs[0]["vs_10"].values()) >= GOAL:
            runs.append(measure(url, FALLBACK_INTERVAL))
            print("history", runs[-1])
    first = runs[0]
    save_json(
        {
            "history_load_100k_vs_10": first["vs_10"][str(LENGTHS[-1])],
            "history_load_100k_worst_tail_vs_10": max(first["vs_10"].values()),
            "history": {"measured_at": measured_at(), "runs": runs},
        }
    )
    save_section("History length", section(runs))


def section(runs: list[dict[str, Any]]) -> str:
    rows = []
    for run in runs:
        for length, ms in run["load_ms"].items():
            label = f"{int(length):,}"
            if int(length) not in LENGTHS:
                label += f" (worst tail: {int(length) - LENGTHS[-1]} events after the snapshot)"
            ratio, cached = run["vs_10"][length], run["cached_load_ms"][length]
            rows.append([run["interval"], label, f"{ms:.2f}", f"{ratio:.2f}", f"{cached:.2f}"])
    header = (
        "snapshot interval", "events in the account", "median cold load ms", "vs 10 events",
        "median cached load ms",
    )  # fmt: skip
    notes = "".join(
        f"- interval {r['interval']}: seeded {r['seeded_events']:,} events in {r['seed_s']} s; "
        f"reading and decoding all {r['replayed_events']:,} events of the longest account "
        f"without its snapshot: {r['replay_without_snapshot_ms']:,.0f} ms.\n"
        for r in runs
    )
    ratio = runs[0]["vs_10"][str(LENGTHS[-1])]
    worst = max(runs[0]["vs_10"].values())
    return (
        f"Measured {measured_at()}, same PostgreSQL as above (a throwaway cluster); "
        f"`Ledger.get_account` median of up to {LOADS} loads after a warm-up; cold: the "
        "process's account cache emptied before each load (snapshot, then the events after "
        "it); cached: one query for newer events.\n\n"
        + table(header, rows)
        + f"\n100,000 : 10 = **{ratio:.2f}** (goal < {GOAL:.0f}: "
        f"{'met' if ratio < GOAL else 'NOT met'}); with the worst tail after the last "
        f"snapshot: **{worst:.2f}** ({'met' if worst < GOAL else 'NOT met'}). The load "
        "replays the events after the latest snapshot, so its cost follows that tail, "
        "not the history length.\n\n" + notes
    )


if __name__ == "__main__":
    main()
