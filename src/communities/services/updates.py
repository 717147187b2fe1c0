"""Use cases of the Updates service: a caller's stream of what happens in its communities.

A stream follows the global event stream (storage/events.py) from its cursor through the process's hub
(updates/hub.py) and keeps only what the caller may see when the event is sent: membership of the community,
the channel's visibility for channel events, the audience of invite and ban events. What it needs to decide that
(the caller's memberships, channel overrides) it loads once and reloads when an event changes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from communities.domain import paging
from communities.domain.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from communities.domain.permissions import Permission, channel_permissions, community_permissions
from communities.services.context import App, Principal
from communities.storage import channels as channels_repo
from communities.storage import events as events_repo
from communities.storage import presence as presence_repo
from communities.storage import repository as repo
from communities.storage.events import AUDIENCE_INVITE, AUDIENCE_PERMISSION, AUDIENCE_USER, EventRow
from communities.updates.hub import Hub
from communities.updates.publish import decode_overrides

# Presence rows outlive their stream this long (well past any temporary membership grace period).
PRESENCE_KEPT_MS = 24 * 3600 * 1000

# Events that change what a member may do in the community: the viewer reloads its standing there.
_STANDING_CHANGES = frozenset({"role_updated", "role_deleted", "default_permissions_updated"})
# Events about a member leaving, under their audit action names.
_LEFT = frozenset({"member_left", "member_kicked", "member_banned", "member_expired"})


def encode_cursor(position: int) -> str:
    return paging.encode("u", position)


def decode_cursor(cursor: str) -> int:
    parts = paging.decode_parts(cursor, 2, "cursor")
    if parts is None or parts[0] != "u" or not parts[1].isdigit() or len(parts[1]) > 18:
        raise InvalidArgument.field("cursor", "is not a cursor this service gave out (send '' to start from now)")
    return int(parts[1])


READY = "ready"
CHECKPOINT = "checkpoint"
# A stream that moved past updates its caller may not see, and sent nothing for this long, sends a checkpoint.
CHECKPOINT_SECONDS = 60.0


@dataclass(slots=True)
class Delivery:
    """An event the caller may see, with what its message needs filled in for this caller (its cursor is the
    event's position); or, with `event` None, a `kind` of update of the stream itself (READY, CHECKPOINT)."""

    event: EventRow | None
    cursor: str = ""
    membership: repo.Membership | None = None
    permissions: int = 0  # the caller's community permissions
    channel_permissions: int = 0  # in the event's channel, if it has one
    kind: str = ""


class Viewer:
    """What one caller may see, kept current as events arrive."""

    def __init__(self, app: App, hub: Hub, user_id: int):
        self._app = app
        self._hub = hub
        self.user_id = user_id
        self.memberships: dict[int, repo.Membership] = {}

    async def load(self) -> None:
        self.memberships = {m.community.id: m for m in await repo.memberships_of(self._app.db, self.user_id)}

    async def _reload(self, community_id: int, *, keep: bool = False) -> repo.Membership | None:
        """The caller's membership as it is now. With `keep`, a membership that is gone now (left, removed, the
        community deleted, after the event being decided) stays until the event that ends it comes along."""
        async with self._app.db.unit_of_work(write=False) as uow:
            membership = await repo.membership(uow, community_id, self.user_id)
        if membership is None:
            if keep:
                return self.memberships.get(community_id)
            self.memberships.pop(community_id, None)
        else:
            self.memberships[community_id] = membership
        return membership

    async def _overrides(self, channel_id: int) -> dict:
        cached = self._hub.cached_overrides(channel_id)
        if cached is not None:
            return cached
        head = self._hub.head
        async with self._app.db.unit_of_work(write=False) as uow:
            overrides = await channels_repo.overrides_of(uow, channel_id)
        if self._hub.head == head:  # no change of overrides was read meanwhile: safe to share
            self._hub.cache_overrides(channel_id, overrides)
        return overrides

    async def deliverable(self, event: EventRow) -> Delivery | None:
        user_id = self.user_id
        if event.audience == AUDIENCE_USER:
            return Delivery(event) if event.audience_user_id == user_id else None
        community_id = event.community_id
        kind = event.kind
        about_me = event.target_id == user_id
        if about_me and kind == "member_joined":
            membership = await self._reload(community_id)  # its events start here
        elif about_me and kind in _LEFT:
            membership = self.memberships.pop(community_id, None)  # delivered, and its events end
        elif kind == "community_deleted":
            membership = self.memberships.pop(community_id, None)
        elif community_id not in self.memberships:
            return None
        elif kind in _STANDING_CHANGES or (about_me and kind == "member_updated"):
            membership = await self._reload(community_id, keep=True)
        else:
            membership = self.memberships[community_id]
        if membership is None:
            return None
        permissions = community_permissions(membership.member)
        if (
            event.audience == AUDIENCE_PERMISSION
            and not permissions & event.audience_permission
            and event.audience_user_id != user_id
        ):
            return None
        in_channel = 0
        if event.channel_id is not None:
            overrides = (
                decode_overrides(event.overrides)
                if event.overrides is not None
                else await self._overrides(event.channel_id)
            )
            in_channel = channel_permissions(membership.member, overrides)
            if not in_channel & Permission.VIEW_CHANNEL:
                return None
        if (
            event.audience == AUDIENCE_INVITE
            and event.audience_user_id != user_id
            and not permissions & Permission.MODIFY_COMMUNITY
            and not in_channel & Permission.MODIFY_CHANNEL
        ):
            return None
        return Delivery(event, "", membership, permissions, in_channel)


async def subscribe(app: App, principal: Principal, cursor: str) -> AsyncIterator[Delivery]:
    """The caller's updates from `cursor` ('' = from now): the missed ones, READY, then live ones, until the caller
    goes away, its token is revoked, or the server stops."""
    hub, streams, credentials = app.hub, app.streams, app.credentials
    assert hub is not None and streams is not None, "a running server sets up the update machinery"
    if credentials is not None:
        streams.follow(credentials)  # revocations end streams from the feed
    generation = credentials.generation if credentials is not None else 0
    if app.sequence_committed is not None:
        # So that the catch-up includes every change committed before this call; concurrent subscriptions share
        # one run of the sequencer.
        await hub.after_run_of(app.sequence_committed)
    head = await events_repo.head(app.db)
    if cursor:
        position = decode_cursor(cursor)
        if position < head.swept_position:
            raise FailedPrecondition(
                "This cursor is older than the server keeps updates: reload your state and subscribe with an "
                "empty cursor",
                reason="CURSOR_EXPIRED",
            )
        if position > head.last_position:
            raise InvalidArgument.field("cursor", "is ahead of this service's updates (another database?)")
    else:
        position = head.last_position
    viewer = Viewer(app, hub, principal.id)
    await viewer.load()
    stream = await streams.open(principal.id, principal.credential, principal.expires_ms)
    try:
        if credentials is not None and credentials.generation != generation:
            await streams.check(stream)  # a revocation was seen since this call was authenticated: is it ours?
        caught_up_at = head.last_position
        ready_sent = False
        sent_position = position
        last_sent = time.monotonic()
        while True:
            stream.woken = False
            if stream.revoked:
                raise Unauthenticated("The token of this stream was revoked")
            if principal.expires_ms is not None and app.clock_ms() >= principal.expires_ms:
                raise Unauthenticated(
                    "The JSON Web Token of this stream has expired: subscribe again with a new one and your cursor",
                    reason="JWT_EXPIRED",
                )
            if not ready_sent and position >= caught_up_at:
                ready_sent = True
                yield Delivery(None, encode_cursor(position), kind=READY)
                sent_position = position
                last_sent = time.monotonic()
            elif ready_sent and position != sent_position and time.monotonic() - last_sent >= CHECKPOINT_SECONDS:
                # Moved past updates this caller may not see: a cursor to save, so it never falls behind retention.
                yield Delivery(None, encode_cursor(position), kind=CHECKPOINT)
                sent_position = position
                last_sent = time.monotonic()
            if hub.head <= position:
                if hub.head < caught_up_at:
                    hub.poke()  # it has not read up to where this stream must catch up yet
                # Woken by news, or by the registry: revoked, expired, or (when it moved past updates it did not
                # send) a checkpoint due.
                due = ready_sent and position != sent_position
                stream.wake_at = last_sent + CHECKPOINT_SECONDS if due else None
                await hub.wait_beyond(position, stream)
                continue
            sent = False
            for event in await hub.read_after(position):
                position = event.position
                delivery = await viewer.deliverable(event)
                if delivery is not None:
                    yield delivery
                    sent = True
                    sent_position = position
                    last_sent = time.monotonic()
                if not ready_sent and position >= caught_up_at:
                    break
            if not sent:  # sending yields to the loop; a page of nothing to send lets other streams and calls in
                await asyncio.sleep(0)
    finally:
        await streams.close(stream)


async def sweep_events(app: App, retention_ms: int) -> int:
    """Forget events older than the retention, and presence rows nobody needs any more."""
    if app.sequence_committed is not None:
        await app.sequence_committed()  # only positioned events are swept
    now = app.clock_ms()
    async with app.db.unit_of_work(write=True) as uow:
        swept = await events_repo.sweep(uow, now - retention_ms)
        await presence_repo.forget_before(uow, now - PRESENCE_KEPT_MS)
    return swept
