"""Write and read throughput of the HTTP API against baselines measured in
the same run, on one throwaway PostgreSQL, loopback only:

- write: ``POST /v1/requests/{id}/charge`` at 1, 4 and 16 closed-loop clients
  against ``ledger serve`` (a subprocess), beside ``pgbench`` doing one durable
  single-row INSERT per transaction at the same client counts, the bare
  FastAPI endpoint doing that INSERT, and a second ``ledger serve`` with the
  batcher off (``LEDGER_BATCH_COMMANDS=false``, on a database of its own,
  seeded alike, so that each server projects only its own events and its CPU
  time is its own; started for each of its points and warmed up by a
  ``WARM_UP_S`` load first, as the shared server has too few connections for
  both servers' pools all along); the batch sizes seen (charges
  per append transaction, counted in the store by the rows' ``xmin``); the API's
  peak RSS during the load; the same command in-process (``Ledger.charge``,
  no HTTP) on 1 and ``INPROCESS_THREADS`` threads;
- read: ``GET /v1/accounts/{id}`` (the balances read model) beside a bare
  FastAPI endpoint doing one primary-key SELECT (``bench.bare_app``), same
  uvicorn settings and workers, same generator and clients;
- a py-spy profile of one API worker under the 16-client charge load, when
  py-spy is installed (its top frames, by own time, go to results.md).

Each point runs for ``LEDGER_BENCH_SECONDS`` (default 10) and on a bounded
list of requests. Results: ``bench/results.json`` (``charge_vs_bare_insert_16``,
``server_cpu_per_charge_vs_bare_insert_16``, ``batch_size_*``, ``charge_vs_pgbench_*``,
``balance_read_vs_bare_select``, ``throughput_*``), the sections "Write
throughput", "Read throughput" and "Write-path profile" of ``bench/results.md``
and the plot ``bench/latency.png``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
import psycopg
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from bench import pgbench
from bench.common import (
    HERE,
    SPECIALIST,
    database,
    measured_at,
    percentile,
    save_json,
    save_section,
    seed_accounts,
    seed_requests,
    table,
)
from bench.loadgen import LoadResult, run_load, split
from bench.servers import (
    RssSampler,
    background,
    cpu_seconds,
    free_port,
    ledger_serve,
    server,
    uvicorn_bare,
)
from ledger.aggregates import SupportRequest, account_id_for
from ledger.application import Ledger
from ledger.bootstrap import Services, open_services
from ledger.projections import Projections
from ledger.settings import LedgerSettings
from tests.pg import fresh_database

SECONDS = int(os.environ.get("LEDGER_BENCH_SECONDS", "10"))
WORKERS = int(os.environ.get("LEDGER_BENCH_WORKERS", "2"))
CLIENTS = (1, 4, 16)
INPROCESS_THREADS = 4
PROFILE_SECONDS = 8
ACCOUNTS = 400
CREDITS_PER_ACCOUNT = 1_000_000
# Each charge load takes seconds x cap open requests; one that runs out stops
# early (bounded by count; reported as "ran out") and its rate stays valid.
# Up to 4 clients a charge load is far below this; with the batcher 16 clients
# reach over 1,000/s, and a load capped below the bare insert's rate could
# not show a ratio above the cap's.
HTTP_CHARGES_PER_S_CAP = 600
HTTP_CHARGES_PER_S_CAP_16 = 2500
PGBENCH_TRIES = 3
PGBENCH_RETRY_S = 5.0
#: The batcher-off server's warm-up load before each of its points, in seconds.
WARM_UP_S = 2
BARE_INSERTS_PER_S_CAP = 5000
# The 16-client points run this many times, in alternating order (see run_all).
ROUNDS = int(os.environ.get("LEDGER_BENCH_ROUNDS", "3"))
INPROCESS_CHARGES_PER_S_CAP = 800
CATCH_UP_TIMEOUT_S = 120.0
PROFILES = HERE / "profiles"  # raw collapsed stacks, local only (bench/.gitignore)
GOAL_WRITE = 0.10
GOAL_READ = 0.60
GOAL_CHARGE_VS_BARE_INSERT = 0.60
GOAL_CPU_RATIO = 1.6
#: How much the batcher may add to the charge's p99 at 1 client, in ms.
GOAL_P99_GROWTH_1_MS = 1.0


class Pool:
    """Open requests handed out once each, so no charge meets a charged request."""

    def __init__(self, request_ids: Sequence[UUID]) -> None:
        self._ids = list(request_ids)
        self._next = 0

    def take(self, count: int) -> list[UUID]:
        taken = self._ids[self._next : self._next + count]
        self._next += len(taken)
        return taken


def charge_load(port: int, token: str, pool: Pool, clients: int, seconds: int) -> LoadResult:
    # Requests were opened round-robin over the accounts: consecutive ids are
    # different accounts, and dealing them round-robin keeps clients apart.
    cap = HTTP_CHARGES_PER_S_CAP_16 if clients >= CLIENTS[-1] else HTTP_CHARGES_PER_S_CAP
    ids = pool.take(seconds * cap)
    paths = [f"/v1/requests/{rid}/charge" for rid in ids]
    headers = {"Authorization": f"Bearer {token}"}
    return run_load(port, "POST", split(paths, clients), headers=headers, duration_s=seconds)


def batch_sizes(ledger: Ledger, after: int) -> list[int]:
    """The charges of each append transaction stored after position ``after``:
    one transaction per batch (the rows of one transaction share its ``xmin``).
    Through the ledger's own pool: the server has no connection to spare."""
    recorder: Any = ledger.recorder
    statement = SQL(
        "SELECT count(*) AS n FROM {table} WHERE notification_id > %s AND topic = %s "
        "GROUP BY xmin::text"
    ).format(table=Identifier(recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (after, get_topic(SupportRequest.AnswerCharged)))
        return sorted(int(r["n"]) for r in curs.fetchall())


def read_load(
    port: int, paths: Sequence[str], headers: dict[str, str], clients: int, seconds: int
) -> LoadResult:
    per_client = [list(paths[i:]) + list(paths[:i]) for i in range(0, clients * 7, 7)]
    return run_load(port, "GET", per_client, headers=headers, duration_s=seconds, cycle=True)


def inprocess(ledger: Ledger, pool: Pool, threads: int, seconds: int) -> dict[str, Any]:
    """``Ledger.charge`` directly, on ``threads`` threads, for ``seconds``."""
    ids = split([str(r) for r in pool.take(seconds * INPROCESS_CHARGES_PER_S_CAP)], threads)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def work(mine: Sequence[str]) -> None:
        spent: list[float] = []
        seen: Counter[str] = Counter()
        for rid in mine:
            began = time.perf_counter()
            if began >= deadline:
                break
            try:
                ledger.charge(UUID(rid), actor=SPECIALIST)
                seen["ok"] += 1
            except Exception as error:  # counted and reported, never hidden
                seen[type(error).__name__] += 1
            spent.append(time.perf_counter() - began)
        with lock:
            latencies.extend(spent)
            outcomes.update(seen)

    psutil.cpu_percent()
    began = time.perf_counter()
    workers = [threading.Thread(target=work, args=(m,)) for m in ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 60)
    elapsed = time.perf_counter() - began
    failed = sum(n for k, n in outcomes.items() if k != "ok")
    return {
        "clients": threads,
        "per_s": round(outcomes["ok"] / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "ok": outcomes["ok"],
        "failed": failed,
        "ran_out": elapsed < seconds - 0.5,
        "machine_busy_pct": round(psutil.cpu_percent()),
    }


def profile(pid: int, seconds: int, out: Path, *, gil: bool = False) -> bool:
    """py-spy samples of ``pid`` and its subprocesses for ``seconds``: of the busy
    threads, or with ``gil`` of the thread holding the GIL only (where the
    Python CPU time goes)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return False
    command = [
        spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds),
        "--rate", "100", "--format", "raw", "--output", str(out), "--nonblocking",
        *(["--gil"] if gil else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not out.exists():
        print("py-spy failed:", done.stderr.strip()[-500:])
        return False
    return True


def _samples(collapsed: str) -> Iterator[tuple[str, int]]:
    """(stack, samples) per line of py-spy's collapsed output; a line that does
    not end in a count (py-spy can print a garbled frame name) is skipped."""
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            yield stack, int(samples)


def top_frames(collapsed: str, count: int = 8) -> list[tuple[str, float]]:
    """From py-spy's collapsed stacks, the leaf frames with the largest share
    of the busy samples (idle threads waiting excluded)."""
    own: Counter[str] = Counter()
    total = 0
    for stack, samples in _samples(collapsed):
        total += samples
        own[stack.split(";")[-1]] += samples
    return [(frame, 100 * n / total) for frame, n in own.most_common(count)] if total else []


def cumulative_frames(collapsed: str, needles: Sequence[str]) -> dict[str, float]:
    """The share of samples whose stack passes through each of ``needles``."""
    hits: Counter[str] = Counter()
    total = 0
    for stack, samples in _samples(collapsed):
        total += samples
        for needle in needles:
            if needle in stack:
                hits[needle] += samples
    return {n: 100 * hits[n] / total for n in needles} if total else {}


def main() -> None:
    figures: dict[str, Any] = {}
    with database() as url, fresh_database(url) as alone_url:
        services = open_services(LedgerSettings(database_url=url, support_hours="24/7"))
        alone = open_services(
            LedgerSettings(database_url=alone_url, support_hours="24/7", batch_commands=False)
        )
        try:
            figures = run_all(url, services, alone_url, alone)
        finally:
            services.close()
            alone.close()
    write_results(figures)


class Bench:
    """The loads of one run, each a closed loop of ``clients`` for ``seconds``;
    every HTTP point also gets the server's CPU time per answered request."""

    def __init__(self, url: str, ledger: Ledger, read_models: Projections, pool: Pool) -> None:
        self.url, self.ledger, self.read_models, self.pool = url, ledger, read_models, pool
        # The batcher-off server's database, its ledger, read models and requests.
        self.alone_url, self.alone_ledger = url, ledger
        self.alone_read_models, self.alone_pool = read_models, pool
        self.specialist = secrets.token_urlsafe(16)
        self.helpdesk = secrets.token_urlsafe(16)
        self.env = {
            "LEDGER_DATABASE_URL": url,
            "LEDGER_API_KEYS": (
                f"specialist:bench-sp:{self.specialist},helpdesk:bench-hd:{self.helpdesk}"
            ),
            "LEDGER_SUPPORT_HOURS": "24/7",
            "LEDGER_SECRET_KEY": secrets.token_urlsafe(32),
        }
        self.port = self.bare_port = 0
        self.pid = self.bare_pid = 0
        self.alone_env: dict[str, str] = {}
        self.logs = Path(tempfile.gettempdir())
        self.balance_paths: list[str] = []
        self.bare_paths: list[str] = []
        self.figures: dict[str, list[dict[str, Any]]] = {name: [] for name in LOADS}
        self.rss: list[dict[str, Any]] = []
        self.inserted = 0

    def settle(self) -> None:
        """Let the read models finish the previous load's events first."""
        self.read_models.wait_for(self.ledger.position(), timeout_s=CATCH_UP_TIMEOUT_S)
        self.alone_read_models.wait_for(self.alone_ledger.position(), timeout_s=CATCH_UP_TIMEOUT_S)

    def point(self, name: str, clients: int, round_: int) -> dict[str, Any]:
        self.settle()
        if name == "pgbench":
            found = self._pgbench(clients)
            if found is None:
                print(name, clients, round_, "skipped: no connection to spare")
                return {}
            summary = found
        elif name == "charge_alone":
            # Up for its own loads only, warmed up first: two ledger servers
            # and their pools for the whole run, with pgbench's 16 clients,
            # were more connections than the shared server allows.
            port = free_port()
            log = self.logs / f"alone-{clients}-{round_}.log"
            with server(ledger_serve(port, WORKERS), self.alone_env, port, log) as pid:
                charge_load(port, self.specialist, self.alone_pool, CLIENTS[-1], WARM_UP_S)
                self.settle()
                summary = self._charge(name, clients, pid, port, self.alone_ledger, self.alone_pool)
        elif name == "charge":
            summary = self._charge(name, clients, self.pid, self.port, self.ledger, self.pool)
        elif name == "bare_insert":
            summary = self._http(self.bare_pid, lambda: self.bare_insert(clients))
        elif name == "balance":
            headers = {"Authorization": f"Bearer {self.helpdesk}"}
            summary = self._http(
                self.pid,
                lambda: read_load(self.port, self.balance_paths, headers, clients, SECONDS),
            )
        else:
            summary = self._http(
                self.bare_pid,
                lambda: read_load(self.bare_port, self.bare_paths, {}, clients, SECONDS),
            )
        summary["round"] = round_
        self.figures[name].append(summary)
        print(name, summary)
        return summary

    def _pgbench(self, clients: int) -> dict[str, Any] | None:
        """pgbench's point, tried ``PGBENCH_TRIES`` times: the database server
        is shared, and its connections are sometimes all taken by others."""
        for attempt in range(PGBENCH_TRIES):
            try:
                return pgbench.run(self.url, clients, SECONDS)
            except (subprocess.CalledProcessError, psycopg.OperationalError) as error:
                print(f"pgbench failed ({type(error).__name__}), attempt {attempt + 1}")
                time.sleep(PGBENCH_RETRY_S)
        return None

    def _charge(
        self, name: str, clients: int, pid: int, port: int, ledger: Ledger, pool: Pool
    ) -> dict[str, Any]:
        start = ledger.position()
        with RssSampler(pid) as rss:
            summary = self._http(
                pid, lambda: charge_load(port, self.specialist, pool, clients, SECONDS)
            )
        sizes = batch_sizes(ledger, start)
        summary["batch_size_p50"] = percentile(sizes, 0.5) if sizes else 0
        summary["batch_size_p99"] = percentile(sizes, 0.99) if sizes else 0
        summary["batch_size_max"] = max(sizes, default=0)
        summary["batches"] = len(sizes)
        self.rss.append(
            {
                "load": name,
                "clients": clients,
                "peak_total_mib": round(rss.peak_total_bytes / 2**20, 1),
                "peak_process_mib": round(rss.peak_process_bytes / 2**20, 1),
                "processes": rss.processes,
            }
        )
        summary["projection_backlog_s"] = self._backlog_s()
        return summary

    def balance(self, port: int, clients: int, seconds: int) -> LoadResult:
        headers = {"Authorization": f"Bearer {self.helpdesk}"}
        return read_load(port, self.balance_paths, headers, clients, seconds)

    def charge(self, port: int, clients: int, seconds: int) -> LoadResult:
        return charge_load(port, self.specialist, self.pool, clients, seconds)

    def bare_insert(self, clients: int) -> LoadResult:
        count = SECONDS * BARE_INSERTS_PER_S_CAP
        paths = [f"/bare-insert/{self.inserted + i}" for i in range(count)]
        self.inserted += count
        return run_load(
            self.bare_port, "POST", split(paths, clients), headers={}, duration_s=SECONDS
        )

    @staticmethod
    def _http(pid: int, load: Callable[[], LoadResult]) -> dict[str, Any]:
        before = cpu_seconds(pid)
        result = load()
        spent = cpu_seconds(pid) - before
        summary: dict[str, Any] = dict(result.summary())
        summary["server_cpu_us_per_request"] = round(1e6 * spent / max(result.ok, 1))
        return summary

    def _backlog_s(self) -> float:
        """How long the read models took to finish the load's events after it."""
        began = time.perf_counter()
        self.settle()
        return round(time.perf_counter() - began, 2)


LOADS = ("pgbench", "bare_insert", "charge", "charge_alone", "bare", "balance")


def run_all(url: str, services: Services, alone_url: str, alone: Services) -> dict[str, Any]:
    started = time.perf_counter()
    ledger, read_models = services.ledger, services.projections
    prefix = f"bench-{secrets.token_hex(3)}"
    customer_ids = seed_accounts(ledger, prefix, ACCOUNTS, CREDITS_PER_ACCOUNT)
    # Below 16 clients, the rounds at 16, and the split mode (1 and 16 clients).
    small = len(CLIENTS) - 1 + 1
    large = ROUNDS + 1
    requests = SECONDS * (
        small * HTTP_CHARGES_PER_S_CAP
        + large * HTTP_CHARGES_PER_S_CAP_16
        + 4 * INPROCESS_CHARGES_PER_S_CAP
    )
    requests += 2 * PROFILE_SECONDS * HTTP_CHARGES_PER_S_CAP_16  # two profiles of the charge
    bench = Bench(url, ledger, read_models, Pool(seed_requests(ledger, customer_ids, requests)))
    # The batcher-off server's store: the same accounts, requests for its loads.
    alone_ids = seed_accounts(alone.ledger, prefix, ACCOUNTS, CREDITS_PER_ACCOUNT)
    alone_requests = SECONDS * (
        (len(CLIENTS) - 1) * HTTP_CHARGES_PER_S_CAP + ROUNDS * HTTP_CHARGES_PER_S_CAP_16
    )
    alone_requests += (len(CLIENTS) - 1 + ROUNDS) * WARM_UP_S * HTTP_CHARGES_PER_S_CAP_16
    bench.alone_url, bench.alone_ledger = alone_url, alone.ledger
    bench.alone_read_models = alone.projections
    bench.alone_pool = Pool(seed_requests(alone.ledger, alone_ids, alone_requests))
    read_models.catch_up()  # the API starts with its read models up to date
    alone.projections.catch_up()
    print(
        f"seeded {ACCOUNTS} accounts, {requests} open requests "
        f"in {time.perf_counter() - started:.1f} s"
    )
    bench.balance_paths = [f"/v1/accounts/{c}" for c in customer_ids]
    bench.bare_paths = [f"/bare/{account_id_for(c)}" for c in customer_ids]
    figures: dict[str, Any] = {
        "durability": pgbench.durability(url),
        "workers": WORKERS,
        "rounds": ROUNDS,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    pgbench.run(url, 1, 1)  # creates its table, which the bare insert endpoint uses too

    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    port, bare_port = free_port(), free_port()
    bench.port, bench.bare_port, bench.logs = port, bare_port, logs
    bare_env = {"BENCH_DATABASE_URL": url}
    bench.alone_env = {
        **bench.env,
        "LEDGER_DATABASE_URL": alone_url,
        "LEDGER_BATCH_COMMANDS": "false",
    }
    with (
        server(ledger_serve(port, WORKERS), bench.env, port, logs / "ledger.log") as pid,
        server(uvicorn_bare(bare_port, WORKERS), bare_env, bare_port, logs / "bare.log") as bare,
    ):
        bench.pid, bench.bare_pid = pid, bare
        for clients in CLIENTS[:-1]:
            for name in LOADS:
                bench.point(name, clients, 0)
        # The goal points, in rounds that alternate their order: each ratio
        # compares loads measured minutes apart at most, on a shared machine.
        for round_ in range(1, ROUNDS + 1):
            for name in LOADS if round_ % 2 else reversed(LOADS):
                bench.point(name, CLIENTS[-1], round_)
        bench.settle()
        figures["profile"] = profile_under_load(
            pid, "charge", lambda s: bench.charge(port, CLIENTS[-1], s)
        )
        bench.settle()
        figures["profile_cpu"] = profile_under_load(
            pid, "charge-gil", lambda s: bench.charge(port, CLIENTS[-1], s), gil=True
        )
        bench.settle()
        figures["profile_read"] = profile_under_load(
            pid, "balance", lambda s: bench.balance(port, CLIENTS[-1], s)
        )
    figures.update(bench.figures)
    figures["rss"] = bench.rss

    split_port = free_port()
    split_env = {**bench.env, "LEDGER_IN_PROCESS_PROJECTIONS": "false"}
    projector = [str(Path(sys.executable).parent / "ledger"), "project"]
    with (
        server(ledger_serve(split_port, WORKERS), split_env, split_port, logs / "split.log"),
        background(projector, bench.env, logs / "project.log"),
    ):
        figures["split_charge"] = [
            bench.charge(split_port, c, SECONDS).summary() for c in (1, CLIENTS[-1])
        ]
        bench.settle()  # while the projector still runs
        for point in figures["split_charge"]:
            print("split", point)

    pool = bench.pool
    figures["inprocess"] = [inprocess(ledger, pool, t, SECONDS) for t in (1, INPROCESS_THREADS)]
    read_models.start()  # the read models run beside the commands, as in the API process
    try:
        figures["inprocess_projecting"] = [
            inprocess(ledger, pool, t, SECONDS) for t in (1, INPROCESS_THREADS)
        ]
    finally:
        read_models.stop()
    for point in figures["inprocess"] + figures["inprocess_projecting"]:
        print("in-process", point)
    figures["measured_at"] = measured_at()
    return figures


NEEDLES = {
    "Ledger.charge (the command)": "charge (ledger/application.py",
    "Ledger.save (append + commit, snapshots)": "save (ledger/persistence/library.py",
    "Ledger._load (load the request and the account)": "_load (ledger/application.py",
    "the batch: decide each command and append (batcher on)": "_decide_and_append (ledger/",
    "the batch: load its aggregates (one query per store)": "WorkingSet.load (ledger/",
    "the batch: one append of all its events (save_events)": "save_events (ledger/",
    "Batcher.run (a batched command: writing, or waiting its turn)": "Batcher.run (ledger/",
    "snapshots taken": "_take_snapshots",
    "read-model projection thread": "ledger/projections/runner.py",
    "ReadQueries.balance (the read)": "balance (ledger/projections/queries.py",
    "FastAPI dependency solving": "solve_dependencies (fastapi",
    "the access log line and metrics (middleware)": "_record (api/middleware.py",
    "psycopg (driver, Python side)": "(psycopg/",
    "uvicorn event loop (idle select included)": "Runner.run (asyncio",
    "pydantic validation/serialisation": "pydantic",
}


def profile_under_load(
    pid: int, name: str, load: Callable[[int], LoadResult], *, gil: bool = False
) -> dict[str, Any]:
    """Profile every API process while ``load`` runs for ``PROFILE_SECONDS``."""
    PROFILES.mkdir(exist_ok=True)
    out = PROFILES / f"profile-{name}.txt"
    ok: list[bool] = []
    spy = threading.Thread(target=lambda: ok.append(profile(pid, PROFILE_SECONDS, out, gil=gil)))
    spy.start()
    time.sleep(0.5)  # py-spy attaches first
    result = load(PROFILE_SECONDS)
    spy.join(PROFILE_SECONDS + 90)
    collapsed = out.read_text() if ok and ok[0] else ""
    shares = cumulative_frames(collapsed, list(NEEDLES.values()))
    return {
        "per_s_while_profiled": round(result.rate, 1),
        "top_own": [[f, round(s, 1)] for f, s in top_frames(collapsed)],
        "through": {label: round(shares.get(n, 0.0), 1) for label, n in NEEDLES.items()},
        "raw": str(out.relative_to(HERE.parent)),
        "gil": gil,
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def at(points: Sequence[dict[str, Any]], clients: int) -> list[dict[str, Any]]:
    return [p for p in points if p["clients"] == clients]


def median_of(points: Sequence[dict[str, Any]], key: str) -> float:
    return float(statistics.median(p[key] for p in points)) if points else 0.0


def paired(f: dict[str, Any], a: str, b: str, clients: int, key: str = "per_s") -> list[float]:
    """``a / b`` for each round at ``clients`` (the two loads of one round ran
    back to back)."""
    of_b = {p["round"]: p[key] for p in at(f[b], clients)}
    return [ratio(p[key], of_b[p["round"]]) for p in at(f[a], clients) if p["round"] in of_b]


def goal_ratio(f: dict[str, Any], a: str, b: str, clients: int, key: str = "per_s") -> float:
    """The median over rounds of the per-round ratio."""
    ratios = paired(f, a, b, clients, key)
    return round(statistics.median(ratios), 3) if ratios else 0.0


def write_results(f: dict[str, Any]) -> None:
    top = CLIENTS[-1]
    ratios = {
        "charge_vs_pgbench_1": goal_ratio(f, "charge", "pgbench", 1),
        "charge_vs_pgbench_16": goal_ratio(f, "charge", "pgbench", top),
        "balance_read_vs_bare_select": goal_ratio(f, "balance", "bare", top),
        "bare_insert_vs_pgbench_16": goal_ratio(f, "bare_insert", "pgbench", top),
        "charge_vs_bare_insert_16": goal_ratio(f, "charge", "bare_insert", top),
        "server_cpu_per_charge_vs_bare_insert_16": goal_ratio(
            f, "charge", "bare_insert", top, "server_cpu_us_per_request"
        ),
        "server_cpu_per_balance_read_vs_bare_select_16": goal_ratio(
            f, "balance", "bare", top, "server_cpu_us_per_request"
        ),
        "charge_batched_vs_alone_16": goal_ratio(f, "charge", "charge_alone", top),
        "server_cpu_per_charge_alone_vs_bare_insert_16": goal_ratio(
            f, "charge_alone", "bare_insert", top, "server_cpu_us_per_request"
        ),
        "batch_size_median_16": median_of(at(f["charge"], top), "batch_size_p50"),
        "batch_size_p99_16": median_of(at(f["charge"], top), "batch_size_p99"),
        "charge_p99_1_ms": median_of(at(f["charge"], 1), "p99_ms"),
        "charge_alone_p99_1_ms": median_of(at(f["charge_alone"], 1), "p99_ms"),
    }
    ratios["charge_p99_growth_1_ms"] = round(
        ratios["charge_p99_1_ms"] - ratios["charge_alone_p99_1_ms"], 2
    )
    save_json(
        {
            **ratios,
            "rounds_at_16_clients": {
                "charge_vs_pgbench": paired(f, "charge", "pgbench", top),
                "balance_read_vs_bare_select": paired(f, "balance", "bare", top),
                "bare_insert_vs_pgbench": paired(f, "bare_insert", "pgbench", top),
                "charge_vs_bare_insert": paired(f, "charge", "bare_insert", top),
                "server_cpu_per_charge_vs_bare_insert": paired(
                    f, "charge", "bare_insert", top, "server_cpu_us_per_request"
                ),
                "charge_batched_vs_alone": paired(f, "charge", "charge_alone", top),
            },
            "charge_vs_pgbench_by_clients": {
                str(c): goal_ratio(f, "charge", "pgbench", c) for c in CLIENTS
            },
            "balance_read_vs_bare_select_by_clients": {
                str(c): goal_ratio(f, "balance", "bare", c) for c in CLIENTS
            },
            "api_peak_rss_mib": max(r["peak_total_mib"] for r in f["rss"]),
            "throughput": f,
        }
    )
    plot(f)
    save_section("Write throughput", write_section(f, ratios))
    save_section("Read throughput", read_section(f, ratios))
    save_section("Write-path profile", profile_section(f["profile"], "the charge load"))
    save_section("Write-path CPU profile", profile_section(f["profile_cpu"], "the charge load"))
    save_section("Read-path profile", profile_section(f["profile_read"], "the balance GET load"))


def _rows(points: Sequence[dict[str, Any]], label: str) -> list[list[Any]]:
    return [
        [
            label,
            p["clients"],
            p.get("round", ""),
            f"{p['per_s']:,.0f}",
            p["p50_ms"],
            p["p99_ms"],
            p["ok"],
            p.get("failed", 0),
            p.get("server_cpu_us_per_request", ""),
            p.get("generator_cores", ""),
        ]
        for p in points
    ]


HEADER = (
    "load", "clients", "round", "per s", "p50 ms", "p99 ms", "done", "failed",
    "server CPU µs / request", "generator cores",
)  # fmt: skip


def _met(value: float, goal: float) -> str:
    return "met" if value >= goal else "NOT met"


def write_section(f: dict[str, Any], r: dict[str, float]) -> str:
    rows = _rows(f["pgbench"], "pgbench: 1-row INSERT, durable commit")
    rows += _rows(f["bare_insert"], "bare FastAPI: 1-row INSERT (bench/bare_app.py)")
    rows += _rows(f["charge"], "HTTP POST /v1/requests/{id}/charge")
    rows += _rows(f["charge_alone"], "HTTP charge, batcher off (LEDGER_BATCH_COMMANDS=false)")
    rows += _rows(f["inprocess"], "in-process Ledger.charge (threads), no read models")
    rows += _rows(f["inprocess_projecting"], "in-process Ledger.charge, read models running")
    rows += _rows(f["split_charge"], "HTTP charge, read models in a `ledger project` process")
    rss = table(
        (
            "load",
            "clients",
            "peak RSS, all API processes (MiB)",
            "largest process (MiB)",
            "processes",
        ),
        [
            [
                r.get("load", "charge"),
                r["clients"],
                r["peak_total_mib"],
                r["peak_process_mib"],
                r["processes"],
            ]
            for r in f["rss"]
        ],
    )
    batches = table(
        ("load", "clients", "round", "batches", "charges per batch p50", "p99", "max"),
        [
            [
                name,
                p["clients"],
                p.get("round", ""),
                p["batches"],
                p["batch_size_p50"],
                p["batch_size_p99"],
                p["batch_size_max"],
            ]
            for name in ("charge", "charge_alone")
            for p in f[name]
        ],
    )
    top = CLIENTS[-1]
    backlog = max(p.get("projection_backlog_s", 0.0) for p in f["charge"])
    cpu = r["server_cpu_per_charge_vs_bare_insert_16"]
    cpu_met = "met" if 0 < cpu <= GOAL_CPU_RATIO else "NOT met"
    return (
        f"Measured {f['measured_at']} on {os.cpu_count()} CPUs; PostgreSQL 16 (pgserver, Unix "
        f"socket) with {', '.join(f'{k}={v}' for k, v in f['durability'].items())}; "
        f"`ledger serve --workers {f['workers']}` (uvicorn, read models in-process) and the "
        f"bare app under the same uvicorn settings, both up for the whole run; {SECONDS} s "
        "per point, closed loop (each client sends its next request on the answer), every "
        f"charge on its own open request, requests dealt round-robin over {ACCOUNTS} "
        f"accounts. The {top}-client points ran in {f['rounds']} rounds (pgbench, bare insert, "
        "charge, bare select, balance read; the order reversed every other round): each "
        "ratio below is the median of the per-round ratios. Every load starts with the read "
        "models caught up. Load average (1, 5, 15 min) before the loads: "
        f"{f['load_average_before']}; this machine is shared, so absolute rates move from run "
        "to run and the ratios are what to compare.\n\n"
        + table(HEADER, rows)
        + f"\n**HTTP charges / bare FastAPI inserts at {top} clients: "
        f"{r['charge_vs_bare_insert_16']:.3f}** (goal >= {GOAL_CHARGE_VS_BARE_INSERT:.2f}: "
        f"{_met(r['charge_vs_bare_insert_16'], GOAL_CHARGE_VS_BARE_INSERT)}; rounds "
        f"{paired(f, 'charge', 'bare_insert', top)}); **server CPU per charge / per bare "
        f"insert: {r['server_cpu_per_charge_vs_bare_insert_16']:.2f}** (goal <= "
        f"{GOAL_CPU_RATIO}: {cpu_met}"
        f"; batcher off: {r['server_cpu_per_charge_alone_vs_bare_insert_16']:.2f}). "
        f"Batched / batcher off at {top} clients: {r['charge_batched_vs_alone_16']:.3f}. "
        f"Charges per batch at {top} clients: median {r['batch_size_median_16']:g}, p99 "
        f"{r['batch_size_p99_16']:g}. Charge p99 at 1 client: {r['charge_p99_1_ms']:.2f} ms "
        f"batched, {r['charge_alone_p99_1_ms']:.2f} ms alone ("
        f"{r['charge_p99_growth_1_ms']:+.2f} ms; allowed: +{GOAL_P99_GROWTH_1_MS:g} ms).\n\n"
        "Charges per batch (per append transaction, counted in the store: the rows of one "
        "transaction share its `xmin`):\n\n" + batches + "\n"
        f"**HTTP charges / pgbench inserts at {top} clients: "
        f"{r['charge_vs_pgbench_16']:.3f}** (goal >= {GOAL_WRITE:.2f}: "
        f"{_met(r['charge_vs_pgbench_16'], GOAL_WRITE)}); at 1 client: "
        f"{r['charge_vs_pgbench_1']:.3f}.\n\n"
        f"The ceiling of any HTTP write on this stack and machine is the bare endpoint "
        f"doing pgbench's one-row INSERT: **{r['bare_insert_vs_pgbench_16']:.3f}** of "
        f"pgbench at {top} clients. A charge reaches {r['charge_vs_bare_insert_16']:.2f} of "
        f"that bare insert, and costs {r['server_cpu_per_charge_vs_bare_insert_16']:.1f} "
        "times its server CPU per request: it authenticates the caller, loads the request "
        "and the account, decides, appends two events in one transaction under the event "
        "store's table lock, and its process projects them into six read models and the "
        "audit chain. After each charge load the read models needed at most "
        f"{backlog:.1f} s to finish its events.\n\n"
        "Peak resident memory of the API (uvicorn supervisor + workers, sampled every "
        "0.2 s by the parent during each charge load):\n\n" + rss + "\n![latency](latency.png)\n"
    )


def read_section(f: dict[str, Any], r: dict[str, float]) -> str:
    rows = _rows(f["bare"], "bare FastAPI: one PK SELECT (bench/bare_app.py)")
    rows += _rows(f["balance"], "GET /v1/accounts/{id} (balances read model)")
    top = CLIENTS[-1]
    goal = r["balance_read_vs_bare_select"]
    bare_cores = max(p["generator_cores"] for p in f["bare"])
    return (
        f"Same run, same uvicorn settings (`--workers {f['workers']}`), same generator "
        f"(bench/loadgen.py: threads, one keep-alive http.client connection each), "
        f"{SECONDS} s per point, GETs cycling over {ACCOUNTS} accounts; the {top}-client "
        f"points in the {f['rounds']} rounds described above.\n\n"
        + table(HEADER, rows)
        + f"\n**Balance reads / bare select at {top} clients: {goal:.3f}** (median of the "
        f"rounds {paired(f, 'balance', 'bare', top)}; goal >= {GOAL_READ:.2f}: "
        f"{_met(goal, GOAL_READ)}). Server CPU per request, balance read / bare select: "
        f"{r['server_cpu_per_balance_read_vs_bare_select_16']:.2f}: the difference is the "
        "API's own work per request (bearer-token check, role check, request id, access log "
        "line, metrics). The generator used at most "
        f"{bare_cores:.2f} of {os.cpu_count()} cores against the bare endpoint (the fastest "
        "one): it shares the machine with the server, so absolute rates are lower bounds; "
        "the ratio is measured under the same handicap.\n"
    )


def profile_section(p: dict[str, Any], load: str) -> str:
    if not p["top_own"]:
        return "py-spy was not available or could not attach: no profile this run.\n"
    own = table(("frame (own time)", "% of samples"), p["top_own"])
    through = table(
        ("stacks passing through", "% of samples"), [[k, v] for k, v in p["through"].items()]
    )
    if p.get("gil"):
        what = (
            "only the thread holding the GIL, so where the API processes' Python CPU time "
            "goes (C code that released the GIL, such as libpq and the kernel, is not seen)"
        )
    else:
        what = (
            "busy threads: `Connection.wait` is a thread waiting for PostgreSQL, "
            "`Runner.run` the event loop's select (mostly idle), `Condition.wait` a parked "
            "thread"
        )
    return (
        f"py-spy (100 Hz, {PROFILE_SECONDS} s, every API process) under {load} at 16 "
        f"clients ({p['per_s_while_profiled']:,.0f}/s while profiled; raw collapsed stacks: "
        f"`{p['raw']}`). Samples of {what}. The second table attributes whole stacks (a "
        "sample counts under every frame it passes through).\n\n" + own + "\n" + through
    )


def plot(f: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (write, read) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = (
        (write, "pgbench", "pgbench insert"),
        (write, "bare_insert", "bare insert"),
        (write, "charge", "HTTP charge"),
        (write, "inprocess", "in-process charge"),
        (read, "bare", "bare PK select"),
        (read, "balance", "GET balance"),
    )
    for axis, key, label in series:
        clients = sorted({p["clients"] for p in f[key]})
        p50 = [median_of(at(f[key], c), "p50_ms") for c in clients]
        p99 = [median_of(at(f[key], c), "p99_ms") for c in clients]
        line = axis.plot(clients, p50, "o-", label=f"{label} p50")
        axis.plot(clients, p99, "s--", color=line[0].get_color(), label=f"{label} p99")
    for axis, title in ((write, "write latency"), (read, "read latency")):
        axis.set(
            xscale="log",
            yscale="log",
            xlabel="concurrent clients",
            ylabel="ms",
            title=title,
            xticks=list(CLIENTS),
            xticklabels=[str(c) for c in CLIENTS],
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "latency.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
