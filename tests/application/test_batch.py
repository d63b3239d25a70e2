"""The batcher (``ledger.commands.batch``, ``LEDGER_BATCH_COMMANDS``), on
SQLite and PostgreSQL: commands that wait together are decided in arrival
order on one in-memory state and appended in one transaction, and each
caller gets the answer it would have had alone.

Each test queues its commands, one thread each and in a known order, behind
a batch whose append is held, so that the next batch decides them all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, OperationalError

from ledger.aggregates import CommandReceipt, receipt_id_for
from ledger.commands import Command
from ledger.commands.results import AdjustBalanceResult, ChargeResult
from ledger.errors import (
    IdempotencyKeyReusedError,
    InsufficientCreditsError,
    InvalidInputError,
    StoreUnavailableError,
)
from ledger.permissions import Action
from ledger.values import Actor
from tests.support.domain import FINANCE, HELPDESK, SPECIALIST
from tests.support.ledger import (
    account_events,
    funded_customer,
    movement_sum,
    new_customer_id,
    new_event_types,
    open_request,
)

if TYPE_CHECKING:
    from ledger.application import Ledger

TIMEOUT_S = 30

Call = Callable[[], Any]


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "the batcher did not get there"
        time.sleep(0.001)


Append = Callable[..., Any]


@contextmanager
def _held(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, after: Callable[[Append], Append] | None
) -> Iterator[threading.Event]:
    """A batch (of a command opening an account) whose append waits for the
    event yielded; the batches after it append at once, through ``after``'s
    wrapper of the real append when given."""
    assert ledger.batcher is not None
    real = ledger.save_events
    then = real if after is None else after(real)
    release = threading.Event()
    first = [True]

    def save_events(*args: Any, **kwargs: Any) -> Any:
        if first:
            first.clear()
            release.wait(TIMEOUT_S)
            return real(*args, **kwargs)
        return then(*args, **kwargs)

    monkeypatch.setattr(ledger, "save_events", save_events)
    taken = len(ledger.batcher.sizes)
    blocker = threading.Thread(
        target=ledger.open_account, args=(new_customer_id(), "Blocker"), kwargs={"actor": HELPDESK}
    )
    blocker.start()
    _until(lambda: len(ledger.batcher.sizes) > taken)  # type: ignore[union-attr]
    try:
        yield release
    finally:
        release.set()
        blocker.join(TIMEOUT_S)


def in_one_batch(
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    calls: Sequence[Call],
    after: Callable[[Append], Append] | None = None,
) -> list[Any]:
    """Each call's answer (or the error it raised), the calls queued in this
    order and decided in one batch (appended through ``after``'s wrapper)."""
    assert ledger.batcher is not None
    answers: list[Any] = [None] * len(calls)

    def call(n: int) -> None:
        try:
            answers[n] = calls[n]()
        except Exception as error:  # the answer under test
            answers[n] = error

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(calls))]
    with _held(ledger, monkeypatch, after):
        for n, thread in enumerate(threads):
            thread.start()
            _until(lambda n=n: ledger.batcher.waiting() == n + 1)  # type: ignore[union-attr,misc]
        sizes = len(ledger.batcher.sizes)
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert list(ledger.batcher.sizes)[sizes] == len(calls), "not one batch"
    return answers


def charge(ledger: Ledger, request_id: UUID, key: str | None = None) -> Call:
    return lambda: ledger.charge(request_id, actor=SPECIALIST, idempotency_key=key)


def test_charges_on_one_account_in_one_batch_see_each_other(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 45)
    first, second, third = (open_request(ledger, customer_id) for _ in range(3))
    cheap = open_request(ledger, customer_id, "functionality_explanation")

    answers = in_one_batch(
        ledger,
        monkeypatch,
        [
            charge(ledger, first),
            charge(ledger, second),
            charge(ledger, third),
            charge(ledger, cheap),
        ],
    )

    one, two, refused, five = answers
    assert (one.charged, one.balance) == (20, 25)
    assert (two.charged, two.balance) == (20, 5)
    assert isinstance(refused, InsufficientCreditsError)
    assert (refused.balance, refused.price) == (5, 20)
    assert (five.charged, five.balance) == (5, 0)
    assert ledger.get_account(customer_id).balance == 0 == movement_sum(ledger, customer_id)
    assert ledger.get_request(third).status != "charged"


def test_each_caller_gets_the_position_of_its_own_last_event_in_arrival_order(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 100)
    requests = [open_request(ledger, customer_id) for _ in range(4)]

    answers = in_one_batch(ledger, monkeypatch, [charge(ledger, r) for r in requests])

    positions = [a.position for a in answers]
    assert positions == sorted(positions) and len(set(positions)) == 4
    for answer in answers:
        # The request's answer and the account's debit, the last at the position.
        stored = ledger.recorder.positions_of(answer.request_id)  # type: ignore[attr-defined]
        assert max(stored.values()) in (answer.position, answer.position - 1)
    assert new_event_types(ledger, positions[0] - 2)[:2] == ["AnswerCharged", "CreditsCharged"]


def test_one_key_twice_in_one_batch_writes_once_and_answers_the_first_result(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id = open_request(ledger, customer_id)
    key = f"key-{uuid4().hex}"

    first, second = in_one_batch(
        ledger, monkeypatch, [charge(ledger, request_id, key), charge(ledger, request_id, key)]
    )

    assert first == second and isinstance(first, ChargeResult)
    assert (first.charged, first.balance) == (20, 80)
    receipt = list(ledger.events.get(receipt_id_for(str(SPECIALIST), key)))
    assert [type(e) for e in receipt] == [CommandReceipt.CommandRecorded]
    assert ledger.get_account(customer_id).balance == 80 == movement_sum(ledger, customer_id)
    # A later retry answers the same, at the same position.
    assert ledger.charge(request_id, actor=SPECIALIST, idempotency_key=key) == first


def test_one_key_with_other_input_in_one_batch_is_refused(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 100)
    request_id, other = open_request(ledger, customer_id), open_request(ledger, customer_id)
    key = f"key-{uuid4().hex}"

    first, second = in_one_batch(
        ledger, monkeypatch, [charge(ledger, request_id, key), charge(ledger, other, key)]
    )

    assert isinstance(first, ChargeResult)
    assert isinstance(second, IdempotencyKeyReusedError)
    assert ledger.get_request(other).status != "charged"
    assert ledger.get_account(customer_id).balance == 80


def test_a_refused_key_leaves_it_free_for_the_next_command_of_the_batch(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 0)
    request_id = open_request(ledger, customer_id)
    key = f"key-{uuid4().hex}"
    top_up = lambda: ledger.adjust_balance(customer_id, 20, "goodwill", actor=FINANCE)  # noqa: E731

    refused, _, charged = in_one_batch(
        ledger,
        monkeypatch,
        [charge(ledger, request_id, key), top_up, charge(ledger, request_id, key)],
    )

    assert isinstance(refused, InsufficientCreditsError)
    assert isinstance(charged, ChargeResult) and charged.balance == 0


@dataclass(frozen=True)
class _AdjustThenRefuse(Command[AdjustBalanceResult]):
    """Changes the account, then refuses: what no command may leave behind."""

    action = Action.ADJUST_BALANCE

    customer_id: str

    def decide(
        self, ledger: Ledger, actor: Actor, at: datetime
    ) -> tuple[Sequence[Aggregate], AdjustBalanceResult]:
        account = ledger._account(self.customer_id)
        account.adjust(1000, "never stored", actor=actor, at=at)
        raise InvalidInputError("credits", "refused after the change")


def test_a_refused_command_leaves_no_trace_for_the_next_one(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 30)
    request_id, other = open_request(ledger, customer_id), open_request(ledger, customer_id)
    before = len(account_events(ledger, customer_id))

    charged, refused, insufficient = in_one_batch(
        ledger,
        monkeypatch,
        [
            charge(ledger, request_id),
            lambda: ledger.execute(_AdjustThenRefuse(customer_id), actor=FINANCE),
            charge(ledger, other),
        ],
    )

    assert isinstance(charged, ChargeResult) and charged.balance == 10
    assert isinstance(refused, InvalidInputError)
    assert isinstance(insufficient, InsufficientCreditsError) and insufficient.balance == 10
    assert len(account_events(ledger, customer_id)) == before + 1
    # The writer's own copy of the account was not left changed either.
    with pytest.raises(InsufficientCreditsError):
        ledger.charge(other, actor=SPECIALIST)
    assert ledger.get_account(customer_id).balance == 10 == movement_sum(ledger, customer_id)


def test_accounts_opened_twice_in_one_batch_are_opened_once(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = new_customer_id()
    open_it = lambda: ledger.open_account(customer_id, "Acme", actor=HELPDESK)  # noqa: E731

    first, second = in_one_batch(ledger, monkeypatch, [open_it, open_it])

    assert first.customer_id == customer_id
    assert type(second).__name__ == "AccountAlreadyExistsError"
    assert len(account_events(ledger, customer_id)) == 1


def _failing_once(error: Exception) -> Callable[[Append], Append]:
    def wrap(real: Append) -> Append:
        failed: list[int] = []

        def append(*args: Any, **kwargs: Any) -> Any:
            if not failed:
                failed.append(1)
                raise error
            return real(*args, **kwargs)

        return append

    return wrap


def test_a_batch_that_meets_another_writer_is_decided_again_command_by_command(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 30)
    requests = [open_request(ledger, customer_id) for _ in range(2)]

    answers = in_one_batch(
        ledger,
        monkeypatch,
        [charge(ledger, r) for r in requests],
        after=_failing_once(IntegrityError("another writer came first")),
    )

    # Each caller decided again alone (in any order): one charge, one refusal.
    assert sorted(type(a).__name__ for a in answers) == [
        "ChargeResult",
        "InsufficientCreditsError",
    ]
    assert ledger.get_account(customer_id).balance == 10 == movement_sum(ledger, customer_id)


def test_a_batch_whose_store_is_unreachable_fails_every_command_and_stores_nothing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = funded_customer(ledger, 100)
    requests = [open_request(ledger, customer_id) for _ in range(2)]

    answers = in_one_batch(
        ledger,
        monkeypatch,
        [charge(ledger, r) for r in requests],
        after=_failing_once(OperationalError("the server closed the connection")),
    )

    assert all(isinstance(a, StoreUnavailableError) for a in answers)
    assert ledger.get_account(customer_id).balance == 100 == movement_sum(ledger, customer_id)
    # Nothing of the failed batch was kept in memory: the next charges land.
    assert ledger.charge(requests[0], actor=SPECIALIST).balance == 80
    assert ledger.charge(requests[1], actor=SPECIALIST).balance == 60
