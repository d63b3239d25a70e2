"""One key's writes while another key floods reads: ``python -m bench keyflood``.

The specialist key charges (``WRITERS`` closed-loop clients) alone, then
while the helpdesk key floods balance reads (``FLOODERS`` clients that never
pause, from a process of their own so that the generator's GIL is not the
writers'), and then while it floods reads with ``?after=`` far ahead (each
waits for the read timeout, holding a slot). The figure is the median write
rate under the flood over the median alone (``writes_under_read_flood_vs_alone``,
goal ``GOAL`` or more): the per-key limit (``LEDGER_MAX_CONCURRENT_PER_KEY``)
answers the flood's excess 429 at once, so the writers keep threads and
connections. ``/healthz`` is sampled meanwhile (its p50 under the flood).
For comparison, one more pair of points runs on a server whose per-key
limit is out of reach (``UNLIMITED``): what the flood did before the limit.

Before the limit (issue 18): 60 reads cut writes from 617/s to 42/s (18/s
with ``?after=`` ahead) and ``/healthz`` went from 6 to 477 ms.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    database,
    measured_at,
    save_json,
    save_section,
    seed_accounts,
    seed_requests,
    table,
)
from bench.loadgen import LOOPBACK
from bench.servers import free_port, ledger_serve, server
from bench.throughput import (
    CREDITS_PER_ACCOUNT,
    HTTP_CHARGES_PER_S_CAP,
    Pool,
    charge_load,
    read_load,
)
from ledger.bootstrap import open_ledger
from ledger.settings import LedgerSettings

SECONDS = int(os.environ.get("LEDGER_BENCH_SECONDS", "10"))
WORKERS = int(os.environ.get("LEDGER_BENCH_WORKERS", "2"))
ROUNDS = 2
WRITERS = 4
FLOODERS = 60
ACCOUNTS = 200
GOAL = 0.5
FAR_AHEAD = 2**50
UNLIMITED = 10_000


def _flood(port: int, paths: list[str], token: str, seconds: int, out: Any) -> None:
    """The flooding key's reads, in a process of its own."""
    result = read_load(port, paths, {"Authorization": f"Bearer {token}"}, FLOODERS, seconds)
    out.put(
        {
            "per_s": round(result.rate, 1),
            "answered_per_s": round(sum(result.statuses.values()) / result.elapsed_s, 1),
            "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        }
    )


class HealthSampler:
    """``GET /healthz`` every 50 ms on a connection of its own; the latencies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=f"http://{LOOPBACK}:{self.port}", timeout=30) as client:
            while not self._stop.wait(0.05):
                began = time.perf_counter()
                client.get("/healthz")
                self.latencies_ms.append((time.perf_counter() - began) * 1000)

    def __enter__(self) -> HealthSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def p50_ms(self) -> float:
        return round(statistics.median(self.latencies_ms), 1) if self.latencies_ms else 0.0


def _phase(
    port: int, specialist: str, pool: Pool, flood: list[str] | None, helpdesk: str
) -> dict[str, Any]:
    """The writers for ``SECONDS``, with the flood (``flood``'s paths) beside them."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    flooder = None
    if flood is not None:
        flooder = context.Process(target=_flood, args=(port, flood, helpdesk, SECONDS + 2, out))
        flooder.start()
        time.sleep(2.0)  # the flood is under way (the process has started) before the writers
    with HealthSampler(port) as health:
        writes = charge_load(port, specialist, pool, WRITERS, SECONDS)
    point: dict[str, Any] = {
        "writes_per_s": round(writes.rate, 1),
        "writes_failed": writes.summary()["failed"],
        "write_p50_ms": round(writes.p(0.5), 1),
        "healthz_p50_ms": health.p50_ms,
    }
    if flooder is not None:
        point["flood"] = out.get(timeout=SECONDS + 60)
        flooder.join(30)
    return point


def main() -> None:
    with database() as url:
        ledger = open_ledger(LedgerSettings(database_url=url, support_hours="24/7"))
        try:
            prefix = f"flood-{secrets.token_hex(3)}"
            customer_ids = seed_accounts(ledger, prefix, ACCOUNTS, CREDITS_PER_ACCOUNT)
            phases = 3 * ROUNDS + 2  # each takes its own open requests (charge_load)
            charges = SECONDS * HTTP_CHARGES_PER_S_CAP * phases
            pool = Pool(seed_requests(ledger, customer_ids, charges))
        finally:
            ledger.close()
        specialist, helpdesk = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        env = {
            "LEDGER_DATABASE_URL": url,
            "LEDGER_API_KEYS": f"specialist:bench-sp:{specialist},helpdesk:bench-hd:{helpdesk}",
            "LEDGER_SUPPORT_HOURS": "24/7",
            "LEDGER_SECRET_KEY": secrets.token_urlsafe(32),
        }
        reads = [f"/v1/accounts/{c}" for c in customer_ids]
        ahead = [f"{path}?after={FAR_AHEAD}" for path in reads]
        port = free_port()
        logs = Path(tempfile.mkdtemp(prefix="bench-keyflood-"))
        points: dict[str, list[dict[str, Any]]] = {
            "alone": [],
            "flood": [],
            "flood_after": [],
            "unlimited_alone": [],
            "unlimited_flood": [],
        }
        with server(ledger_serve(port, WORKERS), env, port, logs / "ledger.log"):
            for round_ in range(ROUNDS):
                order = ("alone", "flood", "flood_after")
                for name in order if round_ % 2 == 0 else reversed(order):
                    flood = {"alone": None, "flood": reads, "flood_after": ahead}[name]
                    point = _phase(port, specialist, pool, flood, helpdesk)
                    print("keyflood", name, point)
                    points[name].append(point)
        unlimited = {**env, "LEDGER_MAX_CONCURRENT_PER_KEY": str(UNLIMITED)}
        port = free_port()
        with server(ledger_serve(port, WORKERS), unlimited, port, logs / "unlimited.log"):
            for name, flood in (("unlimited_alone", None), ("unlimited_flood", reads)):
                point = _phase(port, specialist, pool, flood, helpdesk)
                print("keyflood", name, point)
                points[name].append(point)
    alone = statistics.median(p["writes_per_s"] for p in points["alone"])
    flood = statistics.median(p["writes_per_s"] for p in points["flood"])
    after = statistics.median(p["writes_per_s"] for p in points["flood_after"])
    before = points["unlimited_alone"][0]["writes_per_s"]
    figures = {
        "writes_under_read_flood_vs_alone": round(flood / alone, 3) if alone else 0.0,
        "writes_under_read_flood_vs_alone_without_limit": (
            round(points["unlimited_flood"][0]["writes_per_s"] / before, 3) if before else 0.0
        ),
        "writes_under_after_flood_vs_alone": round(after / alone, 3) if alone else 0.0,
        "keyflood": {**points, "workers": WORKERS, "measured_at": measured_at()},
    }
    save_json(figures)
    save_section("One key's writes under another key's read flood", _section(figures))
    print(
        "writes_under_read_flood_vs_alone",
        figures["writes_under_read_flood_vs_alone"],
        "(?after= ahead:",
        figures["writes_under_after_flood_vs_alone"],
        ")",
    )


def _section(figures: dict[str, Any]) -> str:
    points = figures["keyflood"]
    rows = []
    for name, label in (
        ("alone", "charges alone"),
        ("flood", f"+ {FLOODERS} clients reading (another key)"),
        ("flood_after", f"+ {FLOODERS} clients reading with ?after= ahead"),
        ("unlimited_alone", "no per-key limit: charges alone"),
        ("unlimited_flood", f"no per-key limit: + {FLOODERS} clients reading"),
    ):
        for p in points[name]:
            flood = p.get("flood", {})
            rows.append(
                [
                    label,
                    p["writes_per_s"],
                    p["write_p50_ms"],
                    p["healthz_p50_ms"],
                    flood.get("per_s", ""),
                    flood.get("statuses", {}).get("429", ""),
                ]
            )
    ratio = figures["writes_under_read_flood_vs_alone"]
    met = "met" if ratio >= GOAL else "NOT met"
    return (
        f"`python -m bench keyflood`, {WORKERS} workers, {WRITERS} charging clients of the "
        f"specialist key, {SECONDS} s per point, measured {points['measured_at']}. "
        f"Writes under the flood / alone: **{ratio}** (goal ≥ {GOAL}: {met}); with "
        f"`?after=` ahead: {figures['writes_under_after_flood_vs_alone']}; without the "
        f"limit: {figures['writes_under_read_flood_vs_alone_without_limit']}. The flood's "
        "excess is answered 429 by the per-key limit (`LEDGER_MAX_CONCURRENT_PER_KEY`).\n\n"
        + table(
            ["load", "charges/s", "charge p50 ms", "/healthz p50 ms", "reads/s (200)", "429s"],
            rows,
        )
    )
