"""A property of the update stream: for random plans of concurrent changes made through two servers, every
subscriber receives exactly the committed changes it may see, each once, in commit order per community.

What a subscriber may see is decided when the update is sent (API.md: "filtered by what it may see at that
moment"), so a channel hidden right after it was made may or may not show its first steps to those it is hidden
from, but never anything later.

Commit order is checked through causality (each client makes its changes to its own objects one after the other,
so the stream must show each object's history in the order it was made) and through the final state (replaying
the owner's updates rebuilds exactly what GetRoles and GetChannels answer)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    communities_pb2,
    invites_pb2,
    members_pb2,
    permissions_pb2,
    roles_pb2,
    roles_pb2_grpc,
)
from tests.support.updates import UpdateStream, settle

P = permissions_pb2.CommunityPermission
VIEW = P.COMMUNITY_PERMISSION_VIEW_CHANNEL

# A client's plan: a list of steps on objects of its own. Each step creates an object, or renames or deletes
# one it created earlier (by index among its objects; out of range = skipped).
STEP = st.one_of(
    st.tuples(st.just("create_role"), st.just(0)),
    st.tuples(st.just("create_channel"), st.booleans()),  # True: a staff-only channel
    st.tuples(st.just("rename"), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, 3)),
)
PLANS = st.lists(st.lists(STEP, min_size=1, max_size=6), min_size=2, max_size=4)


def _setup(communities_stub, roles_stub, channels_stub, invites_stub, members_stub, make_account):
    owner, staff, guest = make_account("owner"), make_account("staff"), make_account("guest")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="P"), metadata=owner.metadata)
    general = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    ).system_messages.channel_id
    staff_role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community.id, name="Staff", priority=10), metadata=owner.metadata
    )
    code = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, unique=True), metadata=owner.metadata
    ).code
    for account in (staff, guest):
        invites_stub.UseInvite(invites_pb2.UseInvite(code=code), metadata=account.metadata)
    members_stub.EditMember(
        members_pb2.EditMember(
            community_id=community.id, member_id=staff.id, role_ids=members_pb2.RoleIds(ids=[staff_role.id])
        ),
        metadata=owner.metadata,
    )
    return owner, staff, guest, community, staff_role


class Client:
    """Runs one plan through one server, recording the history of each object it touches."""

    def __init__(self, number: int, channel, owner, community_id: int, staff_role_id: int):
        self.number = number
        self.roles = roles_pb2_grpc.RolesStub(channel)
        self.channels = channels_pb2_grpc.ChannelsStub(channel)
        self.owner = owner
        self.community_id = community_id
        self.staff_role_id = staff_role_id
        self.objects: list[tuple[str, int]] = []  # (kind, id), in creation order
        self.history: dict[int, list[str]] = {}  # id -> ["created", "renamed:x", ..., "deleted"]
        self.staff_only: set[int] = set()

    def run(self, plan) -> None:
        metadata = self.owner.metadata
        for step_number, (action, argument) in enumerate(plan):
            name = f"c{self.number}s{step_number}"
            if action == "create_role":
                role = self.roles.CreateRole(
                    roles_pb2.CreateRole(community_id=self.community_id, name=name, priority=1), metadata=metadata
                )
                self.objects.append(("role", role.id))
                self.history[role.id] = [f"created:{name}"]
            elif action == "create_channel":
                channel = self.channels.CreateChannel(
                    channels_pb2.CreateChannel(community_id=self.community_id, name=name), metadata=metadata
                )
                self.objects.append(("channel", channel.id))
                self.history[channel.id] = [f"created:{name}"]
                if argument:  # hidden from everyone but Staff (who never lose sight of it), before anything else
                    for role_id, overrides in (
                        (self.staff_role_id, channels_pb2.PermissionOverrides(pos=VIEW)),
                        (self.community_id, channels_pb2.PermissionOverrides(neg=VIEW)),
                    ):
                        self.channels.CreateChannelOverride(
                            channels_pb2.CreateChannelOverride(
                                channel_id=channel.id, role_id=role_id, overrides=overrides
                            ),
                            metadata=metadata,
                        )
                        self.history[channel.id].append(f"override:{role_id}")
                    self.staff_only.add(channel.id)
            else:
                live = [item for item in self.objects if self.history[item[1]][-1] != "deleted"]
                if argument >= len(live):
                    continue
                kind, object_id = live[argument]
                if action == "rename":
                    if kind == "role":
                        self.roles.EditRole(
                            roles_pb2.EditRole(community_id=self.community_id, role_id=object_id, name=name),
                            metadata=metadata,
                        )
                    else:
                        self.channels.EditChannel(
                            channels_pb2.EditChannel(channel_id=object_id, name=name), metadata=metadata
                        )
                    self.history[object_id].append(f"renamed:{name}")
                else:
                    if kind == "role":
                        self.roles.DeleteRole(
                            roles_pb2.DeleteRole(community_id=self.community_id, role_id=object_id),
                            metadata=metadata,
                        )
                    else:
                        self.channels.DeleteChannel(channels_pb2.DeleteChannel(channel_id=object_id), metadata=metadata)
                    self.history[object_id].append("deleted")


def _histories(updates) -> dict[int, list[str]]:
    """Each object's history as the stream told it."""
    seen: dict[int, list[str]] = {}
    for update in updates:
        event = update.WhichOneof("event")
        if event in ("role_created", "channel_created"):
            message = getattr(update, event)
            seen.setdefault(message.id, []).append(f"created:{message.name}")
        elif event in ("role_updated", "channel_updated"):
            message = getattr(update, event)
            seen.setdefault(message.id, []).append(f"renamed:{message.name}")
        elif event == "role_deleted":
            seen.setdefault(update.role_deleted.role_id, []).append("deleted")
        elif event == "channel_deleted":
            seen.setdefault(update.channel_deleted.channel_id, []).append("deleted")
        elif event == "override_updated":
            seen.setdefault(update.override_updated.channel_id, []).append(
                f"override:{update.override_updated.role_id}"
            )
    return seen


def _final_state(updates, community_id: int) -> tuple[dict[int, str], dict[int, str]]:
    """Roles and channels (id -> name) after replaying the updates of the community."""
    roles: dict[int, str] = {}
    channels: dict[int, str] = {}
    for update in updates:
        if update.community_id != community_id:
            continue
        event = update.WhichOneof("event")
        if event in ("role_created", "role_updated"):
            roles[getattr(update, event).id] = getattr(update, event).name
        elif event == "role_deleted":
            roles.pop(update.role_deleted.role_id, None)
        elif event in ("channel_created", "channel_updated"):
            channels[getattr(update, event).id] = getattr(update, event).name
        elif event == "channel_deleted":
            channels.pop(update.channel_deleted.channel_id, None)
    return roles, channels


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=PLANS)
def test_every_subscriber_gets_exactly_what_it_may_see_in_commit_order(
    plans,
    grpc_channel,
    replica_channel,
    communities_stub,
    roles_stub,
    channels_stub,
    invites_stub,
    members_stub,
    make_account,
):
    owner, staff, guest, community, staff_role = _setup(
        communities_stub, roles_stub, channels_stub, invites_stub, members_stub, make_account
    )
    servers = [grpc_channel, replica_channel]
    clients = [Client(number, servers[number % 2], owner, community.id, staff_role.id) for number in range(len(plans))]
    with (
        UpdateStream(grpc_channel, owner.metadata) as by_owner,
        UpdateStream(replica_channel, staff.metadata) as by_staff,
        UpdateStream(replica_channel, guest.metadata) as by_guest,
    ):
        with ThreadPoolExecutor(len(plans)) as pool:
            list(pool.map(Client.run, clients, plans))
        settled = settle(members_stub, community.id, owner, by_owner, by_staff, by_guest)
        received = dict(zip(("owner", "staff", "guest"), settled, strict=True))

    made: dict[int, list[str]] = {}
    staff_only: set[int] = set()
    for client in clients:
        made.update(client.history)
        staff_only |= client.staff_only
    for who, updates in received.items():
        assert all(update.community_id == community.id for update in updates), who
        cursors = [update.cursor for update in updates]
        assert len(set(cursors)) == len(cursors), f"{who} got an update twice"
        seen = _histories(updates)
        for object_id, history in made.items():
            if who == "guest" and object_id in staff_only:
                # Visibility is decided when an update is sent: the guest may see the first steps, made while the
                # channel was still open to everyone (its creation and overrides), if they were sent before the
                # guest's stream saw it hidden; never a rename or deletion after that.
                got = seen.get(object_id, [])
                assert got == history[: len(got)] and len(got) <= 3, (who, object_id, got, history)
            else:
                assert seen.get(object_id) == history, (who, object_id, seen.get(object_id), history)
        assert set(seen) <= set(made), who

    roles, channels = _final_state(received["owner"], community.id)
    actual_roles = roles_stub.GetRoles(roles_pb2.GetRoles(community_id=community.id), metadata=owner.metadata)
    actual_channels = channels_stub.GetChannels(
        channels_pb2.GetChannels(community_id=community.id), metadata=owner.metadata
    )
    expected_roles = {role.id: role.name for role in actual_roles.roles if role.id in made}
    expected_channels = {channel.id: channel.name for channel in actual_channels.channels if channel.id in made}
    assert roles == expected_roles
    assert channels == expected_channels
