"""Signed, expiring tokens: the console's session cookie and the customer
statement links.

A token is ``base64url(JSON payload) "." base64url(HMAC-SHA256)``. The key
of each use is derived from ``LEDGER_SECRET_KEY`` and a purpose label, so a
statement link can never be replayed as a session cookie (or the reverse).
Payloads are signed, not encrypted: they carry no secret.

Invariants owned here:
- a token whose signature does not match, that does not decode, or whose
  ``exp`` (unix seconds) has passed is refused (``None``), never trusted in
  part;
- signatures are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

#: A token longer than this is refused before any decoding.
MAX_TOKEN_LENGTH = 4096


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks payloads for one purpose (``session``, ``statement``)."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._key = hmac.new(secret, f"ledger-console:{purpose}".encode(), hashlib.sha256).digest()

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def sign(self, payload: dict[str, Any], *, ttl_s: float, now: float | None = None) -> str:
        issued = time.time() if now is None else now
        body = json.dumps(
            {**payload, "exp": int(issued + ttl_s)}, separators=(",", ":"), sort_keys=True
        ).encode()
        return f"{_b64encode(body)}.{_b64encode(self.mac(body))}"

    def unsign(self, token: str | None, *, now: float | None = None) -> dict[str, Any] | None:
        """The payload of a token this signer issued and that has not expired."""
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            return None
        body_text, mac_text = token.split(".")
        try:
            body, mac = _b64decode(body_text), _b64decode(mac_text)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self.mac(body)):
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            return None
        if payload["exp"] <= (time.time() if now is None else now):
            return None
        return payload
