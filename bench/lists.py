"""The lists at scale (issue 11), on one throwaway PostgreSQL, loopback only.

Seeds ``100,000 x scale`` accounts and about ten events each (an invoice
paid and one left issued, a request awaiting a quote and one charged), plus
one account with ``MOVEMENTS`` movements: at ``--scale 1`` 100,000 accounts
and over 1,000,000 events. Seeding goes through the aggregates and
``Ledger.save`` in appends of at most ``MAX_EVENTS_PER_SAVE`` events; the read
models then catch up in big batches before ``ledger serve`` starts.

Then, at 16 closed-loop clients, each for ``LEDGER_BENCH_SECONDS``, in the
same run: ``GET /v1/accounts?q=<a word of the names>`` (each word in about 1%
of the names), ``GET /v1/requests?status=awaiting_quote``, the first and the
50th page (reached by cursor) of one account's movements, and the single
balance read ``GET /v1/accounts/{id}``. Results: ``bench/results.json``
(``lists_*``, ``list_p99_vs_balance_p99_max``, ``movements_page50_vs_page1``)
and the section "Lists" of ``bench/results.md``. Goals: every list's p99
within 3x of the balance read's; the 50th page within 1.5x of the first.

``python -m bench lists`` runs this section alone;
``LEDGER_BENCH_LISTS_SCALE=0.1`` seeds a tenth (a quick check).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    FINANCE,
    HELPDESK,
    MAX_EVENTS_PER_SAVE,
    SPECIALIST,
    database,
    measured_at,
    now,
    save_json,
    save_section,
    table,
)
from bench.loadgen import LOOPBACK, LoadResult, run_load
from bench.servers import free_port, ledger_serve, server
from ledger.aggregates import CustomerAccount, Invoice, SupportRequest
from ledger.application import Ledger
from ledger.bootstrap import open_services
from ledger.policy import PACKAGES, Category, SupportCalendar
from ledger.projections import REBUILD_BATCH_SIZE
from ledger.settings import LedgerSettings

SECONDS = int(os.environ.get("LEDGER_BENCH_SECONDS", "10"))
# 1.0: 100,000 accounts and over a million events; smaller for a quick check.
SCALE = float(os.environ.get("LEDGER_BENCH_LISTS_SCALE", "1.0"))
WORKERS = int(os.environ.get("LEDGER_BENCH_WORKERS", "2"))
CLIENTS = 16
ACCOUNTS = 100_000
PAGE = 50
MOVEMENTS = 60 * PAGE  # the 50th page and ten more
# Two-syllable words: 196 of them, each in about 1% of the names.
SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ra",
    "ven",
    "tor",
    "sel",
    "bri",
    "don",
    "fa",
    "gu",
    "hel",
    "ith",
    "jor",
)
WORDS = tuple(a + b for a in SYLLABLES for b in SYLLABLES if a != b)
GOAL_LIST_VS_BALANCE = 3.0
GOAL_PAGE50_VS_PAGE1 = 1.5
CATCH_UP_TIMEOUT_S = 3600.0


def name_of(i: int) -> str:
    return f"{WORDS[i % len(WORDS)].title()} {WORDS[(i * 7 + 3) % len(WORDS)].title()} Trading {i}"


def seed(ledger: Ledger, prefix: str, accounts: int) -> tuple[list[str], str, int]:
    """The accounts and their events; the customer ids, the account with
    many movements, and the events written."""
    calendar = SupportCalendar.parse("24/7")
    at = now()
    customer_ids: list[str] = []
    pending: list[Any] = []
    written = 0
    size = 0
    for i in range(accounts):
        customer_id = f"{prefix}-{i:06d}"
        customer_ids.append(customer_id)
        account = CustomerAccount.open(customer_id, name_of(i), actor=HELPDESK, at=at)
        paid = Invoice.issue(account, PACKAGES[80], actor=FINANCE, at=at)
        paid.pay(account, f"ref-{i}", actor=FINANCE, at=at)
        issued = Invoice.issue(account, PACKAGES[160], actor=FINANCE, at=at)
        waiting = SupportRequest.open(
            account, Category.INVESTIGATION, f"bench {i}", "helpdesk", actor=HELPDESK, at=at
        )
        waiting.request_pre_quote(None, actor=HELPDESK, at=at)
        charged = SupportRequest.open(
            account, Category.INVESTIGATION, f"bench {i}b", "helpdesk", actor=HELPDESK, at=at
        )
        charged.charge(account, calendar, actor=SPECIALIST, at=at)
        pending += [account, paid, issued, waiting, charged]
        size += 10
        if size + 10 > MAX_EVENTS_PER_SAVE:
            written += len(ledger.save(*pending))
            pending, size = [], 0
    if pending:
        written += len(ledger.save(*pending))
    heavy = f"{prefix}-movements"
    account = CustomerAccount.open(heavy, "Many Movements", actor=HELPDESK, at=at)
    for n in range(MOVEMENTS):
        account.adjust(1, f"bench movement {n}", actor=FINANCE, at=at)
        if (n + 1) % MAX_EVENTS_PER_SAVE == 0:
            written += len(ledger.save(account))
    written += len(ledger.save(account))
    return customer_ids, heavy, written


def cursor_of_page(port: int, token: str, path: str, page: int) -> str:
    """The cursor that reaches page ``page`` (1-based) of a list, by walking it."""
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", headers=headers, timeout=30) as client:
        for _ in range(page - 1):
            params = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
            answer = client.get(path, params=params)
            answer.raise_for_status()
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                raise RuntimeError(f"{path} has fewer than {page} pages")
    assert cursor is not None
    return cursor


def load(port: int, token: str, paths: list[str]) -> LoadResult:
    per_client = [paths[i:] + paths[:i] for i in range(CLIENTS)]
    headers = {"Authorization": f"Bearer {token}"}
    return run_load(port, "GET", per_client, headers=headers, duration_s=SECONDS, cycle=True)


def run(url: str, scale: float) -> dict[str, Any]:
    accounts = max(CLIENTS, round(ACCOUNTS * scale))
    services = open_services(
        LedgerSettings(database_url=url, support_hours="24/7"), batch_size=REBUILD_BATCH_SIZE
    )
    ledger = services.ledger
    try:
        started = time.perf_counter()
        customer_ids, heavy, events = seed(ledger, f"lists-{secrets.token_hex(3)}", accounts)
        seeded_s = time.perf_counter() - started
        print(f"seeded {accounts} accounts, {events} events in {seeded_s:.0f} s", flush=True)
        started = time.perf_counter()
        services.projections.catch_up()
        services.projections.wait_for(ledger.position(), timeout_s=CATCH_UP_TIMEOUT_S)
        caught_up_s = time.perf_counter() - started
        print(f"read models caught up in {caught_up_s:.0f} s", flush=True)
    finally:
        services.close()
    token = secrets.token_urlsafe(16)
    env = {
        "LEDGER_DATABASE_URL": url,
        "LEDGER_API_KEYS": f"finance:bench-fi:{token}",
        "LEDGER_SUPPORT_HOURS": "24/7",
        "LEDGER_SECRET_KEY": secrets.token_urlsafe(32),
    }
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="bench-lists-"))
    movements = f"/v1/accounts/{heavy}/movements"
    figures: dict[str, Any] = {}
    with server(ledger_serve(port, WORKERS), env, port, logs / "ledger.log"):
        page50 = cursor_of_page(port, token, movements, 50)
        loads = {
            "balance": [f"/v1/accounts/{c}" for c in customer_ids[:: max(1, accounts // 5000)]],
            "accounts_q": [f"/v1/accounts?q={w}" for w in WORDS],
            "requests_awaiting_quote": ["/v1/requests?status=awaiting_quote"],
            "movements_page1": [f"{movements}?limit={PAGE}"],
            "movements_page50": [f"{movements}?limit={PAGE}&cursor={page50}"],
        }
        for name, paths in loads.items():
            result = load(port, token, paths)
            figures[name] = result.summary()
            print(name, figures[name], flush=True)
    balance_p99 = figures["balance"]["p99_ms"]
    lists = ("accounts_q", "requests_awaiting_quote", "movements_page50")
    ratios = {n: round(figures[n]["p99_ms"] / balance_p99, 2) for n in lists}
    return {
        "lists_scale": scale,
        "lists_accounts": accounts + 1,
        "lists_events": events,
        "lists_seed_s": round(seeded_s, 1),
        "lists_catch_up_s": round(caught_up_s, 1),
        "lists_clients": CLIENTS,
        "lists_seconds": SECONDS,
        "lists_points": figures,
        "lists_p99_vs_balance_p99": ratios,
        "list_p99_vs_balance_p99_max": max(ratios.values()),
        "movements_page50_vs_page1": round(
            figures["movements_page50"]["p99_ms"] / figures["movements_page1"]["p99_ms"], 2
        ),
        "lists_measured_at": measured_at(),
        "lists_load_average": [round(x, 2) for x in os.getloadavg()],
    }


def write_results(figures: dict[str, Any]) -> None:
    save_json(figures)
    points = figures["lists_points"]
    ratios = figures["lists_p99_vs_balance_p99"]
    rows = [
        [
            name,
            points[name]["per_s"],
            points[name]["p50_ms"],
            points[name]["p99_ms"],
            ratios.get(name, "-"),
            points[name]["failed"],
        ]
        for name in points
    ]
    body = (
        f"Scale {figures['lists_scale']}: {figures['lists_accounts']:,} accounts, "
        f"{figures['lists_events']:,} events (seeded in {figures['lists_seed_s']} s, read "
        f"models caught up in {figures['lists_catch_up_s']} s); {CLIENTS} clients, "
        f"{SECONDS} s a point, `ledger serve` with {WORKERS} workers; measured "
        f"{figures['lists_measured_at']}, load average {figures['lists_load_average']}.\n\n"
        + table(["load", "req/s", "p50 ms", "p99 ms", "p99 / balance p99", "failed"], rows)
        + f"\nEvery list's p99 within {figures['list_p99_vs_balance_p99_max']}x of the balance "
        f"read's (goal {GOAL_LIST_VS_BALANCE}x); the 50th movements page's p99 is "
        f"{figures['movements_page50_vs_page1']}x the first page's "
        f"(goal {GOAL_PAGE50_VS_PAGE1}x).\n"
    )
    save_section("Lists", body)


def main() -> None:
    with database() as url:
        figures = run(url, SCALE)
    write_results(figures)


if __name__ == "__main__":
    main()
