"""Verification rate of the audit hash chain, beside the raw rate of
scanning the same stored events, in the same run.

Stores 100,000 events (``LEDGER_BENCH_VERIFY_EVENTS``) straight through the
recorder in appends of 500 (verification reads stored bytes and never
decodes them, so any well-formed stored event will do), chains them, then
measures:

- raw (the baseline of ``verify_vs_raw_scan``): ``select_notifications``
  over the whole log, a page at a time, as the library reads the log;
- plain (a stricter baseline, ``verify_vs_plain_scan``): the events table
  alone read in pages of tuples in binary (``ledger.audit.store.stored_rows``,
  the very scan verification makes of the store), nothing done per row;
- verify: ``Audit.verify()``: the chain recomputed from the store and
  compared with the recorded chain, entry by entry, in constant memory.

Each is measured ``ROUNDS`` times, interleaved; each ratio is the median of
the per-round ratios. Verification is timed without ``tracemalloc`` (which
slows every allocation several times, and so made the ratio a measure of the
tracer); its peak memory is measured in a separate, untimed run.

Results: ``bench/results.json`` keys ``verify_events_per_s``,
``verify_raw_scan_events_per_s``, ``verify_vs_raw_scan``,
``verify_plain_scan_events_per_s`` and ``verify_vs_plain_scan``; section
"Audit chain verification" of ``bench/results.md``.
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from bench.common import database, frame, measured_at, profile_table, save_json, save_section, table
from ledger.audit.store import stored_events, stored_rows
from ledger.bootstrap import Services, open_services
from ledger.settings import LedgerSettings

EVENTS = int(os.environ.get("LEDGER_BENCH_VERIFY_EVENTS", "100000"))
APPEND = 500
ROUNDS = 3
TOPIC = "ledger.aggregates.account:CustomerAccount.BalanceAdjusted"
_SHA256 = frame("~", "<built-in method _hashlib.openssl_sha256>")
_DIGEST = frame("~", "<method 'digest' of '_hashlib.HASH' objects>")
VERIFY_GROUPS = [
    ("the plain pass (`chain.confirm`), reading included", frame("audit/chain", "confirm")),
    ("... reading pages of tuples (`Cur.scan`, both tables)", frame("persistence/store", "scan")),
    ("... of which waiting for PostgreSQL", frame("psycopg/connection", "wait")),
    (
        "... hashing (`sha256()` and `.digest()`)",
        lambda file, function: _SHA256(file, function) or _DIGEST(file, function),
    ),
    (
        "the judging pass (`chain.verify`, from where `confirm` stopped)",
        frame("audit/chain", "verify"),
    ),
    ("the snapshots (`check_snapshots`)", frame("audit/service", "check_snapshots")),
]


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

            rounds = [_round(services) for _ in range(ROUNDS)]
            profile = profile_table(audit.verify, VERIFY_GROUPS)

            tracemalloc.start()
            result = audit.verify()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            services.close()
    raw_rate = statistics.median(r["raw"] for r in rounds)
    plain_rate = statistics.median(r["plain"] for r in rounds)
    verify_rate = statistics.median(r["verify"] for r in rounds)
    vs_raw = statistics.median(r["verify"] / r["raw"] for r in rounds)
    vs_plain = statistics.median(r["verify"] / r["plain"] for r in rounds)
    print(
        f"chain: {chained} events in {chain_s:.1f} s; raw scan {raw_rate:,.0f}/s; plain scan "
        f"{plain_rate:,.0f}/s; verify {verify_rate:,.0f}/s (ok={result.ok}, "
        f"peak {peak / 2**20:.1f} MiB); verify/raw {vs_raw:.2f}, verify/plain {vs_plain:.2f}"
    )
    save_json(
        {
            "verify_events_per_s": round(verify_rate),
            "verify_raw_scan_events_per_s": round(raw_rate),
            "verify_vs_raw_scan": round(vs_raw, 3),
            "verify_plain_scan_events_per_s": round(plain_rate),
            "verify_vs_plain_scan": round(vs_plain, 3),
            "verify_rounds": [{key: round(value) for key, value in r.items()} for r in rounds],
            "verify_events": result.checked,
            "verify_ok": result.ok,
            "verify_peak_traced_mib": round(peak / 2**20, 1),
            "chain_events_per_s": round(chained / chain_s),
        }
    )
    save_section(
        "Audit chain verification (PostgreSQL)",
        f"Measured {measured_at()}: {result.checked:,} stored events, chained first "
        f"({chained / chain_s:,.0f} events/s); {ROUNDS} rounds, interleaved, medians.\n\n"
        + table(
            ("measure", "events/s"),
            [
                ("raw scan: `select_notifications`, pages of 2000", f"{raw_rate:,.0f}"),
                ("plain scan: the events as binary tuples, pages of 2000", f"{plain_rate:,.0f}"),
                ("`ledger verify`: recompute and compare the chain", f"{verify_rate:,.0f}"),
            ],
        )
        + f"\nVerify / raw scan: **{vs_raw:.2f}**; verify / plain scan: **{vs_plain:.2f}** "
        "(verification reads the chain as well as the events, and hashes each event twice); "
        f"result ok: {result.ok}; peak traced Python memory during verification "
        f"(a separate, untimed run): {peak / 2**20:.1f} MiB "
        "(constant: both sides are read a page at a time).\n\n"
        "Where verification's time goes:\n\n" + profile,
    )


def _round(services: Services) -> dict[str, float]:
    """One round: the three rates, in events/s."""
    ledger, audit = services.ledger, services.audit
    started = time.perf_counter()
    raw = sum(1 for _ in stored_events(ledger.recorder)) / (time.perf_counter() - started)
    upto = audit.head().position
    started = time.perf_counter()
    plain = sum(1 for _ in stored_rows(audit.store, upto)) / (time.perf_counter() - started)
    started = time.perf_counter()
    result = audit.verify()
    verify = result.checked / (time.perf_counter() - started)
    if not result.ok:
        raise SystemExit(f"verification failed on the bench store: {result.first_break}")
    return {"raw": raw, "plain": plain, "verify": verify}


if __name__ == "__main__":
    main()
