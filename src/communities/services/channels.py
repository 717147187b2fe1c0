"""Use cases of the Channels service: channels, categories, and permission overrides."""

from __future__ import annotations

from dataclasses import dataclass

from communities.domain import validation
from communities.domain.channels import ChannelType
from communities.domain.errors import FailedPrecondition, InvalidArgument, LimitReached, NotFound
from communities.domain.permissions import Override, Permission, channel_permissions, community_permissions
from communities.services.access import (
    ChannelAccess,
    read_membership,
    require_channel,
    require_flag,
    require_held,
    require_membership,
    require_permission,
)
from communities.services.context import App, Principal
from communities.storage import channels as channels_repo
from communities.storage import roles as roles_repo
from communities.storage.channels import ChannelRecord
from communities.storage.database import UnitOfWork
from communities.updates import publish


@dataclass(slots=True)
class ChannelView:
    channel: ChannelRecord
    permissions: int  # the caller's


class ChannelViews(list):
    """GetChannels' answer as kept in app.channel_lists; `encoded` is the API's message for it, built once and
    kept with it (same key, same lifetime)."""

    __slots__ = ("encoded",)

    def __init__(self, views=()):
        super().__init__(views)
        self.encoded = None


@dataclass(frozen=True)
class OverrideView:
    channel_id: int
    role_id: int
    allow: int
    deny: int


def _channel_type(value: int) -> ChannelType:
    try:
        return ChannelType(value)
    except ValueError:
        raise InvalidArgument.field("type", f"unknown channel type {value}") from None


async def _require_parent(uow: UnitOfWork, community_id: int, parent_id: int, principal: Principal) -> ChannelRecord:
    """A category of the community that the caller can see; one it cannot see is as unknown as a made-up id."""
    try:
        parent = (await require_channel(uow, parent_id, principal)).channel
    except NotFound:
        raise NotFound.of("CHANNEL", "Unknown parent channel") from None
    if parent.community_id != community_id:
        raise NotFound.of("CHANNEL", "Unknown parent channel")
    if parent.type != ChannelType.CATEGORY:
        raise FailedPrecondition(
            "A parent must be a category", reason="PARENT_NOT_CATEGORY", metadata={"parent_id": str(parent_id)}
        )
    return parent


async def get_channels(app: App, principal: Principal, community_id: int) -> ChannelViews:
    """Channels the caller can view. What it sees depends only on the community's channels and overrides (their
    version number changes with each of their changes) and on the caller's standing (owner, default
    permissions, its roles and their bits), so the answer is kept per such key and reused while nothing of it
    changes: each server's copy stays right because the version is read from the database on every call."""
    # The version and the standing in one statement of their own: when the list is known, that is all.
    views = app.channel_lists.get(_list_key(await read_membership(app.db, community_id, principal)))
    if views is not None:
        return views
    async with app.db.unit_of_work(write=False) as uow:
        # Read again with the channels, so that the list is kept under the version it was read with.
        membership = await require_membership(uow, community_id, principal)
        channels = await channels_repo.channels_of(uow, community_id)
        overrides = await channels_repo.overrides_for_member(uow, community_id, principal.id)
    member = membership.member
    base = community_permissions(member)
    no_overrides: dict = {}
    views = ChannelViews()
    for channel in channels:
        permissions = channel_permissions(member, overrides.get(channel.id, no_overrides), base)
        if permissions:  # 0 exactly when VIEW_CHANNEL is missing
            views.append(ChannelView(channel, permissions))
    app.channel_lists.put(_list_key(membership), views)
    return views


def _list_key(membership) -> tuple:
    member = membership.member
    return (
        membership.community.id,
        membership.community.channels_version,
        member.is_owner,
        member.default_permissions,
        tuple(sorted((role.id, role.permissions) for role in member.roles)),
    )


async def create_channel(
    app: App,
    principal: Principal,
    community_id: int,
    *,
    name: str,
    channel_type: int,
    parent_id: int | None,
    position: int | None,
) -> ChannelView:
    name = validation.clean_name(name)
    kind = _channel_type(channel_type)
    if position is not None:
        validation.position(position)
    channel_id = app.ids.next_id()
    async with app.db.unit_of_work(write=True) as uow:
        membership = await require_membership(uow, community_id, principal)
        require_permission(membership, Permission.MODIFY_CHANNEL)
        parent = None
        if parent_id:
            parent = await _require_parent(uow, community_id, parent_id, principal)
            if kind == ChannelType.CATEGORY:
                raise FailedPrecondition("Categories cannot be nested", reason="CATEGORY_IN_CATEGORY")
        if not await channels_repo.claim_channel_slot(uow, community_id, validation.CHANNELS_PER_COMMUNITY):
            raise LimitReached("channels_per_community", validation.CHANNELS_PER_COMMUNITY)
        if position is None:
            # After its siblings, but never past the bound: at the bound it shares the position and still sorts
            # last (by id). Every stored position must fit Channel.position (int32): the answer is converted to
            # proto only after this unit of work has committed, too late to undo a value it cannot carry.
            highest = await channels_repo.highest_position(uow, community_id, parent.id if parent else None)
            position = validation.position_after(highest)
        channel = ChannelRecord(
            id=channel_id,
            community_id=community_id,
            name=name,
            type=int(kind),
            parent_id=parent.id if parent else None,
            position=position,
        )
        await channels_repo.insert_channel(
            uow,
            channel_id=channel.id,
            community_id=channel.community_id,
            name=channel.name,
            channel_type=channel.type,
            parent_id=channel.parent_id,
            position=channel.position,
            now_ms=app.clock_ms(),
        )
        overrides = await channels_repo.copy_overrides(uow, parent.id, channel_id) if parent is not None else {}
        # As just written, with the caller's permissions even when it cannot view it (it just made it so).
        access = ChannelView(channel, channel_permissions(membership.member, overrides))
        await publish.channel_created(app, uow, principal.id, access.channel)
    return access


async def require_channel_or_created(uow: UnitOfWork, channel_id: int, principal: Principal) -> ChannelView:
    """The channel with the caller's permissions, even when the caller cannot view it (it just made it so)."""
    channel = await channels_repo.get_channel(uow, channel_id)
    assert channel is not None
    membership = await require_membership(uow, channel.community_id, principal)
    overrides = await channels_repo.overrides_of(uow, channel_id)
    return ChannelView(channel, channel_permissions(membership.member, overrides))


async def _require_modify(uow: UnitOfWork, channel_id: int, principal: Principal) -> ChannelAccess:
    access = await require_channel(uow, channel_id, principal)
    require_flag(access.permissions, Permission.MODIFY_CHANNEL)
    return access


async def edit_channel(
    app: App,
    principal: Principal,
    channel_id: int,
    *,
    name: str | None,
    position: int | None,
    parent_id: int | None,
) -> ChannelView:
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = validation.clean_name(name)
    if position is not None:
        values["position"] = validation.position(position)
    async with app.db.unit_of_work(write=True) as uow:
        access = await _require_modify(uow, channel_id, principal)
        if parent_id is not None:
            if parent_id == 0:
                values["parent_id"] = None
            else:
                if parent_id == channel_id:
                    raise FailedPrecondition("A channel cannot be its own parent", reason="PARENT_NOT_CATEGORY")
                await _require_parent(uow, access.channel.community_id, parent_id, principal)
                if access.channel.type == ChannelType.CATEGORY:
                    raise FailedPrecondition("Categories cannot be nested", reason="CATEGORY_IN_CATEGORY")
                values["parent_id"] = parent_id
        await channels_repo.update_channel(uow, channel_id, **values)
        view = await require_channel_or_created(uow, channel_id, principal)
        if values:
            await publish.channel_updated(app, uow, principal.id, view.channel)
    return view


async def delete_channel(app: App, principal: Principal, channel_id: int) -> None:
    async with app.db.unit_of_work(write=True) as uow:
        access = await _require_modify(uow, channel_id, principal)
        channel = access.channel
        deleted = await channels_repo.delete_channel(uow, channel)
        if deleted is None:
            raise NotFound.of("CHANNEL")  # deleted by a racing call since it was read
        await publish.channel_deleted(app, uow, principal.id, channel.community_id, channel.id, access.overrides)
        # What else the deletion changed, so that a stream's copy of the community stays right.
        for child in deleted.children:
            await publish.channel_updated(app, uow, principal.id, child)
        if deleted.was_system_channel:
            community = access.membership.community
            await publish.settings_updated(app, uow, principal.id, community.id, None, community.join_messages)


async def get_overrides(app: App, principal: Principal, channel_id: int) -> list[OverrideView]:
    async with app.db.unit_of_work(write=False) as uow:
        access = await _require_modify(uow, channel_id, principal)
    return [
        OverrideView(channel_id, target_id, override.allow, override.deny)
        for target_id, override in sorted(access.overrides.items())
    ]


async def create_override(
    app: App, principal: Principal, channel_id: int, role_id: int, allow: int, deny: int
) -> OverrideView:
    validation.permission_mask(allow, "overrides.pos")
    validation.permission_mask(deny, "overrides.neg")
    if allow & deny:
        raise InvalidArgument.field("overrides", f"bits {allow & deny:#x} are both allowed and denied")
    if (allow | deny) & Permission.ADMINISTRATOR:
        # ADMINISTRATOR works at community level only (it bypasses overrides); in an override it would mislead.
        raise InvalidArgument.field("overrides", "ADMINISTRATOR cannot be allowed or denied in a channel")
    async with app.db.unit_of_work(write=True) as uow:
        access = await _require_modify(uow, channel_id, principal)
        community_id = access.channel.community_id
        if role_id != community_id and await roles_repo.get_role(uow, community_id, role_id) is None:
            raise NotFound.of("ROLE")
        # Only bits the caller holds in this channel may be allowed or denied (owner and administrators hold all).
        held = access.permissions
        previous = access.overrides.get(role_id, Override(0, 0))
        changed = (allow ^ previous.allow) | (deny ^ previous.deny)
        require_held(held, changed, "Channel override")
        await channels_repo.upsert_override(uow, channel_id, role_id, Override(allow=allow, deny=deny))
        await publish.override_updated(app, uow, principal.id, community_id, channel_id, role_id, allow, deny)
    return OverrideView(channel_id, role_id, allow, deny)


async def delete_override(app: App, principal: Principal, channel_id: int, role_id: int) -> None:
    async with app.db.unit_of_work(write=True) as uow:
        access = await _require_modify(uow, channel_id, principal)
        if not await channels_repo.delete_override(uow, channel_id, role_id):
            raise NotFound.of("ROLE", "This channel has no override for that role")
        community_id = access.channel.community_id
        await publish.override_deleted(app, uow, principal.id, community_id, channel_id, role_id)
