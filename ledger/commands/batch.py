"""Group commit: the commands of one process's threads share one load and one append.

``Batcher.run`` is the command cycle of ``ledger.commands.cycle`` for many
callers at once (``LEDGER_BATCH_COMMANDS``; ``cycle.run`` stays the path of one
command, and of a command whose batch met another process's write). Each
caller authorizes its command and checks its key on its own thread and
queues it; one caller at a time is the writer, which

1. takes what waits, in arrival order, at most ``MAX_BATCH`` commands (when
   the last batch had company it waits up to ``COMPANY_WAIT_S`` for as many);
2. loads every aggregate the batch's commands say they need
   (``Command.needs``), and the receipts of their idempotency keys, with one
   query per store for each round of needs (a charge's request, then its
   account); the accounts it wrote or read before are kept in its own cache,
   exactly as committed, and fast-forwarded in that same query;
3. lets each command decide in arrival order on that in-memory state: two
   charges on one account see each other; a refused command's changes are
   undone (each aggregate it changed is rebuilt from the store and the
   accepted commands' events), so the next one never sees them; a command
   with the key of one accepted earlier in the batch gets that one's answer
   (``IdempotencyKeyReusedError`` when its input differs);
4. appends the events of every accepted command, with their receipts, in
   **one** transaction (``WritePathApplication.save_events``), each command's
   events after the previous one's, so positions follow arrival order; each
   caller gets its own answer and the position of its last event (of the
   batch's last event, when it changed nothing);
5. when the append meets another writer's events (``IntegrityError``), gives
   nothing to anyone but "again": each caller then runs its command through
   ``cycle.run`` (decide on fresh state, bounded retries), so a command's
   domain refusal never fails the others and none is written twice; a store
   that cannot be reached fails the batch's commands with
   ``StoreUnavailableError``.

A command's ``decide`` reads aggregates only through ``Ledger._load``, which
answers from the batch's working set (``WORKING``) while the writer decides:
an aggregate not named in ``needs`` is loaded there on first use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from time import monotonic
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from ledger.aggregates import CommandReceipt, receipt_id_for
from ledger.commands import cycle
from ledger.errors import IdempotencyKeyReusedError, StoreUnavailableError
from ledger.permissions import authorize
from ledger.persistence.library import project, select_events_after, select_last_snapshots
from ledger.values import Actor

if TYPE_CHECKING:
    from ledger.application import Ledger

#: The most commands one batch decides and appends.
MAX_BATCH = 64
#: How long the writer waits for company, when the last batch had some, in seconds.
COMPANY_WAIT_S = 0.001
#: Rounds of ``needs`` loaded before deciding (a charge needs two).
MAX_ROUNDS = 3
#: Accounts the writer keeps as committed (each a few hundred bytes).
CACHE_SIZE = 10_000
#: Batch sizes remembered for ``Batcher.sizes``.
SIZES_KEPT = 10_000


def _held_lock() -> Any:
    lock = threading.Lock()
    lock.acquire()
    return lock


class _Retry(Exception):
    """The batch met another writer: run the command alone (``cycle.run``)."""


@dataclass(eq=False)
class _Entry:
    """One caller's command, and its answer once the writer has it."""

    command: cycle.Command[Any]
    actor: Actor
    key: str | None
    digest: str
    #: Held until the writer wakes the caller (done, or its turn to write): a
    #: plain lock, released once per wait, costs far less than an ``Event``.
    gate: Any = field(default_factory=_held_lock)
    lead: bool = False
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    #: The entry of this batch whose answer this one repeats (same key).
    replay_of: _Entry | None = None
    #: Where this entry's events end in the batch's append (0: it has none).
    end: int = 0
    #: Answered by a receipt already stored.
    replayed: bool = False

    @property
    def receipt_id(self) -> UUID | None:
        return None if self.key is None else receipt_id_for(str(self.actor), self.key)


class _Slot:
    """An aggregate of the working set: as loaded, and the batch's accepted events."""

    __slots__ = ("accepted", "aggregate", "base_version", "snapshots")

    def __init__(self, aggregate: Aggregate | None, snapshots: bool) -> None:
        self.aggregate = aggregate
        self.base_version = None if aggregate is None else aggregate.version
        self.snapshots = snapshots
        self.accepted: list[Any] = []


class WorkingSet:
    """The aggregates a batch decides on, loaded together, changed in memory."""

    def __init__(self, ledger: Ledger, cache: OrderedDict[UUID, Aggregate]) -> None:
        self.ledger = ledger
        self.cache = cache
        self.slots: dict[UUID, _Slot] = {}
        #: The ids the command deciding now has read.
        self.touched: list[UUID] = []

    def get(self, aggregate_id: UUID, snapshots: bool) -> Aggregate | None:
        """The aggregate as the batch left it so far (``Ledger._load``)."""
        slot = self.slots.get(aggregate_id)
        if slot is None:
            self.load({aggregate_id: snapshots})
            slot = self.slots[aggregate_id]
        self.touched.append(aggregate_id)
        return slot.aggregate

    def load(self, needs: dict[UUID, bool]) -> None:
        """Load ``needs`` (id: whether its type has snapshots) not loaded yet:
        one query for the snapshots of those neither cached nor loaded, one for
        the events of all of them (the cached ones': only newer events)."""
        states: dict[UUID, Any] = {}
        after: dict[UUID, int] = {}
        unsnapped: list[UUID] = []
        for aggregate_id, snapshots in needs.items():
            cached = self.cache.get(aggregate_id)
            if cached is not None:
                states[aggregate_id] = cached
                after[aggregate_id] = cached.version
            elif snapshots and self.ledger.snapshots is not None:
                unsnapped.append(aggregate_id)
            else:
                after[aggregate_id] = 0
        if unsnapped:
            assert self.ledger.snapshots is not None
            store = self.ledger.snapshots
            for stored in select_last_snapshots(store.recorder, unsnapped):
                snapshot: Any = store.mapper.to_domain_event(stored)
                states[snapshot.originator_id] = snapshot.mutate(None)
            for aggregate_id in unsnapped:
                found = states.get(aggregate_id)
                after[aggregate_id] = 0 if found is None else found.version
        to_domain_event = self.ledger.events.mapper.to_domain_event
        for stored in select_events_after(self.ledger.events.recorder, after):
            event: Any = to_domain_event(stored)
            states[event.originator_id] = event.mutate(states.get(event.originator_id))
        for aggregate_id, snapshots in needs.items():
            self.slots[aggregate_id] = _Slot(states.get(aggregate_id), snapshots)

    def accept(self, aggregates: Sequence[Aggregate]) -> list[Any]:
        """The pending events of a command's ``aggregates``, now the batch's;
        any other aggregate it read and changed (it should not) is undone."""
        events: list[Any] = []
        for aggregate in aggregates:
            collected = aggregate.collect_events()
            slot = self.slots.get(aggregate.id)
            if slot is None:  # created by the command
                slot = self.slots[aggregate.id] = _Slot(None, False)
            slot.aggregate = aggregate
            slot.accepted.extend(collected)
            events.extend(collected)
        returned = {a.id for a in aggregates}
        self.undo(i for i in self.touched if i not in returned)
        self.touched = []
        return events

    def undo(self, ids: Iterable[UUID]) -> None:
        """Rebuild each of ``ids`` that has changes of a command not accepted:
        as loaded (from the store), then the batch's accepted events."""
        for aggregate_id in dict.fromkeys(ids):
            slot = self.slots[aggregate_id]
            if slot.aggregate is None or not slot.aggregate.collect_events():
                continue
            self.cache.pop(aggregate_id, None)
            base = None
            if slot.base_version is not None:
                base = self.ledger._load(
                    aggregate_id, version=slot.base_version, snapshots=slot.snapshots
                )
            slot.aggregate = project(base, slot.accepted) if slot.accepted or base else None
        self.touched = []

    def aggregates(self) -> dict[UUID, Aggregate]:
        return {i: s.aggregate for i, s in self.slots.items() if s.aggregate is not None}


#: The working set of the batch this thread decides, if any (read by ``Ledger._load``).
WORKING: ContextVar[WorkingSet | None] = ContextVar("ledger_working_set", default=None)


class Batcher:
    """The queue of one ``Ledger``'s commands, and its one writer at a time."""

    def __init__(self, ledger: Ledger, *, max_batch: int = MAX_BATCH) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: deque[_Entry] = deque()
        self._writing = False
        self._last_size = 1
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        #: The sizes of the latest batches (``SIZES_KEPT``), for ``make bench``.
        self.sizes: deque[int] = deque(maxlen=SIZES_KEPT)

    def waiting(self) -> int:
        """How many commands wait for the writer now."""
        with self._cond:
            return len(self._queue)

    def run(
        self, command: cycle.Command[cycle.R], actor: Actor, idempotency_key: str | None
    ) -> cycle.R:
        """``cycle.run``'s answer to ``command``, decided and appended with the
        commands of other threads waiting at the same time."""
        authorize(actor, command.action)
        digest = ""
        if idempotency_key is not None:
            cycle.check_key(idempotency_key)
            digest = cycle.fingerprint(command)
        entry = _Entry(command, actor, idempotency_key, digest)
        with self._cond:
            self._queue.append(entry)
            if not self._writing:
                self._writing = entry.lead = True
            self._cond.notify()
        # The writer always finishes its batch: every error is handed to the
        # batch's callers, and its own waits are bounded (pool, lock timeout).
        # A caller waits on its gate, released once when it is done or when
        # it is its turn to write (then it is not done: a batch is written by
        # its first waiting caller, which never waits on its own gate).
        while not entry.done:
            if entry.lead:
                entry.lead = False
                self._write_one_batch(entry)
                continue
            entry.gate.acquire()
        if isinstance(entry.error, _Retry):
            return cycle.run(self.ledger, command, actor, idempotency_key)
        if entry.error is not None:
            raise entry.error
        result: cycle.R = entry.result
        return result

    # --- the writer ---------------------------------------------------------------

    def _write_one_batch(self, writer: _Entry) -> None:
        batch = self._take()
        try:
            self._decide_and_append(batch)
        except BaseException as error:  # handed to the callers, who raise it
            for entry in batch:
                # Not a refusal, nor the answer of a receipt stored before.
                if entry.error is None and not entry.replayed:
                    entry.result, entry.error = None, error
        for entry in batch:
            entry.done = True
        with self._cond:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                if successor is not writer:
                    successor.gate.release()
            else:
                self._writing = False
        for entry in batch:
            if entry is not writer:
                entry.gate.release()

    def _take(self) -> list[_Entry]:
        with self._cond:
            target = min(self._last_size, self.max_batch)
            deadline = monotonic() + COMPANY_WAIT_S
            while len(self._queue) < target:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(len(self._queue), self.max_batch)
            batch = [self._queue.popleft() for _ in range(n)]
        self._last_size = len(batch)
        self.sizes.append(len(batch))
        return batch

    def _decide_and_append(self, batch: list[_Entry]) -> None:
        working = WorkingSet(self.ledger, self._cache)
        token = WORKING.set(working)
        try:
            try:
                self._load_needs(working, batch)
                events = self._decide_each(working, batch)
            finally:
                WORKING.reset(token)
            self._append(working, batch, events)
        except IntegrityError:
            # Another process wrote one of these streams: every command is
            # decided again alone, on fresh state, by its own caller.
            self._forget(working)
            for entry in batch:
                if entry.error is None and not entry.replayed:
                    entry.result, entry.error = None, _Retry()
        except (OperationalError, InterfaceError) as e:
            self._forget(working)
            raise StoreUnavailableError(f"the event store is unavailable: {e}") from e
        except BaseException:
            self._forget(working)
            raise

    def _load_needs(self, working: WorkingSet, batch: list[_Entry]) -> None:
        needs: dict[UUID, bool] = {}
        for entry in batch:
            if entry.receipt_id is not None:
                needs[entry.receipt_id] = False
        for _ in range(MAX_ROUNDS):
            loaded = {i: s.aggregate for i, s in working.slots.items()}
            for entry in batch:
                for aggregate_id, snapshots in entry.command.needs(loaded):
                    if aggregate_id not in working.slots:
                        needs[aggregate_id] = snapshots
            if not needs:
                return
            working.load(needs)
            needs = {}

    def _decide_each(self, working: WorkingSet, batch: list[_Entry]) -> list[Any]:
        events: list[Any] = []
        receipts: dict[UUID, _Entry] = {}
        for entry in batch:
            try:
                if entry.receipt_id is not None and self._replayed(working, entry, receipts):
                    continue
                at = self.ledger.clock()
                aggregates, result = entry.command.decide(self.ledger, entry.actor, at)
            except (OperationalError, InterfaceError):
                raise
            except Exception as error:  # the command's refusal: its own answer
                entry.error = error
                working.undo(working.touched)
                continue
            accepted = working.accept(aggregates)
            if entry.key is not None:
                receipt = cycle.receipt_for(
                    str(entry.actor),
                    entry.key,
                    entry.command.action,
                    entry.digest,
                    result,
                    entry.actor,
                    at,
                )
                accepted += working.accept([receipt])
                assert entry.receipt_id is not None
                receipts[entry.receipt_id] = entry
            events += accepted
            entry.result = result
            entry.end = len(events) if accepted else 0
        return events

    def _replayed(self, working: WorkingSet, entry: _Entry, receipts: dict[UUID, _Entry]) -> bool:
        """Whether ``entry`` is answered by a receipt (stored, or of this batch)."""
        assert entry.receipt_id is not None and entry.key is not None
        receipt = working.get(entry.receipt_id, False)
        working.touched = []
        if receipt is None:
            return False
        assert isinstance(receipt, CommandReceipt)
        if receipt.fingerprint != entry.digest:
            raise IdempotencyKeyReusedError(entry.key)
        first = receipts.get(entry.receipt_id)
        if first is not None:
            entry.replay_of = first
            return True
        entry.result = cycle.recorded_answer(self.ledger, entry.receipt_id, receipt)
        entry.replayed = True
        return True

    def _append(self, working: WorkingSet, batch: list[_Entry], events: list[Any]) -> None:
        positions: list[int] = []
        if events:
            recordings = self.ledger.save_events(events, working.aggregates())
            positions = [r.notification.id for r in recordings]
        newest = positions[-1] if positions else self.ledger.position()
        for entry in batch:
            if entry.error is None and entry.replay_of is None and not entry.replayed:
                position = positions[entry.end - 1] if entry.end else newest
                entry.result = replace(entry.result, position=position)
        for entry in batch:
            first = entry.replay_of
            if first is not None:
                entry.result, entry.error = first.result, first.error
        self._remember(working)

    def _remember(self, working: WorkingSet) -> None:
        """Keep the batch's accounts (the types with snapshots: long streams,
        loaded by every charge), now committed, for the next batches. Others
        are read from the store each time, as without the batcher: a request
        is charged once, and keeping thousands of them only costs memory and
        the garbage collector's time."""
        for aggregate_id, slot in working.slots.items():
            if slot.snapshots and slot.aggregate is not None:
                self._cache[aggregate_id] = slot.aggregate
                self._cache.move_to_end(aggregate_id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def _forget(self, working: WorkingSet) -> None:
        for aggregate_id in working.slots:
            self._cache.pop(aggregate_id, None)
