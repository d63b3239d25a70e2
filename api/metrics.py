"""Prometheus text exposition (format 0.0.4), written by hand.

Counts requests by method, route template (never the raw path, so ids do
not explode the label set) and status, and a latency histogram by route.
Updated by the request middleware, read by ``GET /metrics``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: defaultdict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS_S))
        self._sum: defaultdict[str, float] = defaultdict(float)
        self._count: defaultdict[str, int] = defaultdict(int)
        self._auth_failures = 0
        self._auth_throttled = 0

    def observe(self, method: str, route: str, status: int, duration_s: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            buckets = self._buckets[route]
            for i, bound in enumerate(BUCKETS_S):
                if duration_s <= bound:
                    buckets[i] += 1
            self._sum[route] += duration_s
            self._count[route] += 1

    def auth_failed(self, *, throttled: bool) -> None:
        """A wrong bearer token; ``throttled`` when it was answered 429."""
        with self._lock:
            self._auth_failures += 1
            self._auth_throttled += throttled

    def render(self, position: int | None, lag: Mapping[str, int]) -> str:
        lines: list[str] = []
        with self._lock:
            lines += _header("ledger_http_requests_total", "counter", "HTTP requests answered")
            for (method, route, status), n in sorted(self._requests.items()):
                lines.append(
                    f'ledger_http_requests_total{{method="{method}",route="{_label(route)}",'
                    f'status="{status}"}} {n}'
                )
            lines += _header(
                "ledger_http_request_duration_seconds", "histogram", "HTTP request latency"
            )
            for route in sorted(self._count):
                label = _label(route)
                for bound, n in zip(BUCKETS_S, self._buckets[route], strict=True):
                    lines.append(
                        f'ledger_http_request_duration_seconds_bucket{{route="{label}",'
                        f'le="{bound}"}} {n}'
                    )
                lines.append(
                    f'ledger_http_request_duration_seconds_bucket{{route="{label}",le="+Inf"}} '
                    f"{self._count[route]}"
                )
                lines.append(
                    f'ledger_http_request_duration_seconds_sum{{route="{label}"}} '
                    f"{self._sum[route]:.6f}"
                )
                lines.append(
                    f'ledger_http_request_duration_seconds_count{{route="{label}"}} '
                    f"{self._count[route]}"
                )
            lines += _header(
                "ledger_auth_failures_total", "counter", "requests with a wrong bearer token"
            )
            lines.append(f"ledger_auth_failures_total {self._auth_failures}")
            lines += _header(
                "ledger_auth_throttled_total",
                "counter",
                "wrong bearer tokens answered 429: too many from one client address",
            )
            lines.append(f"ledger_auth_throttled_total {self._auth_throttled}")
        if position is not None:
            lines += _header(
                "ledger_events_appended", "gauge", "global position of the newest stored event"
            )
            lines.append(f"ledger_events_appended {position}")
        lines += _header("ledger_read_model_lag_events", "gauge", "events a read model is behind")
        lines += _gauges("ledger_read_model_lag_events", "read_model", lag.items())
        return "\n".join(lines) + "\n"


def _header(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _gauges(name: str, label: str, values: Iterable[tuple[str, int]]) -> list[str]:
    return [f'{name}{{{label}="{_label(k)}"}} {v}' for k, v in sorted(values)]
