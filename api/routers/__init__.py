"""One ``APIRouter`` per resource; ``problems()`` documents their error answers."""

from __future__ import annotations

from typing import Any

from api.problems import PROBLEM_JSON, problem_body
from api.schemas import ForbiddenProblem, PaymentRequiredProblem, Problem

_MEANING = {
    400: "Malformed JSON",
    401: "No or unknown bearer token",
    402: "Not enough credits (gives balance and price)",
    403: "The key's role may not do this",
    404: "Unknown id",
    409: "Refused in the current state",
    413: "Body too large",
    415: "The body was not sent as Content-Type: application/json",
    422: "Invalid input (names the field)",
    429: "Too many requests in flight for this key, or too many failed "
    "authentications from this address (see Retry-After)",
    503: "Store unavailable, or the read model did not catch up in time",
}


_MODEL: dict[int, type[Problem]] = {402: PaymentRequiredProblem, 403: ForbiddenProblem}
_EXAMPLE_DETAIL = {
    400: "the body is not valid JSON",
    401: "the bearer token matches no API key",
    404: "no account for customer 'C-1001'",
    409: "the request is closed",
    413: "the request body is larger than 65536 bytes",
    415: "the body must be JSON: send it with Content-Type: application/json",
    422: "name: Field required",
    429: "too many failed authentications from 203.0.113.7; retry after 42 s",
    503: "the read models are unavailable; retry later",
}


def _example(status: int) -> dict[str, Any]:
    model = _MODEL.get(status)
    if model is not None:
        example: dict[str, Any] = model.model_json_schema()["examples"][0]
        return example
    return problem_body(status, _EXAMPLE_DETAIL[status])


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (401, 403, 415 and 422 always)."""
    wanted = sorted({401, 403, 415, 422, *statuses})
    responses: dict[int | str, dict[str, Any]] = {}
    for status in wanted:
        model = _MODEL.get(status, Problem)
        responses[status] = {
            "model": model,
            "description": _MEANING[status],
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    "example": _example(status),
                }
            },
        }
    return responses


WRITE = (400, 404, 409, 413, 429, 503)
READ = (404, 429, 503)
