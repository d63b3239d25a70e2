"""One ``APIRouter`` per resource; ``problems()`` documents their error answers."""

from __future__ import annotations

from typing import Any

from api.problems import PROBLEM_JSON
from api.schemas import Problem

_MEANING = {
    400: "Malformed JSON",
    401: "No or unknown bearer token",
    402: "Not enough credits (gives balance and price)",
    403: "The key's role may not do this",
    404: "Unknown id",
    409: "Refused in the current state",
    413: "Body too large",
    422: "Invalid input (names the field)",
    429: "Too many requests in flight for this key (see Retry-After)",
    503: "Store unavailable, or the read model did not catch up in time",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (401, 403, 422 always)."""
    wanted = sorted({401, 403, 422, *statuses})
    return {
        status: {
            "model": Problem,
            "description": _MEANING[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in wanted
    }


WRITE = (400, 404, 409, 413, 429, 503)
READ = (404, 429, 503)
