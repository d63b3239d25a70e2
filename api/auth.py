"""Bearer tokens checked in constant time against the configured API keys.

``LEDGER_API_KEYS`` is parsed and validated by ``ledger.settings``
(``parse_api_keys``); this module keeps only a digest of each token.

Invariants owned here:
- a token maps to at most one key (role and key name); the key name, never
  the token, is what the ledger records as the actor;
- a presented token is compared with *every* key through
  ``hmac.compare_digest`` of fixed-length digests, with no early exit, so
  neither the matching key's position nor a shared prefix shows in timing;
- tokens are never logged nor echoed in an error.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ledger.settings import ApiKeyEntry
from ledger.values import Actor


@dataclass(frozen=True)
class ApiKey:
    actor: Actor
    digest: bytes  # sha256 of the token: all that is kept of it


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """The configured keys; ``actor_for`` finds the key of a bearer token."""

    def __init__(self, entries: Iterable[ApiKeyEntry]) -> None:
        self._keys = tuple(ApiKey(Actor(e.role, e.name), _digest(e.token)) for e in entries)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(self._keys)

    def key_of(self, token: str) -> ApiKey | None:
        """The key of ``token``, or ``None``; compares against every key."""
        presented = _digest(token)
        found: ApiKey | None = None
        for key in self._keys:
            # No early exit: every key is compared whatever the outcome.
            if hmac.compare_digest(presented, key.digest):
                found = key
        return found

    def actor_for(self, token: str) -> Actor | None:
        """The actor of ``token``, or ``None``; compares against every key."""
        key = self.key_of(token)
        return None if key is None else key.actor


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
