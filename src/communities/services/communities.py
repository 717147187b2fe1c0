"""Use cases of the Communities service (the seed's `communities.*` methods)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from communities.domain import paging, validation
from communities.domain.channels import ChannelType
from communities.domain.errors import FailedPrecondition, InvalidArgument, LimitReached, NotFound, PermissionDenied
from communities.domain.permissions import DEFAULT_PERMISSIONS, MemberContext, Permission, community_permissions
from communities.services import blobs
from communities.services import messages as messages_service
from communities.services.access import require_membership, require_permission
from communities.services.context import App, Principal
from communities.storage import channels as channels_repo
from communities.storage import events as events_repo
from communities.storage import media as media_repo
from communities.storage import members as members_repo
from communities.storage import repository as repo
from communities.storage.members import MemberRecord
from communities.updates import publish

GENERAL_CHANNEL = "general"


@dataclass(slots=True)  # built for every community on hot paths: plain slots are cheapest
class CommunityView:
    """A community as the caller sees it (the proto `Community`)."""

    id: int
    owner: bool
    name: str
    photo_file_id: int | None
    photo_preview: bytes | None
    permissions: int
    muted: bool
    # The caller's unread messages and mentions over the channels it can view (services/messages.py).
    unread_count: int = 0
    unread_mention_count: int = 0


@dataclass(frozen=True)
class SettingsView:
    system_channel_id: int | None
    join_messages: bool


def view(membership: repo.Membership) -> CommunityView:
    community = membership.community
    return CommunityView(
        id=community.id,
        owner=membership.member.is_owner,
        name=community.name,
        photo_file_id=community.photo_file_id,
        photo_preview=community.photo_preview,
        permissions=community_permissions(membership.member),
        muted=membership.muted,
    )


def settings_view(community: repo.CommunityRecord) -> SettingsView:
    return SettingsView(system_channel_id=community.system_channel_id, join_messages=community.join_messages)


class CommunityViews(list):
    """GetCommunities' answer. Without unread counts it is kept in app.community_lists under the rows it was
    built from, with `memberships` and `encoded` (the API's message for it, built once)."""

    __slots__ = ("encoded", "memberships")

    def __init__(self, views=(), memberships: list[repo.Membership] | None = None):
        super().__init__(views)
        self.memberships = memberships
        self.encoded = None


async def get_communities(app: App, principal: Principal) -> CommunityViews:
    rows = await repo.membership_rows(app.db, principal.id)
    # The answer is a function of these rows and the caller alone: no version needed to reuse it.
    key = (principal.id, rows)
    known = app.community_lists.get(key)
    if known is None:
        memberships = repo.memberships_from_rows(rows, principal.id)
        known = CommunityViews((view(membership) for membership in memberships), memberships)
        app.community_lists.put(key, known)
    # One to three more statements for all the communities together (never one per community or message).
    totals = await messages_service.unread_totals(app, principal.id, known.memberships)
    if not totals:
        return known
    views = CommunityViews(dataclasses.replace(community) for community in known)  # the cached ones stay as read
    for community in views:
        counts = totals.get(community.id)
        if counts is not None:
            community.unread_count, community.unread_mention_count = counts
    return views


async def create_community(app: App, principal: Principal, name: str) -> CommunityView:
    name = validation.clean_name(name)
    community_id = app.ids.next_id()
    channel_id = app.ids.next_id()
    async with app.db.unit_of_work(write=True) as uow:
        if not await repo.claim_membership_slot(uow, principal.id, validation.COMMUNITIES_PER_USER):
            raise LimitReached(
                "communities_per_user",
                validation.COMMUNITIES_PER_USER,
                f"You are in {validation.COMMUNITIES_PER_USER} communities, the most a user can be in",
            )
        now = app.clock_ms()
        await repo.insert_community(
            uow,
            community_id=community_id,
            name=name,
            owner_id=principal.id,
            default_permissions=DEFAULT_PERMISSIONS,
            system_channel_id=channel_id,
            now_ms=now,
        )
        await channels_repo.insert_channel(
            uow,
            channel_id=channel_id,
            community_id=community_id,
            name=GENERAL_CHANNEL,
            channel_type=ChannelType.TEXT,
            parent_id=None,
            position=0,
            now_ms=now,
            new_community=True,
        )
        await members_repo.insert_member(uow, community_id, principal.id, now)
        owner = MemberRecord(principal.id, community_id, (), None, now, None)  # as just written: no read back
        await publish.member_joined(
            app, uow, owner, invite_code=None, inviter_id=None, granted_role_ids=(), temporary=False
        )
    # As just written: no read back.
    owner_context = MemberContext(
        community_id=community_id, is_owner=True, default_permissions=DEFAULT_PERMISSIONS, roles=()
    )
    return CommunityView(
        id=community_id,
        owner=True,
        name=name,
        photo_file_id=None,
        photo_preview=None,
        permissions=community_permissions(owner_context),
        muted=False,
    )


async def edit_community(app: App, principal: Principal, community_id: int, name: str | None) -> CommunityView:
    if name is not None:
        name = validation.clean_name(name)
    async with app.db.unit_of_work(write=True) as uow:
        membership = await require_membership(uow, community_id, principal)
        require_permission(membership, Permission.MODIFY_COMMUNITY)
        if name is not None:
            await repo.update_community(uow, community_id, name=name)
            membership = await require_membership(uow, community_id, principal)
            await publish.community_updated(app, uow, principal.id, membership.community)
    return view(membership)


async def leave_community(app: App, principal: Principal, community_id: int) -> None:
    async with app.db.unit_of_work(write=True) as uow:
        membership = await require_membership(uow, community_id, principal)
        if membership.member.is_owner:
            raise FailedPrecondition(
                "The owner cannot leave a community; delete it instead", reason="OWNER_CANNOT_LEAVE"
            )
        if not await members_repo.delete_member(uow, community_id, principal.id):
            raise NotFound.of("COMMUNITY")  # it was deleted, or we left, meanwhile
        await publish.member_left(app, uow, principal.id, community_id, principal.id, publish.LEFT)


async def delete_community(app: App, principal: Principal, community_id: int) -> None:
    async with app.db.unit_of_work(write=True) as uow:
        membership = await require_membership(uow, community_id, principal)
        if not membership.member.is_owner:
            raise PermissionDenied("Only the owner can delete a community", reason="NOT_OWNER")
        photo_key = None
        if membership.community.photo_file_id is not None:
            photo_key = await media_repo.delete_file(uow, membership.community.photo_file_id)
        if not await repo.delete_community(uow, community_id):
            raise NotFound.of("COMMUNITY")  # deleted by a racing call
        await publish.community_deleted(app, uow, principal.id, community_id)
    if photo_key is not None:
        await blobs.collect(app, photo_key)


async def get_settings(app: App, principal: Principal, community_id: int) -> SettingsView:
    async with app.db.unit_of_work(write=False) as uow:
        membership = await require_membership(uow, community_id, principal)
    return settings_view(membership.community)


async def edit_settings(
    app: App,
    principal: Principal,
    community_id: int,
    *,
    system_channel_id: int | None,
    join_messages: bool | None,
) -> SettingsView:
    """Merges: None leaves a field unchanged; system_channel_id 0 turns system messages off."""
    async with app.db.unit_of_work(write=True) as uow:
        membership = await require_membership(uow, community_id, principal)
        require_permission(membership, Permission.MODIFY_COMMUNITY)
        values: dict[str, object] = {}
        if system_channel_id is not None:
            if system_channel_id == 0:
                values["system_channel_id"] = None
            else:
                channel = await channels_repo.channel_in_community(uow, community_id, system_channel_id)
                if channel is None:
                    raise NotFound.of("CHANNEL")
                if channel.type != ChannelType.TEXT:
                    raise FailedPrecondition(
                        "System messages can only go to a text channel",
                        reason="CHANNEL_NOT_TEXT",
                        metadata={"channel_id": str(channel.id)},
                    )
                values["system_channel_id"] = channel.id
        if join_messages is not None:
            values["join_messages"] = join_messages
        await repo.update_community(uow, community_id, **values)
        membership = await require_membership(uow, community_id, principal)
        community = membership.community
        await publish.settings_updated(
            app, uow, principal.id, community_id, community.system_channel_id, community.join_messages
        )
    return settings_view(membership.community)


async def set_muted(app: App, principal: Principal, community_id: int, muted: bool) -> CommunityView:
    async with app.db.unit_of_work(write=True) as uow:
        await require_membership(uow, community_id, principal)
        await members_repo.set_member_muted(uow, community_id, principal.id, muted)
        membership = await require_membership(uow, community_id, principal)
    return view(membership)


AUDIT_PAGE_DEFAULT = 50
AUDIT_PAGE_MAX = 100


@dataclass(frozen=True)
class AuditPage:
    entries: list[events_repo.AuditRow]
    next_page_token: str


async def get_audit_log(
    app: App,
    principal: Principal,
    community_id: int,
    *,
    page_size: int,
    page_token: str,
    action: str | None,
    actor_id: int | None,
) -> AuditPage:
    size = validation.bounded(page_size, "page_size", AUDIT_PAGE_MAX) or AUDIT_PAGE_DEFAULT
    before = paging.decode(page_token)
    if action is not None and action not in publish.AUDIT_ACTIONS:
        raise InvalidArgument.field("action", f"unknown action; one of {', '.join(sorted(publish.AUDIT_ACTIONS))}")
    async with app.db.unit_of_work(write=False) as uow:
        membership = await require_membership(uow, community_id, principal)
        require_permission(membership, Permission.MODIFY_COMMUNITY)
        entries = await events_repo.audit_entries(
            uow, community_id, before_id=before, kind=action, actor_id=actor_id, limit=size + 1
        )
    more = len(entries) > size
    entries = entries[:size]
    return AuditPage(entries, paging.encode(entries[-1].id) if more else "")
