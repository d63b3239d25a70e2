"""The OpenAPI document tells an integrator what to send, what comes back,
and who may call what; ``/docs`` and ``/redoc`` work with the network cut.

The document is walked whole: an operation added without its roles, its
examples or its security fails here. Operations left out of the schema
(``include_in_schema=False``) are not in the document and are not asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import schemas
from api.app import create_app
from api.deps import Allowed
from api.openapi import api_models, routes_of
from ledger.permissions import roles_that_may
from tests.api.conftest import Api, auth, make_settings

METHODS = {"get", "post", "put", "patch", "delete"}
SUCCESS = ("200", "201", "202", "204")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(make_settings(f"sqlite:///{tmp_path_factory.mktemp('oas') / 'l.db'}"))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def has_examples(document: dict[str, Any], media: dict[str, Any]) -> bool:
    """A media type's examples: its own, or its schema's (one of an ``anyOf``)."""
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = media.get("schema", {})
    candidates = [schema, *schema.get("anyOf", [])]
    return any(resolve(document, c).get("examples") for c in candidates)


def test_every_operation_names_the_roles_that_may_call_it(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in operations(document)
        if not operation.get("x-roles") or "**Roles:**" not in operation.get("description", "")
    ]
    assert not missing, f"operations without roles: {missing}"


def test_the_roles_come_from_the_permissions_table(app: FastAPI, document: dict[str, Any]) -> None:
    checked = 0
    for route in routes_of(app.routes):
        if not route.include_in_schema or route.dependant is None:
            continue
        guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, Allowed)]
        if not guards:
            continue
        expected = [role.value for role in roles_that_may(guards[0].action)]
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            assert operation["x-roles"] == expected, route.path_format
            assert f"**Roles:** {', '.join(expected)}" in operation["description"]
            checked += 1
    assert checked >= 20
    charge = document["paths"]["/v1/requests/{request_id}/charge"]["post"]
    assert charge["x-roles"] == ["specialist", "admin"]


def test_operations_that_need_a_token_name_the_bearer_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, method, operation in operations(document):
        assert "security" in operation, f"{method.upper()} {path}"
        if operation["x-roles"] != ["anyone"]:
            assert operation["security"] == [{"bearer": []}], f"{method.upper()} {path}"
    public = {path for path, _, op in operations(document) if op["x-roles"] == ["anyone"]}
    assert public == {"/healthz", "/readyz"}


def test_every_operation_has_request_and_response_examples(document: dict[str, Any]) -> None:
    lacking: list[str] = []
    for path, method, operation in operations(document):
        name = f"{method.upper()} {path}"
        body = operation.get("requestBody")
        if body is not None and not all(
            has_examples(document, media) for media in body["content"].values()
        ):
            lacking.append(f"{name}: request body")
        answers = [operation["responses"][s] for s in SUCCESS if s in operation["responses"]]
        assert answers, name
        for answer in answers:
            contents = answer.get("content", {})
            if not contents or not all(has_examples(document, m) for m in contents.values()):
                lacking.append(f"{name}: response")
    assert not lacking, f"operations without examples: {lacking}"


def test_every_example_is_valid_for_its_schema(document: dict[str, Any]) -> None:
    models = api_models()
    assert models["AccountOut"] is schemas.AccountOut
    checked = 0
    for name, component in document["components"]["schemas"].items():
        model = models.get(name)
        for example in component.get("examples", []):
            assert model is not None, f"{name} has examples but no schema class"
            # As a client would send or read it: JSON text.
            model.model_validate_json(json.dumps(example))
            checked += 1
    assert checked >= 30


def test_the_402_problem_schema_gives_balance_and_price(document: dict[str, Any]) -> None:
    answer = document["paths"]["/v1/requests/{request_id}/charge"]["post"]["responses"]["402"]
    schema = resolve(document, answer["content"]["application/problem+json"]["schema"])
    assert (
        {"balance", "price"}
        <= set(schema["properties"])
        <= set(schema["required"])
        | {
            "balance",
            "price",
            "customer_id",
            "type",
            "title",
            "status",
            "detail",
        }
    )
    assert {"balance", "price"} <= set(schema["required"])
    example = answer["content"]["application/problem+json"]["example"]
    assert example["status"] == 402 and {"balance", "price"} <= example.keys()
    forbidden = document["paths"]["/v1/requests/{request_id}/charge"]["post"]["responses"]["403"]
    schema = resolve(document, forbidden["content"]["application/problem+json"]["schema"])
    assert "allowed_roles" in schema["properties"]


def _concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]*id\}", lambda m: "C-1" if "customer" in m[0] else str(uuid4()), path)


def test_the_documented_roles_are_the_ones_let_in(api: Api, document: dict[str, Any]) -> None:
    """Without a token: 401; with a role the document leaves out: 403 naming
    the roles the document names."""
    roles = ("helpdesk", "specialist", "finance")
    for path, method, operation in operations(document):
        if operation["x-roles"] == ["anyone"]:
            continue
        url = _concrete(path)
        answer = api.client.request(method, url)
        assert answer.status_code == 401, (method, path, answer.text)
        others = [r for r in roles if r not in operation["x-roles"]]
        if not others or "LEDGER_METRICS_TOKEN" in operation["description"]:
            continue
        answer = api.client.request(method, url, headers=auth(others[0]))
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["allowed_roles"] == operation["x-roles"]


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(
        r"""url:\s*['"]([^'"]+)['"]""", html
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_elsewhere(app: FastAPI, page: str) -> None:
    """Every script, style and document the page loads is served by the app
    itself (from the installed fastapi-offline package): no CDN, so it works
    with the network cut."""
    with TestClient(app) as client:
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        urls = _asset_urls(html.text)
        assert any(u.endswith(".js") for u in urls), urls
        for url in urls:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
        assert "cdn" not in html.text.lower()


def test_the_assets_come_from_an_installed_package() -> None:
    """No copy of Swagger UI in the repository: the files are the package's."""
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    assert (static / "swagger-ui-bundle.js").is_file()
    assert (static / "redoc.standalone.js").is_file()
    repository = Path(__file__).resolve().parents[2]
    for folder in ("api", "ledger", "docs"):
        assert not list((repository / folder).rglob("swagger-ui*.js")), folder
