"""Which session may write which key on this node: one writer per key at a time (pure).

A session that writes one key (generation, store, delete) claims it when it joins the session
table; an admin session that writes many keys in turn (refresh) claims each key when it starts
on it. A claim is held until its session releases it or leaves the table; a second session
that wants a claimed key is refused (`claim` answers False), so two read-modify-writes of one
key record never interleave.
"""

from __future__ import annotations

from secretstore.types import ServerKeyId, SessionId


class KeyClaims:
    """Key id → the session writing it; every claim of a session goes when it ends."""

    __slots__ = ("_by_key", "_by_session")

    def __init__(self) -> None:
        self._by_key: dict[ServerKeyId, SessionId] = {}
        self._by_session: dict[SessionId, set[ServerKeyId]] = {}

    def holder(self, key_id: ServerKeyId) -> SessionId | None:
        """The session writing `key_id`, or None."""
        return self._by_key.get(key_id)

    def claim(self, key_id: ServerKeyId, session_id: SessionId) -> bool:
        """Claim `key_id` for `session_id`: True when it was free or is this session's."""
        holder = self._by_key.get(key_id)
        if holder is not None:
            return holder == session_id
        self._by_key[key_id] = session_id
        self._by_session.setdefault(session_id, set()).add(key_id)
        return True

    def release(self, key_id: ServerKeyId, session_id: SessionId) -> None:
        """Give up `session_id`'s claim of `key_id` (nothing if it holds none)."""
        if self._by_key.get(key_id) != session_id:
            return
        del self._by_key[key_id]
        keys = self._by_session.get(session_id)
        if keys is not None:
            keys.discard(key_id)
            if not keys:
                del self._by_session[session_id]

    def release_all(self, session_id: SessionId) -> None:
        """Every claim of `session_id` (it has ended)."""
        for key_id in self._by_session.pop(session_id, ()):
            if self._by_key.get(key_id) == session_id:
                del self._by_key[key_id]

    def __len__(self) -> int:
        return len(self._by_key)
