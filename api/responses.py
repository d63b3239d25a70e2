"""``ModelJSON``: how a handler answers with a response schema.

Invariants owned here:
- the body is the schema's own JSON (``model_dump_json``): what the OpenAPI
  document declares (``response_model=`` on the route stays, for the docs);
- nothing is validated or serialised twice. Handlers build their answer from a
  schema, which validates it as it is built; given that model back, FastAPI
  would validate it again and, for a plain ``def`` handler, do so in the
  thread pool: a second thread round trip per request (what a balance read
  costs is measured in ``bench/results.md``, "Read throughput" and "Read-path
  profile").
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


class ModelJSON(Response):
    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(model.model_dump_json(), status_code=status_code)
