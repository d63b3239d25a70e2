"""A webhook receiver on 127.0.0.1 (``http.server`` in a thread) that records
what it got and answers as a test scripts it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float

    @property
    def item(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class Receiver:
    url: str
    got: list[Received] = field(default_factory=list)
    #: Answers in order (status codes, or "hang" to sleep ``hang_s``); then 200.
    script: list[int | str] = field(default_factory=list)
    hang_s: float = 3.0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def positions(self) -> list[int]:
        with self.lock:
            return [r.item["position"] for r in self.got]

    def wait_for(self, check: Callable[[Receiver], bool], timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver timed out; got {self.positions()}")
            time.sleep(0.05)


@contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    """A running receiver; only 2xx answers are recorded in ``got``."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        wbufsize = -1  # one write per answer (no Nagle and delayed-ACK stall)
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def do_POST(self) -> None:
            rec = state["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with rec.lock:
                rec.calls += 1
                answer = rec.script.pop(0) if rec.script else 200
            if answer == "hang":  # the sender gives up first: nothing is recorded
                time.sleep(rec.hang_s)
                self.close_connection = True
                return
            status = int(answer)
            if 200 <= status < 300:
                with rec.lock:
                    rec.got.append(Received(body, dict(self.headers.items()), time.time()))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a sender killed mid-request: not the receiver's business

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook", **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
