"""How uvicorn serves the API: its connection limits from the settings, and an
HTTP protocol with a deadline for reading each request.

uvicorn bounds an *idle* keep-alive connection (``timeout_keep_alive``) but
not the reading of a request: a client that trickles its headers one byte at
a time, or announces a body and sends it slowly, holds a connection (and a
file descriptor, and with a body a task) for as long as it likes. Neither
uvicorn's httptools protocol nor its h11 one has a header-read timeout.

``ReadDeadlineProtocol`` is uvicorn's httptools protocol with one timer:

- armed when the connection is made, and when a request's first byte
  arrives on a kept-alive connection (if it is not already running);
- cancelled when the request has been read whole (``on_message_complete``:
  headers and body);
- when it fires, the client gets a 408 problem+json with
  ``Connection: close`` (unless the application has already started its
  answer) and the connection is closed. A handler waiting for the body sees
  ``http.disconnect``; nothing is stored.

So one deadline covers headers and body, from the first byte (or the
connection) to the last. Headers are also bounded in size
(``MAX_HEADER_BYTES``, else 431): llhttp has no limit of its own.

A pipelined request read while an earlier one is being answered is held
to the same deadline; the API's clients do not pipeline.
"""

from __future__ import annotations

import asyncio
import inspect
from functools import cache
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import PROBLEM_JSON, problem_bytes
from ledger.settings import LedgerSettings, load_settings

#: The most bytes of request line and headers a request may have (else 431).
MAX_HEADER_BYTES = 32 * 1024
#: How long uvicorn's supervisor waits for a worker's answer to its ping
#: (``--workers`` > 1) before it kills it: its default, 5 s, kills workers that
#: are still importing on a loaded 2-core machine, again and again.
WORKER_HEALTHCHECK_S = 30

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@cache
def _read_timeout_from_environment() -> float:
    return load_settings().request_read_timeout_s


class ReadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for reading each request."""

    #: Seconds; ``None``: ``LEDGER_REQUEST_READ_TIMEOUT_S`` (the worker's environment).
    read_timeout_s: float | None = None
    max_header_bytes: int = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._refused = False
        self._timeout_s = (
            self.read_timeout_s
            if self.read_timeout_s is not None
            else _read_timeout_from_environment()
        )

    @classmethod
    def with_deadline(
        cls, read_timeout_s: float, max_header_bytes: int = MAX_HEADER_BYTES
    ) -> type[ReadDeadlineProtocol]:
        """A subclass with these limits (for a server run in this process)."""
        return type(
            cls.__name__,
            (cls,),
            {"read_timeout_s": read_timeout_s, "max_header_bytes": max_header_bytes},
        )

    # --- the timer ------------------------------------------------------------
    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self._timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        self._refuse(408, f"the request was not read whole within {self._timeout_s:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` (unless an answer has started) and close the connection."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True  # what the parser still calls back with is ignored
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            body = problem_bytes(status, detail)
            head = (
                b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n"
                % (status, _REASONS[status], PROBLEM_JSON.encode(), len(body))
            )
            self.transport.write(head + body)
        if cycle is not None and not cycle.response_complete:
            # The handler sees http.disconnect; its own answer, if any, is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    # --- uvicorn's protocol hooks -----------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_header_bytes(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        if not self._refused:
            super().on_message_complete()

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refuse(
                431, f"the request's headers are larger than {self.max_header_bytes} bytes"
            )


def uvicorn_options(settings: LedgerSettings) -> dict[str, Any]:
    """The options ``uvicorn.run`` gets from the settings (see the module's text)."""
    options: dict[str, Any] = {
        "http": "api.server:ReadDeadlineProtocol",
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        # Bounds h11 too, should it be chosen instead of httptools.
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_S
    return options
