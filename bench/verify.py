"""Verification rate of the audit hash chain, beside the raw rate of
scanning the same stored events, in the same run.

Stores 100,000 events (``LEDGER_BENCH_VERIFY_EVENTS``) straight through the
recorder in appends of 500 (verification reads stored bytes and never
decodes them, so any well-formed stored event will do), chains them, then
measures:

- raw: ``select_notifications`` over the whole log, a page at a time;
- verify: ``Audit.verify()``: the chain recomputed from the store and
  compared with the recorded chain, entry by entry, in constant memory.

Results: ``bench/results.json`` keys ``verify_events_per_s``,
``verify_raw_scan_events_per_s`` and ``verify_vs_raw_scan``; section "Audit
chain verification" of ``bench/results.md``.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from bench.common import database, measured_at, save_json, save_section, table
from ledger.audit.store import stored_events
from ledger.bootstrap import open_services
from ledger.settings import LedgerSettings

EVENTS = int(os.environ.get("LEDGER_BENCH_VERIFY_EVENTS", "100000"))
APPEND = 500
TOPIC = "ledger.aggregates.account:CustomerAccount.BalanceAdjusted"


def main() -> None:
    with database() as url:
        services = open_services(LedgerSettings(database_url=url, support_hours="24/7"))
        ledger, audit = services.ledger, services.audit
        try:
            state = b'{"amount":1,"reason":"bench","balance_after":1}'
            for _ in range(EVENTS // APPEND):
                ledger.recorder.insert_events(
                    [StoredEvent(uuid4(), 2, TOPIC, state) for _ in range(APPEND)]
                )
            started = time.perf_counter()
            chained = audit.catch_up()
            chain_s = time.perf_counter() - started

            started = time.perf_counter()
            scanned = sum(1 for _ in stored_events(ledger.recorder))
            raw_s = time.perf_counter() - started

            tracemalloc.start()
            started = time.perf_counter()
            result = audit.verify()
            verify_s = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            services.close()
    raw_rate, verify_rate = scanned / raw_s, result.checked / verify_s
    print(
        f"chain: {chained} events in {chain_s:.1f} s; raw scan {raw_rate:,.0f}/s; "
        f"verify {verify_rate:,.0f}/s (ok={result.ok}, peak {peak / 2**20:.1f} MiB)"
    )
    save_json(
        {
            "verify_events_per_s": round(verify_rate),
            "verify_raw_scan_events_per_s": round(raw_rate),
            "verify_vs_raw_scan": round(verify_rate / raw_rate, 3),
            "verify_events": result.checked,
            "verify_ok": result.ok,
            "verify_peak_traced_mib": round(peak / 2**20, 1),
            "chain_events_per_s": round(chained / chain_s),
        }
    )
    save_section(
        "Audit chain verification (PostgreSQL)",
        f"Measured {measured_at()}: {result.checked:,} stored events, chained first "
        f"({chained / chain_s:,.0f} events/s).\n\n"
        + table(
            ("measure", "events/s"),
            [
                ("raw scan of the stored events (pages of 2000)", f"{raw_rate:,.0f}"),
                ("`ledger verify`: recompute and compare the chain", f"{verify_rate:,.0f}"),
            ],
        )
        + f"\nVerify / raw scan: **{verify_rate / raw_rate:.2f}**; result ok: {result.ok}; "
        f"peak traced Python memory during verification: {peak / 2**20:.1f} MiB "
        "(constant: both sides are read a page at a time).\n",
    )


if __name__ == "__main__":
    main()
