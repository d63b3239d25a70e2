"""Errors as ``application/problem+json`` (RFC 9457), from one table.

Invariants owned here:
- every 4xx/5xx the API sends is a problem document with ``type``, ``title``,
  ``status`` and ``detail`` (plus the rule's own fields);
- a domain error's status comes from its *kind* (``STATUS_BY_KIND``), never
  from a handler;
- bad input answers 400/422 naming the field, never 500;
- a corrupted history (``LedgerCorruptionError``: an event or a snapshot
  changed outside the ledger) answers 503 naming the account and the version,
  and a stopped read model (``ProjectionFailedError``, on ``/readyz``) 503
  naming it, the position and the error; both without ``Retry-After``
  (retrying cannot help: an operator must act) and logged as errors. The
  rest of the ledger keeps answering.
- a 503 says what the client can act on ("the read models are unavailable;
  retry later"); the database driver's own text goes to the log only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    LedgerCorruptionError,
    LedgerError,
    NotFoundError,
    PaymentRequiredError,
    ProjectionFailedError,
    StoreUnavailableError,
)

logger = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://ledger.example/problems/"
RETRY_AFTER_S = 1

#: The one table from a domain error's kind to an HTTP status.
STATUS_BY_KIND: Mapping[type[LedgerError], int] = {
    InvalidInputError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    PaymentRequiredError: 402,
    ForbiddenError: 403,
    StoreUnavailableError: 503,
    LedgerCorruptionError: 503,
    ProjectionFailedError: 503,
}
#: 503s that retrying cannot clear: an operator must act, so no ``Retry-After``.
_LASTING: tuple[type[LedgerError], ...] = (LedgerCorruptionError, ProjectionFailedError)

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    431: "Request headers too large",
    500: "Internal error",
    503: "Service unavailable",
}
_RESERVED = frozenset({"type", "title", "status", "detail", "instance"})
_CODES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    413: "body-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
    431: "headers-too-large",
    500: "internal-error",
    503: "unavailable",
}


class NotAuthenticatedError(Exception):
    """No bearer token, or one that matches no key."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TooManyFailuresError(Exception):
    """Too many wrong tokens from one client address: 429 with ``Retry-After``."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response; ``fields`` are extension members."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + (code or _CODES.get(status, "error")),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    for name, value in (fields or {}).items():
        # A rule's own ``status`` (a request's status) must not hide the HTTP one.
        body[f"current_{name}" if name in _RESERVED else name] = value
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_body(status: int, detail: str) -> dict[str, Any]:
    """A problem document's members for ``status`` (the OpenAPI examples)."""
    return {
        "type": TYPE_BASE + _CODES.get(status, "error"),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }


def problem_bytes(status: int, detail: str, request_id: str | None = None) -> bytes:
    """The body of a problem written outside FastAPI (the middleware's 413 and 500)."""
    body = {
        "type": TYPE_BASE + _CODES.get(status, "error"),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body).encode()


def status_for(error: LedgerError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_BY_KIND:
            return STATUS_BY_KIND[kind]
    return 500


def client_detail(error: LedgerError) -> str:
    """What a client is told of ``error``: a bare ``StoreUnavailableError``
    carries the driver's text after its first colon ("the read models are
    unavailable: terminating connection ..."); the client gets the part
    before it and "retry later". Its subclasses (a read model behind) write
    their own text."""
    if type(error) is StoreUnavailableError:
        what = error.detail.partition(":")[0].strip() or "the store is unavailable"
        return f"{what}; retry later"
    return error.detail


#: Paths answered with an HTML error page (the console's) instead of a problem document.
PAGES_PREFIX = "/console"


def _page(request: Request, status: int, title: str, detail: str) -> Response | None:
    """The console's error page for ``request``, when it is a console page."""
    render: Callable[..., Response] | None = getattr(request.app.state, "error_page", None)
    if render is None or not request.url.path.startswith(PAGES_PREFIX):
        return None
    return render(request, status, title, detail)


def _ledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    status = status_for(exc)
    lasting = isinstance(exc, _LASTING)
    if lasting:
        logger.error("ledger error %s: %s %s", exc.code, exc.detail, exc.fields())
    elif status >= 500:
        logger.warning("ledger error %s: %s", exc.code, exc.detail)
    page = _page(request, status, exc.title, client_detail(exc))
    if page is not None:
        return page
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 and not lasting else None
    return problem(
        status,
        client_detail(exc),
        code=exc.code,
        title=exc.title,
        headers=headers,
        fields=exc.fields(),
    )


def _field_of(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts[:1] == ["query"]:
        # A repeatable parameter's value is named by the parameter, not ``status.1``.
        parts = [p for p in loc[1:] if isinstance(p, str)]
    elif parts and parts[0] in ("body", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_of(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    page = _page(
        request, 422, "Invalid address", "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    )
    if page is not None:
        return page
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        # FastAPI parses the body before it resolves the route's dependencies:
        # authenticate first, so that a caller without a token learns nothing
        # of how its body was read.
        refused = _refused_caller(request)
        if refused is not None:
            return refused
        return problem(
            400, "the body is not valid JSON", code="malformed-json", fields={"field": "body"}
        )
    if _sent_other_than_json(request, exc):
        return problem(
            415,
            "the body must be JSON: send it with Content-Type: application/json",
            fields={"field": "body"},
        )
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem(
        422,
        detail or "invalid input",
        fields={
            "field": errors[0]["field"] if errors else "body",
            "fields": fields,
            "errors": errors[:20],
        },
    )


def _sent_other_than_json(request: Request, exc: RequestValidationError) -> bool:
    """The body was refused because it came with a content type other than
    JSON (FastAPI then hands the route the raw bytes, which fail validation).
    No content type at all is read as JSON."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return False
    # The whole body refused (not one of its fields, as a form's would be).
    return any(tuple(e.get("loc", ())) == ("body",) for e in exc.errors())


def _refused_caller(request: Request) -> Response | None:
    """The 400/401 answer to a caller who is not authenticated, else ``None``."""
    from api.deps import authenticate  # api.deps imports this module

    try:
        authenticate(request)
    except NotAuthenticatedError as e:
        return _not_authenticated(request, e)
    except TooManyFailuresError as e:
        return _too_many_failures(request, e)
    except StarletteHTTPException as e:
        return _http_error(request, e)
    return None


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
    if exc.status_code == 404:
        detail = f"no such resource: {request.url.path}"
    page = _page(request, exc.status_code, _TITLES.get(exc.status_code, "Error"), detail)
    if page is not None:
        return page
    return problem(exc.status_code, detail, headers=exc.headers)


def _not_authenticated(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotAuthenticatedError)
    return problem(401, exc.detail, headers={"WWW-Authenticate": "Bearer"})


def _too_many_failures(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TooManyFailuresError)
    return problem(
        429,
        exc.detail,
        code="too-many-failed-authentications",
        headers={"Retry-After": str(exc.retry_after_s), "WWW-Authenticate": "Bearer"},
    )


def install(app: FastAPI) -> None:
    """Register the handlers: domain errors, validation, routing, authentication."""
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NotAuthenticatedError, _not_authenticated)
    app.add_exception_handler(TooManyFailuresError, _too_many_failures)
