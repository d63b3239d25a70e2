"""Whether the read models this process serves can be trusted now: the
verdict behind ``/readyz``.

Invariants owned here:
- a read model (or the audit chain) that lags by more than ``max_lag``
  events for longer than ``grace_s`` makes the process not ready; a burst
  that is absorbed within the grace period does not;
- when this process runs no projections of its own (in-process projections
  off), some worker must have held every read model's lock within the last
  ``grace_s`` (a worker restarting is not an outage); never seen at all is
  not ready;
- the verdict names what is wrong (``reason``) and its kind (``code``); who
  may see the reason is the caller's business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.projections.control import CHAIN_LOCK, Projections

#: ``code`` of each verdict that is not ready.
LAGGING = "read-model-lagging"
NO_WORKER = "no-projection-worker"


@dataclass(frozen=True)
class Verdict:
    lag: dict[str, int]
    reason: str | None = None
    code: str | None = None
    idle_locks: tuple[str, ...] = field(default=())

    @property
    def ready(self) -> bool:
        return self.reason is None


class Readiness:
    """Remembers since when each read model lags and when a worker was last
    seen holding each lock; one per process."""

    def __init__(
        self,
        projections: Projections,
        *,
        max_lag: int,
        grace_s: float,
        expect_worker: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.projections = projections
        self.max_lag = max_lag
        self.grace_s = grace_s
        self.expect_worker = expect_worker
        self._clock = clock
        self._lagging_since: dict[str, float] = {}
        self._last_held: dict[str, float] = {}

    def check(self) -> Verdict:
        """Raises ``StoreUnavailableError`` when the store does not answer."""
        now = self._clock()
        lag = self.projections.lag()
        idle = self._idle_locks(now) if self.expect_worker else ()
        if idle:
            reason = (
                f"no worker has held the locks of {', '.join(idle)} for {self.grace_s:.0f} s "
                "(LEDGER_IN_PROCESS_PROJECTIONS is off: start `ledger project`)"
            )
            return Verdict(lag, reason, NO_WORKER, idle)
        for name, behind in lag.items():
            if behind <= self.max_lag:
                self._lagging_since.pop(name, None)
        late = {
            name: now - self._lagging_since.setdefault(name, now)
            for name, behind in lag.items()
            if behind > self.max_lag
        }
        overdue = sorted(name for name, since in late.items() if since >= self.grace_s)
        if overdue:
            worst = overdue[0]
            reason = (
                f"read model {worst} lags by {lag[worst]} events, more than {self.max_lag} "
                f"for {late[worst]:.0f} s (LEDGER_READY_MAX_LAG, LEDGER_READY_LAG_GRACE_S)"
            )
            return Verdict(lag, reason, LAGGING)
        return Verdict(lag)

    def _idle_locks(self, now: float) -> tuple[str, ...]:
        names = [*self.projections.names, CHAIN_LOCK]
        for name in self.projections.store.held(names):
            self._last_held[name] = now
        return tuple(
            n for n in names if n not in self._last_held or now - self._last_held[n] > self.grace_s
        )
