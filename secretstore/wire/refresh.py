"""Messages of the proactive share refresh (codes 0x0c00–0x0cff).

A refresh re-deals keys to the nodes that hold them with fresh id numbers, by the same
redistribution the node set change uses: its messages are reused (`InventoryPage`, `KeyDeal`,
`KeySubshare`, `KeyMoved`, `KeyChangeFault` of wire/admin.py), with `KeyMoved` sent to every
node of the refresh instead of the master alone, so every node sees every new holder's report
before it erases an old version. The refresh adds its init, a per-key skip, the commit and the
finish.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import NO_KEY
from secretstore.wire.codec import message
from secretstore.wire.requester import check_signature_length

#: The most keys a refresh of listed keys may list.
MAX_LISTED_KEYS = 4096


@dataclass(frozen=True, slots=True)
class RefreshScope:
    """Which keys a refresh covers: the listed `keys` (ascending) when there are any; else
    the first `limit` keys above `after` (every key from the first when None) that each node
    holds (one batch of a refresh of every key)."""

    keys: tuple[ServerKeyId, ...]
    after: ServerKeyId | None
    limit: int

    def problem(self) -> str | None:
        """What makes this scope unusable, or None."""
        if len(self.keys) > MAX_LISTED_KEYS:
            return f"a refresh lists at most {MAX_LISTED_KEYS} keys"
        if list(self.keys) != sorted(set(self.keys)):
            return "listed keys are ascending and distinct"
        if not self.keys and not 0 < self.limit <= MAX_LISTED_KEYS:
            return f"a batch has 1..{MAX_LISTED_KEYS} keys"
        return None


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """The administrator's signature of a refresh (crypto/admin.py): valid until `expires`
    (unix seconds), for every key (`keys` = 32 zero bytes) or the listed ones."""

    expires: int
    keys: Hash256
    signature: bytes

    def __post_init__(self) -> None:
        check_signature_length(self.signature, "a refresh grant signature")


@message(0x0C00)
@dataclass(frozen=True, slots=True)
class RefreshInit:
    """Master -> every other node of the cluster: refresh the keys of `scope`.

    `cluster`: the master's view (itself and every node it is connected to, ascending), which
    every node compares with its own; `grant`: the administrator's signature, or None for a
    refresh on the cluster's schedule (accepted only by nodes whose own schedule is on)."""

    session_id: SessionId
    cluster: tuple[NodeId, ...]
    scope: RefreshScope
    grant: RefreshGrant | None

    @property
    def key_id(self) -> ServerKeyId:
        return NO_KEY


@message(0x0C01)
@dataclass(frozen=True, slots=True)
class RefreshSkip:
    """Node -> master: this node cannot take part in `key_id`'s refresh now (another session
    writes the key here, or it no longer holds the dealt version); the key is left as it is."""

    session_id: SessionId
    key_id: ServerKeyId
    reason: str


@message(0x0C02)
@dataclass(frozen=True, slots=True)
class RefreshCommit:
    """Master -> every other node: every key of the batch is done, `refreshed` (ascending)
    with the reports of every new holder; erase the versions they replace (each node once it
    holds those reports itself)."""

    session_id: SessionId
    refreshed: tuple[ServerKeyId, ...]


@message(0x0C03)
@dataclass(frozen=True, slots=True)
class RefreshFinished:
    """Node -> master: old versions erased here (`erased`: how many keys were rewritten)."""

    session_id: SessionId
    erased: int
