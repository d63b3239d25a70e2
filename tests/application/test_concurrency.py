"""Concurrent writers on SQLite and PostgreSQL (POLICY.md: the balance is
never negative; the charge is one atomic append). Threads of this process
and a second process race to spend one balance; two writers that loaded the
same request race to charge it, and exactly one wins. Each test runs with
the batcher (``LEDGER_BATCH_COMMANDS``: this process's threads share batches,
and a batch that meets the second process's write is decided again command
by command) and without it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from ledger.aggregates import CustomerAccount, SupportRequest, account_id_for
from ledger.application import Ledger
from ledger.commands.results import ChargeResult
from ledger.errors import (
    AlreadyChargedError,
    ConcurrencyConflictError,
    InsufficientCreditsError,
    InvoiceAlreadyPaidError,
)
from tests.application.conftest import BOTH_WAYS, LedgerFactory
from tests.support.domain import FINANCE, SPECIALIST
from tests.support.ledger import account_events, funded_customer, movement_sum, open_request

BALANCE = 100
PRICE = 20  # an installation
REQUESTS = 12
AFFORDABLE = BALANCE // PRICE  # 5
THREADS = 3
TIMEOUT_S = 60

pytestmark = BOTH_WAYS

# A second process: its own interpreter, its own Ledger on the same database.
SECOND_PROCESS = """
import json, sys
from uuid import UUID
from ledger.bootstrap import open_ledger
from ledger.errors import ConcurrencyConflictError, InsufficientCreditsError
from ledger.settings import LedgerSettings
from ledger.values import Actor, Role

url, request_ids = sys.argv[1], [UUID(i) for i in json.loads(sys.argv[2])]
ledger = open_ledger(LedgerSettings(database_url=url, support_hours="24/7"))
ledger.position()  # connected before the start signal
print("ready", flush=True)
sys.stdin.readline()
outcomes = {}
for request_id in request_ids:
    try:
        ledger.charge(request_id, actor=Actor(Role.SPECIALIST, "second-process"))
        outcomes[str(request_id)] = "charged"
    except InsufficientCreditsError:
        outcomes[str(request_id)] = "insufficient"
    except ConcurrencyConflictError:
        outcomes[str(request_id)] = "conflict"
    except Exception as error:  # reported to the test, which fails on it
        outcomes[str(request_id)] = f"{type(error).__name__}: {error}"
ledger.close()
print(json.dumps(outcomes), flush=True)
"""


def _charge_each(ledger: Ledger, request_ids: list[UUID], outcomes: dict[UUID, str]) -> None:
    for request_id in request_ids:
        try:
            ledger.charge(request_id, actor=SPECIALIST)
            outcomes[request_id] = "charged"
        except InsufficientCreditsError as error:
            assert (error.balance, error.price) == (0, PRICE)
            outcomes[request_id] = "insufficient"
        except ConcurrencyConflictError:
            outcomes[request_id] = "conflict"
        except Exception as error:  # reported to the test, which fails on it
            outcomes[request_id] = f"{type(error).__name__}: {error}"


def _collide(monkeypatch: pytest.MonkeyPatch, writers: list[Ledger], hold: int) -> list[int]:
    """Hold the first ``hold`` appends of ``writers`` until all of them have
    decided, so that they collide; answer the list of refused appends
    (another writer came first), which grows as the race goes on."""
    conflicts: list[int] = []
    start_together = threading.Barrier(hold, timeout=TIMEOUT_S)
    lock = threading.Lock()
    calls: list[int] = []
    for writer in writers:
        # ``save`` appends one command, ``save_events`` one batch of them.
        for name in ("save", "save_events"):
            real = getattr(writer, name)

            def append(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
                with lock:
                    calls.append(1)
                    held = len(calls) <= hold
                if held:
                    start_together.wait()
                try:
                    return _real(*args, **kwargs)
                except IntegrityError:
                    conflicts.append(1)
                    raise

            monkeypatch.setattr(writer, name, append)
    return conflicts


def _batch_together(monkeypatch: pytest.MonkeyPatch, ledger: Ledger, waiting: int) -> None:
    """Hold the first batch's append until ``waiting`` commands queue behind
    it (at most ``TIMEOUT_S``), so that the next batch decides them together."""
    real = ledger.save_events
    first = [True]

    def save_events(*args: Any, **kwargs: Any) -> Any:
        if first:
            first.clear()
            deadline = time.monotonic() + TIMEOUT_S
            assert ledger.batcher is not None
            while ledger.batcher.waiting() < waiting and time.monotonic() < deadline:
                time.sleep(0.001)
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "save_events", save_events)


def test_racing_writers_charge_exactly_the_affordable_requests(
    make_ledger: LedgerFactory,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    batch_commands: bool,
) -> None:
    ledger = make_ledger()
    customer_id = funded_customer(ledger, BALANCE)
    request_ids = [open_request(ledger, customer_id, "installation") for _ in range(REQUESTS)]
    workers = THREADS + 1
    shares = [request_ids[i::workers] for i in range(workers)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SECOND_PROCESS,
            database_url,
            json.dumps([str(i) for i in shares[-1]]),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().strip() == "ready"
        if batch_commands:
            # This process's threads share batches: they never collide with
            # each other, only with the second process.
            _batch_together(monkeypatch, ledger, THREADS - 1)
        conflicts = _collide(monkeypatch, [ledger], hold=1 if batch_commands else THREADS)
        outcomes: dict[UUID, str] = {}
        threads = [
            threading.Thread(target=_charge_each, args=(ledger, share, outcomes))
            for share in shares[:THREADS]
        ]
        process.stdin.write("go\n")
        process.stdin.flush()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT_S)
        remote, _ = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0
    outcomes.update({UUID(k): v for k, v in json.loads(remote).items()})

    # Every request has an outcome; exactly the affordable ones were charged;
    # the retries resolved every collision (none gave up).
    assert set(outcomes) == set(request_ids)
    assert Counter(outcomes.values()) == {
        "charged": AFFORDABLE,
        "insufficient": REQUESTS - AFFORDABLE,
    }
    if batch_commands:
        assert ledger.batcher is not None
        assert max(ledger.batcher.sizes) >= THREADS - 1, "no batch decided two charges"
    else:
        assert len(conflicts) >= THREADS - 1, "the writers of this process did not collide"
    charged = {rid for rid, outcome in outcomes.items() if outcome == "charged"}
    for request_id in request_ids:
        view = ledger.get_request(request_id)
        assert (view.status == "charged") is (request_id in charged)

    # The balance never went below zero, and every movement follows the last.
    events = account_events(ledger, customer_id)
    debits = [e for e in events if isinstance(e, CustomerAccount.CreditsCharged)]
    assert {e.request_id for e in debits} == charged
    balance = 0
    for event in events[1:]:
        balance += event.amount
        assert event.balance_after == balance >= 0
    account = ledger.get_account(customer_id)
    assert account.balance == BALANCE - AFFORDABLE * PRICE == 0
    assert account.balance == movement_sum(ledger, customer_id)
    assert (
        account.balance == account.purchased + account.adjusted - account.charged + account.refunded
    )


def test_two_writers_load_the_same_request_and_only_one_charge_lands(
    make_ledger: LedgerFactory,
) -> None:
    first, second = make_ledger(), make_ledger()
    customer_id = funded_customer(first, BALANCE)
    request_id = open_request(first, customer_id, "installation")
    account_id = account_id_for(customer_id)
    loaded = [
        (writer, writer.repository.get(request_id), writer.repository.get(account_id))
        for writer in (first, second)
    ]
    for writer, request, account in loaded:
        request.charge(account, writer.calendar, actor=SPECIALIST, at=writer.clock())

    (_, request, account), (_, late_request, late_account) = loaded
    first.save(request, account)
    with pytest.raises(IntegrityError):
        second.save(late_request, late_account)

    answers = [
        e for e in second.events.get(request_id) if isinstance(e, SupportRequest.AnswerCharged)
    ]
    assert len(answers) == 1
    assert second.get_account(customer_id).balance == BALANCE - PRICE
    assert movement_sum(second, customer_id) == BALANCE - PRICE


def test_two_ledgers_charging_one_request_at_once_charge_it_once(
    make_ledger: LedgerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_ledger(), make_ledger()
    customer_id = funded_customer(first, BALANCE)
    request_id = open_request(first, customer_id, "installation")
    conflicts = _collide(monkeypatch, [first, second], hold=2)  # both decide, then append
    results: list[Any] = []

    def charge(writer: Ledger) -> None:
        try:
            results.append(writer.charge(request_id, actor=SPECIALIST))
        except AlreadyChargedError as error:
            results.append(error)

    threads = [threading.Thread(target=charge, args=(w,)) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S)

    assert sorted(type(r).__name__ for r in results) == ["AlreadyChargedError", "ChargeResult"]
    assert len(conflicts) == 1  # the loser's append was refused, then it decided again
    [charged] = [r for r in results if isinstance(r, ChargeResult)]
    assert (charged.charged, charged.balance) == (PRICE, BALANCE - PRICE)
    assert first.get_account(customer_id).balance == BALANCE - PRICE
    assert movement_sum(first, customer_id) == BALANCE - PRICE


def test_two_ledgers_paying_one_invoice_at_once_add_its_credits_once(
    make_ledger: LedgerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_ledger(), make_ledger()
    customer_id = funded_customer(first)
    invoice_id = first.issue_invoice(customer_id, package=160, actor=FINANCE).invoice_id
    conflicts = _collide(monkeypatch, [first, second], hold=2)
    results: list[Any] = []

    def pay(writer: Ledger, reference: str) -> None:
        try:
            results.append(writer.pay_invoice(invoice_id, reference, actor=FINANCE))
        except InvoiceAlreadyPaidError as error:
            results.append(error)

    threads = [
        threading.Thread(target=pay, args=(writer, f"bank-{n}"))
        for n, writer in enumerate((first, second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S)

    assert sorted(type(r).__name__ for r in results) == [
        "InvoiceAlreadyPaidError",
        "InvoiceChangeResult",
    ]
    assert len(conflicts) == 1
    assert first.get_account(customer_id).balance == 160 == movement_sum(first, customer_id)


def test_a_ledger_decides_on_what_another_ledger_wrote_since_it_cached_the_account(
    make_ledger: LedgerFactory,
) -> None:
    # Each API process keeps accounts in memory (PostgreSQL): a load must still
    # see every event another process appended since.
    first, second = make_ledger(), make_ledger()
    customer_id = funded_customer(first, PRICE)
    cheap = open_request(first, customer_id, "installation")
    assert first.get_account(customer_id).balance == PRICE  # now in first's cache
    second.adjust_balance(customer_id, -PRICE, "drained elsewhere", actor=FINANCE)

    assert first.get_account(customer_id).balance == 0
    with pytest.raises(InsufficientCreditsError):
        first.charge(cheap, actor=SPECIALIST)
    assert movement_sum(first, customer_id) == 0
