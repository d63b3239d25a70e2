"""The physical limit of a durable append here: ``pgbench`` running one
single-row INSERT per transaction (``synchronous_commit`` on, ``fsync`` on)
against the same PostgreSQL, with per-transaction latencies from its log.

pgbench comes from Debian's ``postgresql-contrib`` (``make bench`` installs it
when missing and run as root) or from the pgserver wheel as a fallback.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.common import percentile
from tests.pg import split_url

SCRIPT = "\\set v random(1, 1000000000)\nINSERT INTO bench_t(v) VALUES (:v);\n"
TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def find_pgbench() -> str:
    candidates = [shutil.which("pgbench"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))]
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        candidates.append(str(POSTGRES_BIN_PATH / "pgbench"))
    except ImportError:
        pass
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("pgbench not found: apt-get install postgresql-contrib")


def durability(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("fsync", "synchronous_commit", "wal_sync_method")
        }


def run(url: str, clients: int, duration_s: int) -> dict[str, Any]:
    """One pgbench run; its rate (tps) and latency percentiles (ms)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_t (id BIGSERIAL PRIMARY KEY, v BIGINT)")
    parts = split_url(url)
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        script = Path(tmp) / "insert.sql"
        script.write_text(SCRIPT)
        command = [
            find_pgbench(),
            "-n",
            "-f",
            str(script),
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(duration_s),
            "-l",
            "--log-prefix",
            str(Path(tmp) / "log"),
            "-h",
            parts["host"],
            "-p",
            parts["port"],
            "-U",
            parts["user"],
            parts["dbname"],
        ]
        psutil.cpu_percent()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + 60, check=True
        )
        busy = psutil.cpu_percent()
        match = TPS.search(done.stdout)
        if match is None:
            raise RuntimeError(f"unexpected pgbench output:\n{done.stdout}\n{done.stderr}")
        latencies = [
            int(line.split()[2]) / 1e6
            for log in Path(tmp).glob("log.*")
            for line in log.read_text().splitlines()
        ]
    return {
        "clients": clients,
        "per_s": round(float(match.group(1)), 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "ok": len(latencies),
        "machine_busy_pct": round(busy),
    }
