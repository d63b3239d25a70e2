"""Processes, clients and load for the reliability suite.

- ``Service``: a ``ledger serve`` or ``ledger project`` subprocess of the
  suite's own, on loopback, with its output in a file; stopped, or killed,
  by its own PID only.
- ``Load``: client threads sending charges, purchases (issue + pay) and
  refunds (dispute + refund) on shared accounts, spread over the API
  processes, some with Idempotency-Key retries; every answer is recorded as
  acknowledged (2xx), refused (4xx), unavailable (503) or unknown (no answer).
- ``verify``: what must hold afterwards, from the HTTP API, the application
  and the read models; returns the figures found.

Every loop here is bounded in count and in time.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from ledger.application import Ledger

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {
    "helpdesk": "rel-helpdesk-Tk9x2Lq7",
    "specialist": "rel-specialist-Vb3n8Pw1",
    "finance": "rel-finance-Qm4z6Hs0",
    "admin": "rel-admin-Jd5c1Ry8",
}
API_KEYS = ",".join(f"{role}:{role[:2]}-key:{token}" for role, token in TOKENS.items())
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
CLIENT_TIMEOUT_S = 15.0
CATCH_UP_TIMEOUT_S = 60.0
PRICE = 25  # a store update 4.4.1 -> 4.4.4
PACKAGE = 80
MAX_PAGES = 1000


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ledger_command() -> list[str]:
    script = Path(sys.executable).parent / "ledger"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ledger.cli import main; main()"]


SECRET_KEY = "reliability-console-secret-0123456789abcdef"


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(
        LEDGER_DATABASE_URL=database_url,
        LEDGER_API_KEYS=API_KEYS,
        LEDGER_SUPPORT_HOURS="24/7",
        LEDGER_IN_PROCESS_PROJECTIONS="false",
        LEDGER_SECRET_KEY=SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Service:
    """One subprocess of the suite's own: ``ledger serve`` or ``ledger project``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*ledger_command(), *self.args],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``; only this PID."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind in the process."""
        process, self.process = self.process, None
        assert process is not None and process.poll() is None, f"{self.name} is not running"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class ApiProcess(Service):
    def __init__(self, name: str, database_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        super().__init__(name, args, service_env(database_url), log_dir / f"{name}.log")

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + START_TIMEOUT_S
        for _ in range(int(START_TIMEOUT_S / 0.1) + 1):
            assert self.alive(), f"{self.name} exited:\n{self.output()}"
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start:\n{self.output()}")


class Worker(Service):
    def __init__(self, database_url: str, log_dir: Path) -> None:
        super().__init__("worker", ["project"], service_env(database_url), log_dir / "worker.log")


@dataclass
class Cluster:
    """Two API processes and one read-model worker on one database."""

    database_url: str
    apis: list[ApiProcess]
    worker: Worker

    def logs(self) -> str:
        return "\n".join(s.output() for s in [*self.apis, self.worker])


@contextmanager
def cluster(database_url: str, log_dir: Path, apis: int = 2) -> Iterator[Cluster]:
    processes = [ApiProcess(f"api-{i + 1}", database_url, log_dir) for i in range(apis)]
    worker = Worker(database_url, log_dir)
    try:
        # The first start creates the tables; the others then find them.
        for service in processes:
            service.start()
        worker.start()
        yield Cluster(database_url, processes, worker)
    finally:
        for service in [*processes, worker]:
            service.stop()


# --- the load -------------------------------------------------------------------


@dataclass
class Record:
    """What the clients sent and what they were told; shared by the threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    charged: dict[UUID, tuple[str, int]] = field(default_factory=dict)  # request -> (customer, n)
    paid: dict[UUID, tuple[str, int]] = field(default_factory=dict)  # invoice -> (customer, n)
    refunded: dict[UUID, int] = field(default_factory=dict)  # request -> refunded in total
    opened: set[UUID] = field(default_factory=set)  # every request id ever created
    unknown: set[UUID] = field(default_factory=set)  # requests whose last command got no answer
    invoices_unknown: set[UUID] = field(default_factory=set)
    retries_same: int = 0
    retries_differ: list[str] = field(default_factory=list)
    latencies_s: list[tuple[float, float, int]] = field(default_factory=list)  # (t, s, status)
    max_latency_s: float = 0.0
    positions: list[int] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "outcomes": dict(self.outcomes),
            "statuses": dict(sorted(self.statuses.items())),
            "acknowledged": {
                "charges": len(self.charged),
                "purchases": len(self.paid),
                "refunds": len(self.refunded),
            },
            "idempotent_retries_same_answer": self.retries_same,
            "max_latency_s": round(self.max_latency_s, 2),
        }


class Unanswered(Exception):
    """No HTTP answer: a transport error or a time-out."""


class Load:
    """Client threads on shared accounts, spread over ``base_urls``."""

    def __init__(
        self,
        base_urls: list[str],
        accounts: list[str],
        *,
        seed: int = 7,
        retry_share: float = 0.3,
    ) -> None:
        self.base_urls = list(base_urls)
        self.accounts = accounts
        self.record = Record()
        self.seed = seed
        self.retry_share = retry_share
        self.started = time.monotonic()
        self._threads: list[threading.Thread] = []
        self.stop = threading.Event()
        self.errors: list[str] = []

    # One command over HTTP ------------------------------------------------------

    def _send(
        self,
        client: httpx.Client,
        kind: str,
        role: str,
        path: str,
        body: Any = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers = auth(role)
        if key is not None:
            headers["Idempotency-Key"] = key
        began = time.monotonic()
        with self.record.lock:
            self.record.sent[kind] += 1
        try:
            response = client.post(path, json=body, headers=headers)
        except httpx.TransportError as e:
            with self.record.lock:
                self.record.outcomes[f"{kind}:unanswered"] += 1
            raise Unanswered(str(e)) from e
        finally:
            spent = time.monotonic() - began
        status = response.status_code
        with self.record.lock:
            self.record.statuses[status] += 1
            self.record.latencies_s.append((began - self.started, spent, status))
            self.record.max_latency_s = max(self.record.max_latency_s, spent)
            self.record.outcomes[f"{kind}:{_outcome(status)}"] += 1
            if status < 300 and "position" in response.json():
                self.record.positions.append(int(response.json()["position"]))
        if status >= 400:
            ctype = response.headers.get("content-type", "")
            if not ctype.startswith("application/problem+json"):
                self.errors.append(f"{kind}: {status} not problem+json: {response.text[:200]}")
        if status >= 500 and status != 503:
            self.errors.append(f"{kind}: {status} {response.text[:300]}")
        return response

    # The three stories ----------------------------------------------------------

    def charge(self, client: httpx.Client, rng: random.Random, customer_id: str) -> UUID | None:
        body = {
            "customer_id": customer_id,
            "category": "store_update",
            "channel": "helpdesk",
            "subject": "load",
            "from_version": "4.4.1",
            "to_version": "4.4.4",
        }
        opened = self._send(client, "open", "helpdesk", "/v1/requests", body)
        if opened.status_code != 201:
            return None
        request_id = UUID(opened.json()["request_id"])
        with self.record.lock:
            self.record.opened.add(request_id)
        key = f"charge-{uuid.uuid4().hex}" if rng.random() < self.retry_share else None
        path = f"/v1/requests/{request_id}/charge"
        try:
            first = self._send(client, "charge", "specialist", path, key=key)
        except Unanswered:
            with self.record.lock:
                self.record.unknown.add(request_id)
            return None
        if first.status_code == 503:
            with self.record.lock:
                self.record.unknown.add(request_id)  # refused or not: the store decides
            return None
        if first.status_code != 200:
            return None
        with self.record.lock:
            self.record.charged[request_id] = (customer_id, int(first.json()["charged"]))
        if key is not None:
            self._retry(client, path, key, first)
        return request_id

    def _retry(self, client: httpx.Client, path: str, key: str, first: httpx.Response) -> None:
        """The same command with the same key, through another API process."""
        other = self._client_for(client)
        try:
            again = self._send(other, "charge-retry", "specialist", path, key=key)
        except Unanswered:
            return
        if again.status_code == 503:
            return
        with self.record.lock:
            if (again.status_code, again.json()) == (first.status_code, first.json()):
                self.record.retries_same += 1
            else:
                self.record.retries_differ.append(f"{first.text} then {again.text}")

    def purchase(self, client: httpx.Client, customer_id: str) -> None:
        issued = self._send(
            client,
            "issue",
            "finance",
            f"/v1/accounts/{customer_id}/invoices",
            {"package": PACKAGE},
        )
        if issued.status_code != 201:
            return
        invoice_id = UUID(issued.json()["invoice_id"])
        path = f"/v1/invoices/{invoice_id}/payment"
        try:
            paid = self._send(client, "pay", "finance", path, {"payment_ref": f"p-{invoice_id}"})
        except Unanswered:
            with self.record.lock:
                self.record.invoices_unknown.add(invoice_id)
            return
        if paid.status_code == 503:
            with self.record.lock:
                self.record.invoices_unknown.add(invoice_id)
        elif paid.status_code == 200:
            with self.record.lock:
                self.record.paid[invoice_id] = (customer_id, PACKAGE)

    def refund(self, client: httpx.Client, rng: random.Random, request_id: UUID) -> None:
        base = f"/v1/requests/{request_id}"
        disputed = self._send(client, "dispute", "helpdesk", f"{base}/dispute", {"reason": "load"})
        if disputed.status_code != 200:
            return
        credits = rng.choice([10, PRICE])
        try:
            refunded = self._send(
                client,
                "refund",
                "specialist",
                f"{base}/refund",
                {"credits": credits, "reason": "x"},
            )
        except Unanswered:
            with self.record.lock:
                self.record.unknown.add(request_id)
            return
        if refunded.status_code == 503:
            with self.record.lock:
                self.record.unknown.add(request_id)
        elif refunded.status_code == 200:
            with self.record.lock:
                self.record.refunded[request_id] = int(refunded.json()["refunded"])

    # Threads --------------------------------------------------------------------

    def _client_for(self, current: httpx.Client | None = None) -> httpx.Client:
        clients = self._clients_of_thread()
        choices = [c for c in clients if c is not current] or clients
        return random.choice(choices)

    def _clients_of_thread(self) -> list[httpx.Client]:
        clients: list[httpx.Client] = self._local.clients
        return clients

    def _run(self, index: int, duration_s: float, max_commands: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        self._local.clients = [
            httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) for url in self.base_urls
        ]
        mine: list[UUID] = []
        deadline = time.monotonic() + duration_s
        try:
            for _ in range(max_commands):
                if self.stop.is_set() or time.monotonic() >= deadline:
                    return
                client = rng.choice(self._local.clients)
                customer_id = rng.choice(self.accounts)
                try:
                    self._one(client, rng, customer_id, mine)
                except Unanswered:
                    time.sleep(0.05)  # the process is gone: do not spin
        except Exception as e:  # a failure of the test's own code: reported, not hidden
            self.errors.append(f"thread {index}: {e!r}")
        finally:
            for c in self._local.clients:
                c.close()

    def _one(
        self, client: httpx.Client, rng: random.Random, customer_id: str, mine: list[UUID]
    ) -> None:
        roll = rng.random()
        if roll < 0.12:
            self.purchase(client, customer_id)
        elif roll < 0.25 and mine:
            self.refund(client, rng, mine.pop(rng.randrange(len(mine))))
        else:
            charged = self.charge(client, rng, customer_id)
            if charged is not None:
                mine.append(charged)

    def start(self, threads: int, duration_s: float, max_commands: int = 5000) -> None:
        self._local = threading.local()
        self.started = time.monotonic()
        for i in range(threads):
            t = threading.Thread(target=self._run, args=(i, duration_s, max_commands), daemon=True)
            self._threads.append(t)
            t.start()

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "client threads did not finish"


def _outcome(status: int) -> str:
    if status < 300:
        return "acknowledged"
    if status == 503:
        return "unavailable"
    if status < 500:
        return f"refused-{status}"
    return f"error-{status}"


# --- setting up and checking ------------------------------------------------------


def open_accounts(base_url: str, count: int, credits: int) -> list[str]:
    """``count`` accounts, each with ``credits`` bought in packages of 80."""
    accounts = []
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for _ in range(count):
            customer_id = f"R-{uuid.uuid4().hex[:10]}"
            body = {"customer_id": customer_id, "name": "Reliability Ltd"}
            response = client.post("/v1/accounts", json=body, headers=auth("helpdesk"))
            assert response.status_code == 201, response.text
            for _ in range(credits // PACKAGE):
                issued = client.post(
                    f"/v1/accounts/{customer_id}/invoices",
                    json={"package": PACKAGE},
                    headers=auth("finance"),
                )
                assert issued.status_code == 201, issued.text
                paid = client.post(
                    f"/v1/invoices/{issued.json()['invoice_id']}/payment",
                    json={"payment_ref": "seed"},
                    headers=auth("finance"),
                )
                assert paid.status_code == 200, paid.text
            accounts.append(customer_id)
    return accounts


def wait_caught_up(base_url: str, timeout_s: float = CATCH_UP_TIMEOUT_S) -> float:
    """Wait until /readyz reports no lag; return the seconds it took."""
    began = time.monotonic()
    last: Any = None
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for _ in range(int(timeout_s / 0.2) + 1):
            try:
                response = client.get("/readyz", headers=auth("admin"))
                last = response.text
                if response.status_code == 200 and not any(response.json()["lag"].values()):
                    return time.monotonic() - began
            except httpx.TransportError as e:
                last = repr(e)
            if time.monotonic() - began > timeout_s:
                break
            time.sleep(0.2)
    raise AssertionError(f"read models did not catch up within {timeout_s} s: {last}")


def all_movements(client: httpx.Client, customer_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    for _ in range(MAX_PAGES):
        response = client.get(
            "/v1/audit/movements",
            params={"customer_id": customer_id, "page_after": after, "limit": 1000},
            headers=auth("finance"),
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page.get("next_after") is None:
            return items
        after = page["next_after"]
    raise AssertionError("more movement pages than MAX_PAGES")


def reconcile(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ledger_command(), "reconcile"],
        env=service_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verify(base_url: str, ledger: Ledger, accounts: list[str], record: Record) -> dict[str, Any]:
    """Every invariant of the ledger after a load; returns what was found.

    - per account: movements chain (previous balance_after + amount ==
      balance_after), never below zero, sum == read model balance ==
      the aggregate's balance;
    - every acknowledged charge/purchase has exactly one movement; every
      movement comes from an acknowledged or unanswered command (none from
      nowhere); refunds sum to the last acknowledged total;
    - no partial command: a request is charged in its own stream exactly when
      a charge movement for it exists.
    """
    charges: Counter[UUID] = Counter()
    charge_amounts: dict[UUID, int] = {}
    purchases: Counter[UUID] = Counter()
    refunds: defaultdict[UUID, int] = defaultdict(int)
    found = {"movements": 0, "accounts_checked": 0}
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for customer_id in accounts:
            items = all_movements(client, customer_id)
            found["movements"] += len(items)
            balance = 0
            for item in items:
                balance += item["amount"]
                assert item["balance_after"] == balance, (customer_id, item)
                assert item["balance_after"] >= 0, ("overspend", customer_id, item)
                if item["kind"] == "charge":
                    charges[UUID(item["request_id"])] += 1
                    charge_amounts[UUID(item["request_id"])] = -item["amount"]
                elif item["kind"] == "purchase":
                    purchases[UUID(item["invoice_id"])] += 1
                elif item["kind"] == "refund":
                    refunds[UUID(item["request_id"])] += item["amount"]
            read = client.get(f"/v1/accounts/{customer_id}", headers=auth("finance"))
            assert read.status_code == 200, read.text
            assert read.json()["balance"] == balance == ledger.get_account(customer_id).balance
            found["accounts_checked"] += 1
    paid_unanswered = sum(1 for i in record.invoices_unknown if purchases[i])
    seeded = len(purchases) - len(record.paid) - paid_unanswered
    for request_id, (_, credits) in record.charged.items():
        assert charges[request_id] == 1, ("acknowledged charge", request_id, charges[request_id])
        assert charge_amounts[request_id] == credits
    for invoice_id in record.paid:
        assert purchases[invoice_id] == 1, ("acknowledged purchase", invoice_id)
    assert all(n == 1 for n in charges.values()), "a charge movement appears twice"
    assert all(n == 1 for n in purchases.values()), "a purchase movement appears twice"
    phantom = set(charges) - set(record.charged) - record.unknown
    assert not phantom, f"charge movements no client was told of nor lost: {phantom}"
    for request_id, total in record.refunded.items():
        if request_id not in record.unknown:
            assert refunds[request_id] == total, (request_id, refunds[request_id], total)
    partial = 0
    for request_id in record.opened:
        charged_in_stream = ledger.get_request(request_id).charged is not None
        if charged_in_stream != (charges[request_id] == 1):
            partial += 1
    assert partial == 0, f"{partial} request(s) charged in one stream only"
    unknown_applied = sum(1 for r in record.unknown if charges[r] == 1 and r not in record.charged)
    return {
        **found,
        "charge_movements": sum(charges.values()),
        "purchase_movements": sum(purchases.values()),
        "seed_purchases": seeded,
        "refund_movements_requests": len(refunds),
        "requests_checked_atomic": len(record.opened),
        "unanswered_requests": len(record.unknown),
        "unanswered_charges_applied": unknown_applied,
        "unanswered_payments_applied": paid_unanswered,
        "partial_commands": partial,
    }


def assert_no_token(text: str, where: str) -> None:
    for role, token in TOKENS.items():
        assert token not in text, f"the {role} token appears in {where}"
