"""The one ASGI middleware around every request.

Invariants owned here:
- a body larger than ``max_body_bytes`` is refused with 413 before any
  parsing (by ``Content-Length``, and by counting when it is streamed);
- every response carries ``X-Request-ID`` (a sane incoming one is kept; a
  new one is this process's random tag and a counter: unique without reading
  the system's random source per request, as ``uuid4`` does: 3 % of the
  read path's profile);
- one JSON log line per request: method, route template, status,
  duration_ms, request_id and the actor's key name, never a token;
- at most ``max_concurrent_per_key`` requests of one bearer token (as
  ``api.auth.bearer_token`` reads it, so that no spelling of the header
  escapes the count) are in flight at once; beyond that the answer is 429 with
  ``Retry-After``, before the body is read, so that one key cannot take the
  thread pool from the others (requests without a token are not counted:
  the health endpoints never wait, and others are refused at once with 401);
- a client gone before its body has been read gets no answer (the request
  is not handled, nothing is stored);
- every answer but the console's (``/console``, which sets its own) carries
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``,
  and an answer to a request with a bearer token ``Cache-Control: no-store``;
- requests are counted for ``/metrics``;
- an unexpected exception is logged and answered as a problem+json 500
  (the last resort; the tests assert it never happens).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import bearer_token
from api.metrics import Metrics
from api.problems import PROBLEM_JSON, RETRY_AFTER_S, problem_bytes

logger = logging.getLogger("api.access")
error_logger = logging.getLogger("api")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_READ_CHUNK_LIMIT = 10_000  # bound on the body's receive loop
#: Paths whose pages set their own security headers.
CONSOLE_PREFIX = "/console"
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_PROCESS_TAG = secrets.token_hex(10)
_REQUEST_NUMBERS = itertools.count(1)


def _new_request_id() -> str:
    return f"{_PROCESS_TAG}{next(_REQUEST_NUMBERS):012x}"


class _Gone:
    """The client disconnected before its body was read."""


GONE = _Gone()
#: The status logged for a request whose client went away unanswered (nginx's).
CLIENT_CLOSED = 499


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        metrics: Metrics,
        max_concurrent_per_key: int = 16,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.max_concurrent_per_key = max_concurrent_per_key
        # Requests in flight per bearer token; touched on the event loop only.
        self._in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or _new_request_id()
        status = 500
        response_started = False
        authorization = _header(scope, b"authorization")
        key = bearer_token(authorization) if authorization else None
        # The console's pages set their own headers (a Content-Security-Policy too).
        console = str(scope.get("path", "")).startswith(CONSOLE_PREFIX)

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if not console:
                    _add_security_headers(headers, authenticated=key is not None)
                message = {**message, "headers": headers}
            await send(message)

        if key is not None:
            in_flight = self._in_flight.get(key, 0)
            if in_flight >= self.max_concurrent_per_key:
                detail = (
                    f"this key has {in_flight} requests in flight, the most allowed; "
                    f"retry after {RETRY_AFTER_S} s"
                )
                await _send_problem(
                    send_with_id, 429, detail, request_id, retry_after_s=RETRY_AFTER_S
                )
                self._record(scope, status, started, request_id)
                return
            self._in_flight[key] = in_flight + 1
        try:
            body_receive = await self._bounded_body(scope, receive)
            if body_receive is None:
                await _send_problem(send_with_id, 413, self._too_large(), request_id)
            elif isinstance(body_receive, _Gone):
                status = CLIENT_CLOSED
            else:
                await self.app(scope, body_receive, send_with_id)
        except Exception:
            error_logger.exception("unexpected error, request_id=%s", request_id)
            if not response_started:
                await _send_problem(send_with_id, 500, "an unexpected error occurred", request_id)
        finally:
            if key is not None:
                left = self._in_flight[key] - 1
                if left:
                    self._in_flight[key] = left
                else:
                    del self._in_flight[key]
            self._record(scope, status, started, request_id)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"

    async def _bounded_body(self, scope: Scope, receive: Receive) -> Receive | _Gone | None:
        """A ``receive`` replaying the whole body, ``None`` when it is too large,
        ``GONE`` when the client disconnected first."""
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return None
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and length is None:
            return receive
        chunks: list[bytes] = []
        size = 0
        for _ in range(_READ_CHUNK_LIMIT):
            message = await receive()
            if message["type"] == "http.disconnect":
                return GONE
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        else:
            return None
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _record(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        duration_s = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        found = scope.get("state", {}).get("actor")
        actor = None if found is None else str(found)  # role:name, never a token
        self.metrics.observe(scope["method"], route, status, duration_s)
        line: dict[str, Any] = {
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(duration_s * 1000, 2),
            "request_id": request_id,
            "actor": actor,
        }
        logger.info(json.dumps(line))


def _add_security_headers(headers: list[tuple[bytes, bytes]], *, authenticated: bool) -> None:
    """Every answer: no content sniffing, no referrer; an answer to a request
    with a token is never stored by a cache (unless the handler said otherwise)."""
    headers.extend(_SECURITY_HEADERS)
    if authenticated and not any(name.lower() == b"cache-control" for name, _ in headers):
        headers.append((b"cache-control", b"no-store"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1")).strip()
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    value = _header(scope, b"x-request-id")
    return value if value and _REQUEST_ID.fullmatch(value) else None


async def _send_problem(
    send: Send, status: int, detail: str, request_id: str, *, retry_after_s: int | None = None
) -> None:
    body = problem_bytes(status, detail, request_id)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after_s is not None:
        headers.append((b"retry-after", str(retry_after_s).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
