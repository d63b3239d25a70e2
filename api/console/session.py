"""The console's session: a signed cookie made at sign-in from an API key.

The cookie carries the key's name and role, a proof of its token (an HMAC of
the token's digest, so the cookie reveals nothing of the token) and a CSRF
nonce, and expires after ``SESSION_TTL_S``. It is ``HttpOnly``,
``SameSite=Strict``, and ``Secure`` when the console is reached over https.

Invariants owned here:
- a session is honoured only while a configured key still has that name,
  that role and that token: removing or changing the key ends the session;
- every form that writes carries a CSRF token bound to the session, and a
  form posted from another site (``Origin`` or ``Sec-Fetch-Site`` say so) is
  refused whatever it carries.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from api.auth import ApiKey, KeyRing
from api.console.signing import Signer
from ledger.values import Actor

COOKIE = "ledger_session"
SESSION_TTL_S = 8 * 3600


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf_token: str


class Sessions:
    """Makes, reads and ends console sessions."""

    def __init__(self, secret: bytes, keyring: KeyRing) -> None:
        self._signer = Signer(secret, "session")
        self._csrf = Signer(secret, "csrf")
        self._keyring = keyring

    def _proof(self, key: ApiKey) -> str:
        return self._signer.mac(key.digest).hex()[:32]

    def start(self, request: Request, response: Response, key: ApiKey) -> None:
        payload = {
            "name": key.actor.name,
            "role": key.actor.role.value,
            "proof": self._proof(key),
            "nonce": secrets.token_urlsafe(16),
        }
        response.set_cookie(
            COOKIE,
            self._signer.sign(payload, ttl_s=SESSION_TTL_S),
            max_age=SESSION_TTL_S,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def end(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")

    def current(self, request: Request) -> Session | None:
        """The session of the request's cookie, if it is valid and its key still is."""
        payload = self._signer.unsign(request.cookies.get(COOKIE))
        if payload is None:
            return None
        for key in self._keyring:
            if (
                key.actor.name == payload.get("name")
                and key.actor.role.value == payload.get("role")
                and hmac.compare_digest(self._proof(key), str(payload.get("proof", "")))
            ):
                nonce = str(payload.get("nonce", ""))
                csrf = self._csrf.mac(nonce.encode()).hex()
                return Session(key.actor, csrf)
        return None


def cross_site(request: Request) -> bool:
    """Whether the browser says this request comes from another site: by
    ``Sec-Fetch-Site`` where the browser sends it, else by ``Origin`` (an
    opaque ``null`` origin counts as another site). Without either, the CSRF
    token alone decides."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin != f"{request.url.scheme}://{request.url.netloc}"
