"""What every console page shares: the templates, the signed-in person, the
CSRF and cross-site checks, one idempotency key per rendered form, and
domain refusals put into words.

Invariants owned here:
- a page is rendered from plain view values (read models, ``ledger.views``),
  never from aggregates or rows of the store;
- a page the person's role may not see answers a 403 page, an unknown id a
  404 page, a store outage a 503 page: never a stack trace;
- a form that writes is refused (403 page) when it comes from another site
  or lacks the session's CSRF token, before anything is read or written.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.console.session import Session, Sessions, cross_site
from ledger.application import Ledger
from ledger.audit.service import Audit
from ledger.errors import (
    InsufficientCreditsError,
    InvalidInputError,
    LedgerError,
    OutsideWorkingHoursError,
)
from ledger.permissions import Action, may, roles_that_may
from ledger.policy import DEFAULT_PRICE_LIST, PriceList
from ledger.projections import ReadQueries

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# Each form that writes carries a key made when it was rendered: a double
# click or a resubmitted form then writes once (the command's idempotency).
templates.env.globals["new_key"] = lambda: secrets.token_urlsafe(16)
templates.env.globals["url_with"] = lambda path, **q: (
    path + ("?" + urlencode({k: v for k, v in q.items() if v not in (None, "")}) if q else "")
)


class ConsoleRedirect(Exception):
    """Answered with a redirect (to sign in, or after a write)."""

    def __init__(self, url: str) -> None:
        self.url = url


class ConsolePageError(Exception):
    """Answered with an error page of ``status``."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        self.status, self.title, self.detail = status, title, detail


def _cross_site() -> ConsolePageError:
    return ConsolePageError(403, "Form refused", "This form was sent from another site.")


@dataclass(frozen=True)
class Person:
    """The signed-in person of a console request."""

    session: Session

    @property
    def role(self) -> str:
        return self.session.actor.role.value

    def may(self, action: Action) -> bool:
        return may(self.session.actor.role, action)


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.console_sessions
    return found


def ledger_of(request: Request) -> Ledger:
    found: Ledger = request.app.state.ledger
    return found


def read_models_of(request: Request) -> ReadQueries:
    found: ReadQueries = request.app.state.read_models
    return found


def audit_of(request: Request) -> Audit:
    found: Audit = request.app.state.audit
    return found


def signed_in(request: Request) -> Person:
    """The person, or a redirect to the sign-in page (which comes back here).
    A form posted from another site is refused first, signed in or not."""
    if request.method == "POST" and cross_site(request):
        raise _cross_site()
    session = sessions(request).current(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise ConsoleRedirect("/console/sign-in?" + urlencode({"next": target}))
    request.state.actor = session.actor  # for the access log
    return Person(session)


def signed_in_or_none(request: Request) -> Person | None:
    session = sessions(request).current(request)
    return None if session is None else Person(session)


def allowed_to(request: Request, action: Action) -> Person:
    person = signed_in(request)
    if not person.may(action):
        who = ", ".join(r.value for r in roles_that_may(action))
        raise ConsolePageError(
            403,
            "You may not see this page",
            f"Your key's role ({person.role}) may not {action.value.replace('_', ' ')}. "
            f"Who may: {who}.",
        )
    return person


async def form_of(request: Request, person: Person | None) -> dict[str, str]:
    """The posted form, once it is known to come from this site with the
    session's CSRF token (a sign-in form has no session yet)."""
    if cross_site(request):
        raise _cross_site()
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if person is not None and not secrets.compare_digest(
        fields.get("csrf_token", ""), person.session.csrf_token
    ):
        raise ConsolePageError(
            403, "Form refused", "This form has expired or was not made by this console."
        )
    return fields


def render(
    request: Request,
    template: str,
    person: Person | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("errors", [])
    return templates.TemplateResponse(
        request,
        template,
        {
            "person": person,
            "csrf_token": person.session.csrf_token if person else "",
            "Action": Action,
            **context,
        },
        status_code=status_code,
    )


def redirect(url: str) -> RedirectResponse:
    """After a write: 303 to a page that reads with ``?after=``."""
    return RedirectResponse(url, status_code=303)


@dataclass(frozen=True)
class Refusal:
    """A refused command in words, and the form field it concerns (if any)."""

    message: str
    field: str | None = None


def in_words(error: LedgerError, prices: PriceList = DEFAULT_PRICE_LIST) -> Refusal:
    """What a person needs to know of a refusal, in plain words; a top-up
    is suggested from the packages of ``prices`` (pass the list in force)."""
    if isinstance(error, InsufficientCreditsError):
        shortfall = error.price - error.available
        package = next((p for p in prices.packages.values() if p.credits >= shortfall), None)
        top_up = (
            f" The smallest package that covers it is {package.credits} credits "
            f"(USD {package.amount_usd})."
            if package
            else ""
        )
        held = (
            f", {error.balance - error.available} of them held for requests at work"
            if error.available != error.balance
            else ""
        )
        return Refusal(
            f"Not enough credits: balance {error.balance}{held}, price {error.price}, "
            f"short by {shortfall}.{top_up}"
        )
    if isinstance(error, OutsideWorkingHoursError):
        when = (
            f" Support opens next on {error.next_opening:%A %d %B %Y at %H:%M %Z}."
            if error.next_opening
            else ""
        )
        return Refusal(f"Support is closed now.{when}")
    field = error.field if isinstance(error, InvalidInputError) else None
    return Refusal(error.detail[:1].upper() + error.detail[1:] + ".", field)


def query_ints(params: Mapping[str, str], *names: str) -> dict[str, int | None]:
    """Whole numbers of the query string (an unreadable one counts as absent)."""
    found: dict[str, int | None] = {}
    for name in names:
        text = params.get(name, "")
        found[name] = int(text) if text.isdigit() else None
    return found
