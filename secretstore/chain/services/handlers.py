"""What a node does for each service contract request, and with the end of each session one
started (Parity's listener rules, with ours where noted).

- Generation: a node that holds the key already with the request's author and threshold
  answers with its public (ours: a retried or restarted generation is answered, not failed);
  one that holds another key under that id answers with the error; otherwise only the key id's
  range owner starts the generation (its request read at the confirmed block), and every
  node's session outcome answers (sessions/origin.py).
- Server key retrieval: every node answers from its own database (the public and threshold,
  or the error when it has no such key).
- Document key store: every node stores it itself, no session (the author must be the server
  key's, nothing stored yet; the same document key stored again is answered as stored).
- Shadow retrieval, common part: every node checks the requester's access itself, then
  answers with the common point (negated for an odd threshold) and the threshold.
- Shadow retrieval, personal part: only the range owner starts the broadcast decryption; every
  member publishes its part from its session's outcome. A range owner that holds no share of
  the key (a node added to the set before a node set change gave it shares) delegates it to
  a holder (sessions/jobs/delegation.py) and publishes nothing itself.

A request that cannot be served for good (`is_final`: refused, no such key, bad input) is
answered with the contract's error; any other failure (a node not connected, a timeout, the
chain, a transaction) is logged and raised, and the listener tries again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from secretstore.chain.services.contracts import (
    Answer,
    CommonRetrieved,
    Failed,
    Generated,
    PersonalRetrieved,
    Retrieved,
    ServiceCalls,
    Stored,
    describe_request,
)
from secretstore.chain.services.origin import ContractOrigins
from secretstore.chain.services.owner import is_range_owner
from secretstore.chain.services.requests import (
    CommonRetrievalRequest,
    GenerationRequest,
    PersonalRetrievalRequest,
    ServerKeyRetrievalRequest,
    ServiceRequest,
    StoreRequest,
)
from secretstore.cluster.access import AccessPolicy
from secretstore.crypto.curve import Point
from secretstore.crypto.shadow import make_common_shadow_point
from secretstore.errors import (
    AccessDenied,
    CryptoError,
    DocumentKeyNotFound,
    InvalidRequest,
    SecretStoreError,
    ServerKeyNotFound,
)
from secretstore.keyserver import KeyServer
from secretstore.sessions.broadcast import PersonalShare, ServedByMembers
from secretstore.sessions.encryption import updated_share
from secretstore.sessions.origin import OriginClaim, OriginKind, OriginOutcome
from secretstore.storage.port import KeyStorage
from secretstore.types import Address, BlockRef, NodeId, ServerKeyId
from secretstore.wire.requester import ServiceOrigin

log = logging.getLogger(__name__)


class KeyBusy(SecretStoreError):
    """A session writes the key now; the store is tried again later."""


class NotConfirmed(SecretStoreError):
    """The range owner could not confirm the request on the contract at its block."""


def is_final(error: SecretStoreError) -> bool:
    """Whether a failure answers the request for good (the contract's error), rather than
    being tried again: refusals, a missing key, bad input."""
    return isinstance(
        error, InvalidRequest | AccessDenied | ServerKeyNotFound | DocumentKeyNotFound
    )


class ServiceHandlers:
    """One node's answers to service contract requests."""

    def __init__(
        self,
        self_id: NodeId,
        key_server: KeyServer,
        *,
        storage: KeyStorage,
        access: AccessPolicy,
        calls: ServiceCalls,
        origins: ContractOrigins,
        cluster: Callable[[], frozenset[NodeId]],
        is_writing: Callable[[ServerKeyId], bool],
    ) -> None:
        self._self_id = self_id
        self._key_server = key_server
        self._storage = storage
        self._access = access
        self._calls = calls
        self._origins = origins
        self._cluster = cluster
        self._is_writing = is_writing
        self._tasks: set[asyncio.Task[None]] = set()

    def owns(self, key_id: ServerKeyId) -> bool:
        """Whether this node is the range owner of `key_id` in the current set."""
        return is_range_owner(self._cluster(), self._self_id, key_id)

    # --- requests --------------------------------------------------------------------------
    async def handle(self, request: ServiceRequest, pin: BlockRef) -> None:
        """Serve one request (read at block `pin`, the confirmed block); raises what should
        be tried again."""
        if isinstance(request, GenerationRequest):
            await self._generation(request, pin)
        elif isinstance(request, ServerKeyRetrievalRequest):
            await self._server_key_retrieval(request)
        elif isinstance(request, StoreRequest):
            await self._store(request)
        elif isinstance(request, CommonRetrievalRequest):
            await self._common_retrieval(request)
        else:
            await self._personal_retrieval(request, pin)

    async def _answer(self, request: ServiceRequest, answer: Answer) -> None:
        if isinstance(answer, Failed):
            log.warning("%s cannot be served: %s", describe_request(request), answer.reason)
        await self._calls.publish(request, answer)

    async def _generation(self, request: GenerationRequest, pin: BlockRef) -> None:
        share = self._storage.get(request.key_id)
        if share is not None:
            if share.author == request.author and share.threshold == request.threshold:
                await self._answer(request, Generated(share.public))
            else:
                reason = "another server key with this id exists (another author or threshold)"
                await self._answer(request, Failed(reason))
            return
        if not self.owns(request.key_id):
            return  # the range owner starts it; this node answers from its session's outcome
        origin = ServiceOrigin(request.contract, pin, request.author)
        claim = OriginClaim(
            OriginKind.SERVER_KEY_GENERATION, origin, request.key_id, request.threshold
        )
        await self._confirm(claim)
        try:
            public = await self._key_server.generate_server_key_for_service(
                request.key_id, origin, request.threshold
            )
        except SecretStoreError as exc:
            if not is_final(exc):
                raise
            await self._answer(request, Failed(str(exc)))
            return
        await self._answer(request, Generated(public))

    async def _server_key_retrieval(self, request: ServerKeyRetrievalRequest) -> None:
        share = self._storage.get(request.key_id)
        if share is None:
            await self._answer(request, Failed("no such server key on this node"))
        else:
            await self._answer(request, Retrieved(share.public, share.threshold))

    async def _store(self, request: StoreRequest) -> None:
        try:
            common = Point.from_bytes(request.common_point)
            encrypted = Point.from_bytes(request.encrypted_point)
        except CryptoError as exc:
            await self._answer(request, Failed(f"the document key is not two points: {exc}"))
            return
        if self._is_writing(request.key_id):
            raise KeyBusy(f"a session writes key 0x{request.key_id.hex()} now")
        share = self._storage.get(request.key_id)
        if (
            share is not None
            and share.author == request.author
            and (share.common_point, share.encrypted_point) == (common, encrypted)
        ):
            await self._answer(request, Stored())  # stored before (a retry, a restart)
            return
        try:
            stored = updated_share(share, request.key_id, request.author, common, encrypted)
        except SecretStoreError as exc:
            await self._answer(request, Failed(str(exc)))
            return
        self._storage.update(request.key_id, stored)
        log.info(
            "stored the document key of key 0x%s for %s", request.key_id.hex(), _hex(request.author)
        )
        await self._answer(request, Stored())

    async def _common_retrieval(self, request: CommonRetrievalRequest) -> None:
        if not await self._access.check(request.requester, request.key_id):
            await self._answer(request, Failed("access denied"))
            return
        share = self._storage.get(request.key_id)
        if share is None:
            await self._answer(request, Failed("no such server key on this node"))
            return
        if share.common_point is None:
            await self._answer(request, Failed("no document key is stored with this key"))
            return
        common = make_common_shadow_point(share.threshold, share.common_point)
        await self._answer(request, CommonRetrieved(common, share.threshold))

    async def _personal_retrieval(self, request: PersonalRetrievalRequest, pin: BlockRef) -> None:
        if not self.owns(request.key_id):
            return  # the range owner starts it; members answer from their outcomes
        origin = ServiceOrigin(request.contract, pin, request.requester_public)
        await self._confirm(
            OriginClaim(OriginKind.DOCUMENT_KEY_PERSONAL_RETRIEVAL, origin, request.key_id)
        )
        try:
            share = await self._key_server.retrieve_document_key_personal(request.key_id, origin)
        except SecretStoreError as exc:
            if not is_final(exc):
                raise
            await self._answer(request, Failed(str(exc)))
            return
        if isinstance(share, ServedByMembers):
            log.info(
                "%s: served by node %s (this node holds no share); members %s publish",
                describe_request(request),
                share.delegate[:4].hex(),
                ", ".join(node[:4].hex() for node in share.participants),
            )
            return
        await self._answer(request, _personal(share))

    async def _confirm(self, claim: OriginClaim) -> None:
        """The master reads its own request at its block too, before it starts."""
        problem = await self._origins.verify(claim)
        if problem is not None:
            raise NotConfirmed(f"{claim.describe()}: {problem}")

    # --- the end of a session on a participant ---------------------------------------------
    def on_outcome(self, outcome: OriginOutcome) -> None:
        """A service session this node took part in ended: publish this node's answer (in a
        task of its own; a failure is logged and left to the listener's retry)."""
        request, answer = _outcome_answer(outcome)
        if answer is None:
            if outcome.error is not None:
                log.info(
                    "%s: this node's session failed: %s", outcome.claim.describe(), outcome.error
                )
            return
        task = asyncio.get_running_loop().create_task(self._publish_outcome(request, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_outcome(self, request: ServiceRequest, answer: Answer) -> None:
        try:
            await self._answer(request, answer)
        except SecretStoreError as exc:
            log.warning(
                "%s: answering failed, left to the retry: %s", describe_request(request), exc
            )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _personal(share: PersonalShare) -> PersonalRetrieved:
    return PersonalRetrieved(share.participants, share.decrypted_secret, share.decrypt_shadow)


def _outcome_answer(outcome: OriginOutcome) -> tuple[ServiceRequest, Answer | None]:
    claim, origin = outcome.claim, outcome.claim.origin
    request: ServiceRequest
    if claim.kind is OriginKind.SERVER_KEY_GENERATION:
        request = GenerationRequest(
            origin.contract, claim.key_id, Address(origin.requester), claim.threshold or 0
        )
        if isinstance(outcome.result, Point):
            return request, Generated(outcome.result)
    else:
        request = PersonalRetrievalRequest(origin.contract, claim.key_id, origin.requester)
        if isinstance(outcome.result, PersonalShare):
            return request, _personal(outcome.result)
    if outcome.error is not None and is_final(outcome.error):
        return request, Failed(str(outcome.error))
    return request, None


def _hex(address: Address) -> str:
    return "0x" + address.hex()
