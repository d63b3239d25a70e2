"""A closed-loop HTTP load generator: ``clients`` threads, each with one
keep-alive connection (``http.client``, the cheapest client in the standard
library), sending its next request as soon as the previous answer is read.

Every load is bounded twice: by time (``duration_s``) and by count (each
client's list of paths; ``cycle=True`` reuses a list, still bounded by
``max_requests``). Loopback only: the host must be 127.0.0.1.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psutil

from bench.common import percentile

LOOPBACK = "127.0.0.1"
TIMEOUT_S = 30.0
MAX_REQUESTS_PER_CLIENT = 1_000_000


@dataclass
class LoadResult:
    clients: int
    elapsed_s: float
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    generator_cpu_s: float = 0.0
    machine_busy_pct: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def p(self, fraction: float) -> float:
        """A latency quantile, in milliseconds."""
        return percentile(self.latencies_s, fraction) * 1000

    @property
    def generator_cores(self) -> float:
        """CPU the generator itself used, in cores (of ``psutil.cpu_count()``)."""
        return self.generator_cpu_s / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def ran_out(self) -> bool:
        """Every client used up its requests before the time bound."""
        return self.elapsed_s < self.duration_s - 0.5

    def summary(self) -> dict[str, float]:
        return {
            "clients": self.clients,
            "per_s": round(self.rate, 1),
            "p50_ms": round(self.p(0.50), 2),
            "p99_ms": round(self.p(0.99), 2),
            "ok": self.ok,
            "failed": self.errors + sum(n for s, n in self.statuses.items() if s >= 300),
            "generator_cores": round(self.generator_cores, 2),
            "machine_busy_pct": round(self.machine_busy_pct),
            "ran_out": self.ran_out,
        }


def run_load(
    port: int,
    method: str,
    paths_per_client: Sequence[Sequence[str]],
    *,
    headers: dict[str, str],
    duration_s: float,
    cycle: bool = False,
) -> LoadResult:
    """Run one closed-loop load: one thread and connection per entry of ``paths_per_client``."""
    clients = len(paths_per_client)
    result = LoadResult(clients=clients, elapsed_s=0.0, duration_s=duration_s)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(paths: Sequence[str]) -> None:
        todo: Iterable[str] = itertools.cycle(paths) if cycle else paths
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        errors = 0
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=TIMEOUT_S)
        start.wait()
        for path in itertools.islice(todo, MAX_REQUESTS_PER_CLIENT):
            began = time.perf_counter()
            if began >= deadline[0]:
                break
            try:
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=TIMEOUT_S)
                continue
            latencies.append(time.perf_counter() - began)
            statuses[response.status] += 1
        conn.close()
        with lock:
            result.latencies_s.extend(latencies)
            result.statuses.update(statuses)
            result.errors += errors

    threads = [threading.Thread(target=client, args=(p,), daemon=True) for p in paths_per_client]
    for thread in threads:
        thread.start()
    me = psutil.Process()
    cpu_before = sum(me.cpu_times()[:2])
    psutil.cpu_percent()  # starts the machine-wide interval
    began = time.perf_counter()
    deadline[0] = began + duration_s
    start.wait()
    for thread in threads:
        thread.join(duration_s + TIMEOUT_S + 5)
    result.elapsed_s = time.perf_counter() - began
    result.generator_cpu_s = sum(me.cpu_times()[:2]) - cpu_before
    result.machine_busy_pct = psutil.cpu_percent()
    return result


def split(paths: Sequence[str], clients: int) -> list[list[str]]:
    """Deal ``paths`` round-robin to ``clients`` lists."""
    return [list(paths[i::clients]) for i in range(clients)]
