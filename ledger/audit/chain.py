"""The hash chain over the global order of stored events.

Each link is ``SHA-256(previous link ‖ position ‖ originator id ‖ originator
version ‖ topic ‖ stored state bytes)``; the first link's previous link is 32
zero bytes. Every field is written with a fixed width or a length prefix, so
no two different events can produce the same bytes.

Besides the link, a chain entry keeps the event's own digest and its
originator id and version, so that verification can say *how* the store and
the chain disagree at the first position where they do:

- ``changed``: the same event (originator, version) holds other bytes;
- ``missing``: the chain has a position the store no longer has;
- ``inserted``: the store has a position the chain never saw;
- ``reordered``: the store holds at this position an event the chain
  recorded at another position;
- ``unreadable``: a stored value is not what an event is made of (a state
  stored as text, an id that is no UUID): whatever it holds, it is a break;
- ``snapshot``: a snapshot differs from the replay of its aggregate's events
  up to its version (checked by ``ledger.audit.service``, after the chain).

Verification runs in two passes over the same order. ``confirm`` walks the
stored events and the chain entries as plain tuples read from the store
(the originator ids as their 16 bytes), hashing the stored bytes with one
``sha256`` call per digest and building no object per event; it stops at
the first pair it cannot confirm *equal* (whatever the reason: a gap, an
other id, other bytes, a value of the wrong type). ``verify`` then judges
what is left from there, with the state ``confirm`` reached: it is the one
that names the break and its kind. ``confirm`` only ever accepts a pair
that ``verify`` would accept with the same link, so the answer is the same
as that of ``verify`` alone, whichever pass finds the break.

This module is pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any, Literal, Protocol
from uuid import UUID

GENESIS = bytes(32)

#: A stored event as ``confirm`` reads it: position, originator id (its 16
#: bytes), originator version, topic, stored state.
StoredRow = tuple[int, Any, Any, Any, Any]
#: A chain entry as ``confirm`` reads it: position, originator id (its 16
#: bytes), originator version, event digest, link.
ChainRow = tuple[int, Any, Any, Any, Any]

BreakKind = Literal["changed", "missing", "inserted", "reordered", "unreadable", "snapshot"]


class StoredNotification(Protocol):
    """What the chain needs of a stored event (the library's ``Notification``)."""

    @property
    def id(self) -> int: ...
    @property
    def originator_id(self) -> UUID | str: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...


@dataclass(frozen=True)
class ChainEntry:
    position: int
    originator_id: UUID
    originator_version: int
    event_digest: bytes
    link: bytes
    count: int


@dataclass(frozen=True)
class ChainHead:
    position: int
    count: int
    link: bytes

    @property
    def hash(self) -> str:
        return self.link.hex()


EMPTY_HEAD = ChainHead(position=0, count=0, link=GENESIS)


@dataclass(frozen=True)
class ChainBreak:
    position: int
    kind: BreakKind
    detail: str
    originator_id: UUID | None = None
    originator_version: int | None = None


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def event_digest(n: StoredNotification) -> bytes:
    """SHA-256 of one stored event's identity and bytes (not of its position)."""
    topic = n.topic.encode()
    h = hashlib.sha256()
    h.update(_uuid(n.originator_id).bytes)
    h.update(n.originator_version.to_bytes(8, "big", signed=True))
    h.update(len(topic).to_bytes(4, "big"))
    h.update(topic)
    h.update(len(n.state).to_bytes(8, "big"))
    h.update(n.state)
    return h.digest()


def next_link(previous: bytes, position: int, digest: bytes) -> bytes:
    """The link of the event at ``position``, given the previous link.

    The event digest already holds the originator id, version, topic and
    state, each fixed-width or length-prefixed; the link chains it to the
    previous link and to its global position.
    """
    h = hashlib.sha256()
    h.update(previous)
    h.update(position.to_bytes(8, "big", signed=True))
    h.update(digest)
    return h.digest()


def extend(head: ChainHead, notifications: Iterable[StoredNotification]) -> Iterator[ChainEntry]:
    """The chain entries that follow ``head`` for these notifications, in order."""
    link, count = head.link, head.count
    for n in notifications:
        digest = event_digest(n)
        link = next_link(link, n.id, digest)
        count += 1
        yield ChainEntry(n.id, _uuid(n.originator_id), n.originator_version, digest, link, count)


def head_of(entry: ChainEntry | None) -> ChainHead:
    if entry is None:
        return EMPTY_HEAD
    return ChainHead(entry.position, entry.count, entry.link)


@dataclass(frozen=True)
class Verification:
    """The answer of a verification: OK with the head, or the first break."""

    head: ChainHead
    checked: int
    unchained: int
    first_break: ChainBreak | None
    snapshots_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.first_break is None


@dataclass(frozen=True)
class Confirmed:
    """How far ``confirm`` got: the last position it confirmed (``None``:
    none), the link there and how many events it checked."""

    position: int | None
    link: bytes
    checked: int


#: Where verification starts when nothing was confirmed first.
NOTHING_CONFIRMED = Confirmed(None, GENESIS, 0)

# What a tampered value can raise while being hashed: the pair is then left
# to ``verify``, which says it is unreadable.
_UNREADABLE = (TypeError, ValueError, AttributeError, OverflowError)


def confirm(stored: Iterable[StoredRow], chain: Iterable[ChainRow]) -> Confirmed:
    """The longest run, from the first position, of stored events that are
    exactly their chain entries: same position, originator id and version,
    the recomputed event digest and link equal to the recorded ones.

    The digest is ``event_digest``'s, over the same bytes in the same order
    (``test_confirm_hashes_as_event_digest_does``); the topic's
    length-prefixed bytes are built once per topic. Both inputs are iterated
    once, in position order: constant memory.
    """
    sha256 = hashlib.sha256
    prefixes: dict[str, bytes] = {}
    link, checked, position = GENESIS, 0, None
    for s, c in zip_longest(stored, chain):
        if s is None or c is None:
            break
        at, originator_id, version, topic, state = s
        if at != c[0] or originator_id != c[1] or version != c[2]:
            break
        try:
            prefix = prefixes.get(topic)
            if prefix is None:
                encoded = topic.encode()
                prefix = prefixes[topic] = len(encoded).to_bytes(4, "big") + encoded
            if type(state) is not bytes or len(originator_id) != 16:
                break
            digest = sha256(
                b"".join(
                    (
                        originator_id,
                        version.to_bytes(8, "big", signed=True),
                        prefix,
                        len(state).to_bytes(8, "big"),
                        state,
                    )
                )
            ).digest()
            if digest != c[3]:
                break
            following = sha256(link + at.to_bytes(8, "big", signed=True) + digest).digest()
        except _UNREADABLE:
            break
        if following != c[4]:
            break
        link, checked, position = following, checked + 1, at
    return Confirmed(position, link, checked)


def verify(
    store: Iterable[StoredNotification],
    chain: Iterable[ChainEntry],
    *,
    head: ChainHead,
    locate: Callable[[UUID, int], int | None],
    start: Confirmed = NOTHING_CONFIRMED,
) -> Verification:
    """Recompute the chain from the store and compare it, entry by entry, with
    the recorded chain up to ``head``.

    Both inputs are iterated once, in position order, so memory stays
    constant whatever their length. ``locate(originator_id, version)`` gives
    the position at which the recorded chain holds an event, to tell a
    reordering from an insertion. Stored events after the head are not yet
    chained: they are counted, not judged. ``start``: what ``confirm``
    already checked; both inputs then begin after its position.
    """
    stored = iter(store)
    recorded = iter(chain)
    s, c = next(stored, None), next(recorded, None)
    link, checked, unchained = start.link, start.checked, 0
    while s is not None or c is not None:
        if s is not None and s.id > head.position:
            unchained += 1
            s = next(stored, None)
            continue
        found = _compare(s, c, link, locate)
        if isinstance(found, ChainBreak):
            return Verification(head, checked, unchained, found)
        link, checked = found, checked + 1
        s, c = next(stored, None), next(recorded, None)
    if checked != head.count or link != head.link:
        return Verification(
            head,
            checked,
            unchained,
            ChainBreak(head.position, "missing", "the chain's head does not match the store"),
        )
    return Verification(head, checked, unchained, None)


def _compare(
    s: StoredNotification | None,
    c: ChainEntry | None,
    link: bytes,
    locate: Callable[[UUID, int], int | None],
) -> bytes | ChainBreak:
    """The next link when the stored event ``s`` matches chain entry ``c``,
    else how they differ."""
    if c is None or (s is not None and s.id < c.position):
        assert s is not None
        return ChainBreak(s.id, "inserted", "the store has an event the chain never recorded")
    if s is None or s.id > c.position:
        return ChainBreak(
            c.position, "missing", "the chain recorded an event the store no longer has"
        )
    unreadable = (TypeError, ValueError, AttributeError, OverflowError)
    try:
        identity = (_uuid(s.originator_id), s.originator_version)
    except unreadable as e:
        return ChainBreak(s.id, "unreadable", f"the stored event's id cannot be read ({e})")
    try:
        digest = event_digest(s)
    except unreadable as e:
        return ChainBreak(
            s.id,
            "unreadable",
            f"the stored event cannot be read ({type(e).__name__}: {e})",
            originator_id=identity[0],
            originator_version=identity[1],
        )
    if identity != (c.originator_id, c.originator_version):
        elsewhere = locate(*identity)
        if elsewhere is not None:
            return ChainBreak(
                s.id, "reordered", f"the event the chain recorded at position {elsewhere} is here"
            )
        return ChainBreak(s.id, "changed", "another event stands at this position")
    if digest != c.event_digest:
        return ChainBreak(s.id, "changed", "the stored event's bytes differ from the chained ones")
    computed = next_link(link, s.id, digest)
    if computed != c.link:
        return ChainBreak(s.id, "changed", "the recorded link differs from the recomputed one")
    return computed
