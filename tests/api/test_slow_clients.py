"""Slow and greedy clients against a real uvicorn server (in a thread, on
127.0.0.1, raw sockets), issue 18 points 5 and 6:

- connections that trickle their headers, trickle a body, or send nothing
  are cut at the read deadline with a 408, while other clients keep being
  served meanwhile (before: 200 + 200 such connections stayed open 42 s);
- one key holding its limit of requests in flight gets 429 with
  ``Retry-After`` for the next one; another key and the health endpoints
  are served meanwhile.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.server import ReadDeadlineProtocol
from tests.api.conftest import TOKENS, auth, make_settings

pytestmark = pytest.mark.slow

DEADLINE_S = 1.5
TRICKLE_EVERY_S = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _server(tmp_path: Path, **overrides: object) -> Iterator[str]:
    """A uvicorn server with the API's protocol and limits, in a thread."""
    settings = make_settings(f"sqlite:///{tmp_path / 'slow.db'}", **overrides)
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        http=ReadDeadlineProtocol.with_deadline(settings.request_read_timeout_s),
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=int(settings.keep_alive_timeout_s),
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class Trickler:
    """Raw connections that each send a first part, then a byte every
    ``TRICKLE_EVERY_S`` while the server lets them (or, with no first part,
    nothing at all)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []
        self.trickling: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def open(self, first: bytes, count: int) -> None:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.sockets.append(s)
            if first:
                s.sendall(first)
                self.trickling.append(s)

    def _trickle(self) -> None:
        while not self.stop.wait(TRICKLE_EVERY_S):
            for s in self.trickling:
                with contextlib.suppress(OSError):  # cut by the server: what the test wants
                    s.send(b"a")

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for s in self.sockets:
            s.close()


def _answer(s: socket.socket, timeout_s: float) -> bytes:
    """All the server sends until it closes the connection (``timeout_s`` at most)."""
    s.settimeout(timeout_s)
    received = b""
    try:
        while chunk := s.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_slow_clients_are_cut_at_the_deadline_and_others_are_served(tmp_path: Path) -> None:
    with _server(tmp_path, request_read_timeout_s=DEADLINE_S, limit_concurrency=500) as url:
        with httpx.Client(base_url=url, timeout=5) as warm:
            assert warm.get("/v1/support-hours", headers=auth("helpdesk")).status_code == 200
        trickler = Trickler(_port(url))
        began = time.monotonic()
        try:
            # Headers one byte at a time (never ending), a body one byte at a
            # time (never complete), and connections that send nothing.
            trickler.open(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", 60)
            body_head = (
                b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 50000\r\n\r\n{"
            )
            trickler.open(body_head, 60)
            trickler.open(b"", 20)
            trickler.start()
            # Meanwhile other clients are served, quickly, on new connections.
            served = []
            opened = time.monotonic()
            with httpx.Client(base_url=url, timeout=5) as client:
                while time.monotonic() - opened < DEADLINE_S * 1.5:
                    t0 = time.monotonic()
                    health = client.get("/healthz")
                    hours = client.get("/v1/support-hours", headers=auth("helpdesk"))
                    served.append(round(time.monotonic() - t0, 3))
                    assert health.status_code == 200 and hours.status_code == 200
                    time.sleep(0.05)
            assert len(served) >= 10 and sorted(served)[len(served) // 2] < 0.2, served
            # Every slow connection got a 408 and was closed, at the deadline.
            for s in trickler.sockets:
                answer = _answer(s, timeout_s=DEADLINE_S + 3)
                assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
                assert b"application/problem+json" in answer and b"not read whole" in answer
            cut_after = time.monotonic() - began
            assert DEADLINE_S <= cut_after < DEADLINE_S + 4, cut_after
        finally:
            trickler.close()
        # Nothing of the trickled body was stored.
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_a_request_read_within_the_deadline_is_served(tmp_path: Path) -> None:
    """A slow but bounded client (its body in parts, within the deadline)
    gets its answer; the next request on the kept-alive connection gets a
    deadline of its own."""
    with _server(tmp_path, request_read_timeout_s=DEADLINE_S) as url:
        body = b'{"customer_id": "slow-1", "name": "Slow"}'
        head = (
            b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKENS["helpdesk"].encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=5) as s:
            for _ in range(2):
                s.sendall(head)
                time.sleep(DEADLINE_S / 3)
                s.sendall(body[:10])
                time.sleep(DEADLINE_S / 3)
                s.sendall(body[10:])
                answer = s.recv(65536)
                assert answer.startswith((b"HTTP/1.1 201 ", b"HTTP/1.1 409 ")), answer
                time.sleep(DEADLINE_S * 0.8)  # idle, within the keep-alive timeout


def test_oversized_headers_are_431(tmp_path: Path) -> None:
    with _server(tmp_path) as url, socket.create_connection(("127.0.0.1", _port(url))) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        answer = _answer(s, timeout_s=5)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_one_key_cannot_take_every_slot(tmp_path: Path) -> None:
    limit = 4
    with _server(tmp_path, request_read_timeout_s=DEADLINE_S, max_concurrent_per_key=limit) as url:
        trickler = Trickler(_port(url))
        try:
            # The helpdesk key holds its limit of requests in flight (bodies
            # that never finish arriving).
            head = (
                b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + TOKENS["helpdesk"].encode() + b"\r\n"
                b"Content-Length: 50000\r\n\r\n{"
            )
            trickler.open(head, limit)
            trickler.start()
            time.sleep(0.3)
            with httpx.Client(base_url=url, timeout=5) as client:
                more = client.get("/v1/support-hours", headers=auth("helpdesk"))
                # Before: queued behind the key's own requests (and everyone else's).
                assert more.status_code == 429, more.text
                assert more.headers["retry-after"] == "1"
                assert more.json()["type"].endswith("/too-many-requests")
                # Another spelling of the same token is the same key.
                respelled = {"Authorization": f"bEARER    {TOKENS['helpdesk']}"}
                assert client.get("/v1/support-hours", headers=respelled).status_code == 429
                # Another key, and the health endpoints, are served meanwhile.
                assert client.get("/v1/support-hours", headers=auth("finance")).status_code == 200
                assert client.get("/healthz").status_code == 200
                assert client.get("/readyz").json() == {"status": "ready"}
                # Once the key's requests are cut (the read deadline), it is served again.
                for s in trickler.sockets:
                    assert _answer(s, timeout_s=DEADLINE_S + 3).startswith(b"HTTP/1.1 408 ")
                again = client.get("/v1/support-hours", headers=auth("helpdesk"))
                assert again.status_code == 200, again.text
        finally:
            trickler.close()
