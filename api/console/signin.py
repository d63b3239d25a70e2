"""Signing in with an API key, signing out, and the home page of each role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.console.web import Person, form_of, redirect, render, sessions, signed_in
from api.deps import failed_authentication

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a console path: never a redirect to another site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    return render(request, "sign_in.html", None, next=_safe_next(next))


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    form = await form_of(request, None)
    key = request.app.state.keyring.key_of(form.get("token", "").strip())
    if key is None:
        # Counted with the API's wrong tokens: too many from one address is a 429.
        wait_s = failed_authentication(request)
        message = "This key is not one of the ledger's API keys."
        if wait_s is not None:
            message = f"Too many wrong keys from this address: try again in {wait_s} s."
        page = render(
            request,
            "sign_in.html",
            None,
            status_code=401 if wait_s is None else 429,
            next=_safe_next(form.get("next")),
            errors=[("token", message)],
        )
        if wait_s is not None:
            page.headers["Retry-After"] = str(wait_s)
        return page
    response = redirect(_safe_next(form.get("next")))
    sessions(request).start(request, response, key)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    person = signed_in(request)
    await form_of(request, person)
    response = redirect("/console/sign-in")
    sessions(request).end(response)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    person: Person = signed_in(request)
    return render(request, "home.html", person)
