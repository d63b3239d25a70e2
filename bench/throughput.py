"""Write and read throughput of the HTTP API against baselines measured in
the same run, on one throwaway PostgreSQL, loopback only:

- write: ``POST /v1/requests/{id}/charge`` at 1, 4 and 16 closed-loop clients
  against ``ledger serve`` (a subprocess), beside ``pgbench`` doing one durable
  single-row INSERT per transaction at the same client counts; the API's
  peak RSS during the load; the same command in-process (``Ledger.charge``,
  no HTTP) on 1 and ``INPROCESS_THREADS`` threads;
- read: ``GET /v1/accounts/{id}`` (the balances read model) beside a bare
  FastAPI endpoint doing one primary-key SELECT (``bench.bare_app``), same
  uvicorn settings and workers, same generator and clients;
- a py-spy profile of one API worker under the 16-client charge load, when
  py-spy is installed (its top frames, by own time, go to results.md).

Each point runs for ``LEDGER_BENCH_SECONDS`` (default 10) and on a bounded
list of requests. Results: ``bench/results.json`` (``charge_vs_pgbench_*``,
``balance_read_vs_bare_select``, ``throughput_*``), the sections "Write
throughput", "Read throughput" and "Write-path profile" of ``bench/results.md``
and the plot ``bench/latency.png``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil

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
from bench.servers import RssSampler, background, free_port, ledger_serve, server, uvicorn_bare
from ledger.aggregates import account_id_for
from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.projections import ReadModels
from ledger.settings import LedgerSettings

SECONDS = int(os.environ.get("LEDGER_BENCH_SECONDS", "10"))
WORKERS = int(os.environ.get("LEDGER_BENCH_WORKERS", "2"))
CLIENTS = (1, 4, 16)
INPROCESS_THREADS = 4
PROFILE_SECONDS = 8
ACCOUNTS = 400
CREDITS_PER_ACCOUNT = 1_000_000
# Each charge load takes seconds x cap open requests; one that runs out stops
# early (bounded by count; reported as "ran out") and its rate stays valid.
HTTP_CHARGES_PER_S_CAP = 600
INPROCESS_CHARGES_PER_S_CAP = 800
CATCH_UP_TIMEOUT_S = 120.0
PROFILES = HERE / "profiles"  # raw collapsed stacks, local only (bench/.gitignore)
GOAL_WRITE = 0.10
GOAL_READ = 0.60


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
    ids = pool.take(seconds * HTTP_CHARGES_PER_S_CAP)
    paths = [f"/v1/requests/{rid}/charge" for rid in ids]
    headers = {"Authorization": f"Bearer {token}"}
    return run_load(port, "POST", split(paths, clients), headers=headers, duration_s=seconds)


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


def profile(pid: int, seconds: int, out: Path) -> bool:
    """py-spy samples (busy threads only) of ``pid`` and its subprocesses for ``seconds``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return False
    command = [
        spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds),
        "--rate", "100", "--format", "raw", "--output", str(out), "--nonblocking",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not out.exists():
        print("py-spy failed:", done.stderr.strip()[-500:])
        return False
    return True


def top_frames(collapsed: str, count: int = 8) -> list[tuple[str, float]]:
    """From py-spy's collapsed stacks, the leaf frames with the largest share
    of the busy samples (idle threads waiting excluded)."""
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        total += int(samples)
        own[stack.split(";")[-1]] += int(samples)
    return [(frame, 100 * n / total) for frame, n in own.most_common(count)] if total else []


def cumulative_frames(collapsed: str, needles: Sequence[str]) -> dict[str, float]:
    """The share of samples whose stack passes through each of ``needles``."""
    hits: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        total += int(samples)
        for needle in needles:
            if needle in stack:
                hits[needle] += int(samples)
    return {n: 100 * hits[n] / total for n in needles} if total else {}


def main() -> None:
    figures: dict[str, Any] = {}
    with database() as url:
        ledger = open_ledger(LedgerSettings(database_url=url, support_hours="24/7"))
        read_models = ReadModels(ledger)
        try:
            figures = run_all(url, ledger, read_models)
        finally:
            read_models.close()
            ledger.close()
    write_results(figures)


def run_all(url: str, ledger: Ledger, read_models: ReadModels) -> dict[str, Any]:
    started = time.perf_counter()
    customer_ids = seed_accounts(
        ledger, f"bench-{secrets.token_hex(3)}", ACCOUNTS, CREDITS_PER_ACCOUNT
    )
    requests = SECONDS * (len(CLIENTS) * HTTP_CHARGES_PER_S_CAP + 4 * INPROCESS_CHARGES_PER_S_CAP)
    requests += (PROFILE_SECONDS + 3 * SECONDS) * HTTP_CHARGES_PER_S_CAP
    pool = Pool(seed_requests(ledger, customer_ids, requests))
    read_models.catch_up()  # the API starts with its read models up to date
    print(
        f"seeded {ACCOUNTS} accounts, {requests} open requests "
        f"in {time.perf_counter() - started:.1f} s"
    )

    figures: dict[str, Any] = {
        "durability": pgbench.durability(url),
        "workers": WORKERS,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    figures["pgbench"] = [pgbench.run(url, c, SECONDS) for c in CLIENTS]
    for point in figures["pgbench"]:
        print("pgbench", point)

    specialist, helpdesk = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    env = {
        "LEDGER_DATABASE_URL": url,
        "LEDGER_API_KEYS": f"specialist:bench-sp:{specialist},helpdesk:bench-hd:{helpdesk}",
        "LEDGER_SUPPORT_HOURS": "24/7",
    }
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    balance_paths = [f"/v1/accounts/{c}" for c in customer_ids]
    headers = {"Authorization": f"Bearer {helpdesk}"}
    with server(ledger_serve(port, WORKERS), env, port, logs / "ledger.log") as pid:
        figures["charge"], figures["rss"] = [], []
        for clients in CLIENTS:
            with RssSampler(pid) as rss:
                result = charge_load(port, specialist, pool, clients, SECONDS)
            figures["charge"].append(result.summary())
            figures["rss"].append(
                {
                    "clients": clients,
                    "peak_total_mib": round(rss.peak_total_bytes / 2**20, 1),
                    "peak_process_mib": round(rss.peak_process_bytes / 2**20, 1),
                    "processes": rss.processes,
                }
            )
            print("charge", figures["charge"][-1], figures["rss"][-1])
        figures["profile"] = profile_under_load(
            pid, "charge", lambda s: charge_load(port, specialist, pool, CLIENTS[-1], s)
        )
        read_models.wait_for(ledger.position(), timeout_s=CATCH_UP_TIMEOUT_S)
        figures["balance"] = [
            read_load(port, balance_paths, headers, c, SECONDS).summary() for c in CLIENTS
        ]
        for point in figures["balance"]:
            print("balance", point)
        figures["profile_read"] = profile_under_load(
            pid, "balance", lambda s: read_load(port, balance_paths, headers, 16, s)
        )

    split_port = free_port()
    split_env = {**env, "LEDGER_IN_PROCESS_PROJECTIONS": "false"}
    projector = [str(Path(sys.executable).parent / "ledger"), "project"]
    with (
        server(ledger_serve(split_port, WORKERS), split_env, split_port, logs / "split.log"),
        background(projector, env, logs / "project.log"),
    ):
        figures["split_charge"] = [
            charge_load(split_port, specialist, pool, c, SECONDS).summary()
            for c in (1, CLIENTS[-1])
        ]
        for point in figures["split_charge"]:
            print("split", point)

    bare_port = free_port()
    bare_paths = [f"/bare/{account_id_for(c)}" for c in customer_ids]
    bare_env = {"BENCH_DATABASE_URL": url}
    with server(uvicorn_bare(bare_port, WORKERS), bare_env, bare_port, logs / "bare.log"):
        figures["bare"] = [
            read_load(bare_port, bare_paths, {}, c, SECONDS).summary() for c in CLIENTS
        ]
        for point in figures["bare"]:
            print("bare", point)

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
    "Application.save (append + commit)": "save (eventsourcing/application.py",
    "Repository.get (load aggregates)": "get (eventsourcing/application.py",
    "snapshots taken": "_take_snapshots",
    "read-model projection thread": "ledger/projections/runner.py",
    "ReadModels.balance (the read)": "balance (ledger/projections/__init__.py",
    "FastAPI dependency solving": "solve_dependencies (fastapi",
    "uvicorn event loop (idle select included)": "Runner.run (asyncio",
    "pydantic validation/serialisation": "pydantic",
}


def profile_under_load(pid: int, name: str, load: Callable[[int], LoadResult]) -> dict[str, Any]:
    """Profile every API process while ``load`` runs for ``PROFILE_SECONDS``."""
    PROFILES.mkdir(exist_ok=True)
    out = PROFILES / f"profile-{name}.txt"
    ok: list[bool] = []
    spy = threading.Thread(target=lambda: ok.append(profile(pid, PROFILE_SECONDS, out)))
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
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def write_results(f: dict[str, Any]) -> None:
    by = {k: {p["clients"]: p for p in f[k]} for k in ("pgbench", "charge", "balance", "bare")}
    charge_1 = ratio(by["charge"][1]["per_s"], by["pgbench"][1]["per_s"])
    charge_16 = ratio(by["charge"][16]["per_s"], by["pgbench"][16]["per_s"])
    read_16 = ratio(by["balance"][16]["per_s"], by["bare"][16]["per_s"])
    peak_rss = max(r["peak_total_mib"] for r in f["rss"])
    save_json(
        {
            "charge_vs_pgbench_1": charge_1,
            "charge_vs_pgbench_16": charge_16,
            "balance_read_vs_bare_select": read_16,
            "balance_read_vs_bare_select_by_clients": {
                str(c): ratio(by["balance"][c]["per_s"], by["bare"][c]["per_s"]) for c in CLIENTS
            },
            "charge_vs_pgbench_by_clients": {
                str(c): ratio(by["charge"][c]["per_s"], by["pgbench"][c]["per_s"]) for c in CLIENTS
            },
            "api_peak_rss_mib": peak_rss,
            "throughput": f,
        }
    )
    plot(f)
    save_section("Write throughput", write_section(f, charge_1, charge_16))
    save_section("Read throughput", read_section(f, read_16))
    save_section("Write-path profile", profile_section(f["profile"], "the charge load"))
    save_section("Read-path profile", profile_section(f["profile_read"], "the balance GET load"))


def _rows(points: Sequence[dict[str, Any]], label: str) -> list[list[Any]]:
    return [
        [
            label,
            p["clients"],
            f"{p['per_s']:,.0f}",
            p["p50_ms"],
            p["p99_ms"],
            p["ok"],
            p.get("failed", 0),
            p.get("generator_cores", ""),
        ]
        for p in points
    ]


HEADER = (
    "load", "clients", "per s", "p50 ms", "p99 ms", "done", "failed", "generator cores",
    "machine CPU %",
)  # fmt: skip


def write_section(f: dict[str, Any], charge_1: float, charge_16: float) -> str:
    rows = _rows(f["pgbench"], "pgbench: 1-row INSERT, durable commit")
    rows += _rows(f["charge"], "HTTP POST /v1/requests/{id}/charge")
    rows += _rows(f["inprocess"], "in-process Ledger.charge (threads), no read models")
    rows += _rows(f["inprocess_projecting"], "in-process Ledger.charge, read models running")
    rows += _rows(f["split_charge"], "HTTP charge, read models in a `ledger project` process")
    rss = table(
        ("clients", "peak RSS, all API processes (MiB)", "largest process (MiB)", "processes"),
        [
            [r["clients"], r["peak_total_mib"], r["peak_process_mib"], r["processes"]]
            for r in f["rss"]
        ],
    )
    met = "met" if charge_16 >= GOAL_WRITE else "NOT met"
    return (
        f"Measured {f['measured_at']} on {os.cpu_count()} CPUs; PostgreSQL 16 (pgserver, Unix "
        f"socket) with {', '.join(f'{k}={v}' for k, v in f['durability'].items())}; "
        f"`ledger serve --workers {f['workers']}` (uvicorn, read models in-process); "
        f"{SECONDS} s per point, closed loop (each client sends its next request on the "
        "answer), every charge on its own open request, requests dealt round-robin over "
        f"{ACCOUNTS} accounts. Load average (1, 5, 15 min) before the loads: "
        f"{f['load_average_before']}: other work on this shared machine shows in the machine "
        "CPU column and in run-to-run noise.\n\n"
        + table(HEADER, rows)
        + f"\nHTTP charges / pgbench inserts: **{charge_1:.3f}** at 1 client, "
        f"**{charge_16:.3f}** at 16 clients (goal >= {GOAL_WRITE:.2f} at 16: {met}).\n"
        "A charge appends two events (request and account) in one transaction, plus "
        "the loads and the read-model projection the API process runs.\n\n"
        "Peak resident memory of the API (uvicorn supervisor + workers, sampled every "
        "0.2 s by the parent during each charge load):\n\n" + rss + "\n![latency](latency.png)\n"
    )


def read_section(f: dict[str, Any], read_16: float) -> str:
    rows = _rows(f["bare"], "bare FastAPI: one PK SELECT (bench/bare_app.py)")
    rows += _rows(f["balance"], "GET /v1/accounts/{id} (balances read model)")
    met = "met" if read_16 >= GOAL_READ else "NOT met"
    bare_cores = max(p["generator_cores"] for p in f["bare"])
    return (
        f"Same run, same uvicorn settings (`--workers {f['workers']}`), same generator "
        f"(bench/loadgen.py: threads, one keep-alive http.client connection each), "
        f"{SECONDS} s per point, GETs cycling over {ACCOUNTS} accounts.\n\n"
        + table(HEADER, rows)
        + f"\nBalance reads / bare select at 16 clients: **{read_16:.3f}** "
        f"(goal >= {GOAL_READ:.2f}: {met}). "
        f"The generator used at most {bare_cores:.2f} "
        f"of {os.cpu_count()} cores against the bare endpoint (the fastest one): it shares "
        "the machine with the server, so absolute rates are lower bounds; the ratio is "
        "measured under the same handicap.\n"
    )


def profile_section(p: dict[str, Any], load: str) -> str:
    if not p["top_own"]:
        return "py-spy was not available or could not attach: no profile this run.\n"
    own = table(("frame (own time)", "% of busy samples"), p["top_own"])
    through = table(
        ("stacks passing through", "% of busy samples"), [[k, v] for k, v in p["through"].items()]
    )
    return (
        f"py-spy (100 Hz, {PROFILE_SECONDS} s, busy threads of every API process) under "
        f"{load} at 16 clients ({p['per_s_while_profiled']:,.0f}/s while profiled; "
        f"raw collapsed stacks: `{p['raw']}`). Reading it: `Connection.wait` is a thread "
        "waiting for PostgreSQL, `Runner.run` the event loop's select (mostly idle), "
        "`Condition.wait` a parked thread; the second table attributes whole stacks "
        "(a sample counts under every frame it passes through).\n\n" + own + "\n" + through
    )


def plot(f: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (write, read) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = (
        (write, "pgbench", "pgbench insert"),
        (write, "charge", "HTTP charge"),
        (write, "inprocess", "in-process charge"),
        (read, "bare", "bare PK select"),
        (read, "balance", "GET balance"),
    )
    for axis, key, label in series:
        clients = [p["clients"] for p in f[key]]
        line = axis.plot(clients, [p["p50_ms"] for p in f[key]], "o-", label=f"{label} p50")
        axis.plot(
            clients,
            [p["p99_ms"] for p in f[key]],
            "s--",
            color=line[0].get_color(),
            label=f"{label} p99",
        )
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
