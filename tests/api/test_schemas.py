"""The response schemas stay apart from the domain's values (STYLE.md) but
say the same thing: a request's state is defined once, in
``ledger.views.RequestState``, and its schema has exactly its fields."""

from __future__ import annotations

from dataclasses import fields
from typing import get_type_hints

from api import schemas as s
from ledger import views
from ledger.projections.rows import RequestRow


def test_the_request_state_schema_has_the_fields_and_types_of_the_view() -> None:
    schema = {name: field.annotation for name, field in s.RequestState.model_fields.items()}

    assert schema == get_type_hints(views.RequestState)


def test_the_read_model_row_adds_its_positions_and_the_schema_only_the_last() -> None:
    state = {f.name for f in fields(views.RequestState)}

    # ``opened_position`` is the requests list's key: the cursor carries it.
    assert {f.name for f in fields(RequestRow)} - state == {"position", "opened_position"}
    assert set(s.RequestOut.model_fields) - state == {"position"}
