"""The OpenAPI document, with who may call what.

Invariants owned here:
- the roles of an operation are read from the dependency that guards it
  (``api.deps.Allowed`` carries its ``Action``) and ``ledger.permissions``:
  never typed twice. Each operation's description ends with a ``Roles:``
  line and carries the list as ``x-roles``;
- an operation that needs a token names the ``bearer`` security scheme (so
  that Swagger UI's "Authorize" then "Try it out" sends it); the ones that
  need none say so;
- the document is built once, on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.deps import Allowed, current_actor, may_read_metrics
from ledger.permissions import Action, roles_that_may
from ledger.values import Role

SCHEME = "bearer"
_SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "an API key's token, from LEDGER_API_KEYS (role:name:token)",
}


@dataclass(frozen=True)
class Access:
    """Who may call an operation: ``roles``, and whether a token is needed."""

    roles: tuple[str, ...]
    token: bool
    note: str = ""

    def line(self) -> str:
        who = ", ".join(self.roles)
        return f"**Roles:** {who}{self.note}"


class Operation(Protocol):
    """What is read of a route: an ``APIRoute``, or what FastAPI makes of one
    in an included router (``effective_route_contexts``, FastAPI >= 0.16x)."""

    @property
    def path_format(self) -> str: ...
    @property
    def methods(self) -> set[str] | None: ...
    @property
    def include_in_schema(self) -> bool: ...
    @property
    def dependant(self) -> Dependant | None: ...


def routes_of(routes: Iterable[object]) -> Iterator[Operation]:
    """The HTTP operations among ``routes`` (an app's, included routers' too)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
            continue
        included = getattr(route, "effective_route_contexts", None)
        if included is not None:
            for context in included():
                if getattr(context, "dependant", None) is not None:
                    yield context


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def access_of(route: Operation) -> Access:
    """Who may call ``route``, from the dependencies that guard it."""
    for call in _calls(route.dependant) if route.dependant else ():
        if isinstance(call, Allowed):
            return Access(tuple(role.value for role in roles_that_may(call.action)), token=True)
        if call is current_actor:
            return Access(tuple(role.value for role in Role), token=True, note=" (any key)")
        if call is may_read_metrics:
            roles = tuple(role.value for role in roles_that_may(Action.OPERATE))
            return Access(roles, token=True, note=", or the LEDGER_METRICS_TOKEN")
    return Access(("anyone",), token=False, note=" (no token needed)")


def build(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI generates, with security and roles added."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    components["securitySchemes"] = {SCHEME: _SECURITY_SCHEME}
    _restore_examples(components.get("schemas", {}))
    for route in routes_of(app.routes):
        if not route.include_in_schema:
            continue
        access = access_of(route)
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            description = operation.get("description", "").strip()
            operation["description"] = f"{description}\n\n{access.line()}".strip()
            operation["x-roles"] = list(access.roles)
            operation["security"] = [{SCHEME: []}] if access.token else [{}, {SCHEME: []}]
    return document


def api_models() -> dict[str, type[BaseModel]]:
    """The API's schema classes by name (the names FastAPI gives components)."""
    found: dict[str, type[BaseModel]] = {}
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        for model in pending.pop().__subclasses__():
            pending.append(model)
            if model.__module__.startswith("api."):
                found.setdefault(model.__name__, model)
    return found


def _restore_examples(schemas: dict[str, Any]) -> None:
    """FastAPI writes the document without ``None`` members, which takes the
    ``null`` values out of the examples too (a required ``closed_at: null``
    would go missing); put each schema's examples back as its class gives them."""
    models = api_models()
    for name, schema in schemas.items():
        model = models.get(name)
        if model is not None and "examples" in schema:
            schema["examples"] = model.model_json_schema()["examples"]


def install(app: FastAPI) -> None:
    """Serve ``build(app)`` as the app's OpenAPI document (built on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
