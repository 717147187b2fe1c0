"""communities.v1.Members."""

from __future__ import annotations

from google.protobuf import empty_pb2

from communities.api import convert
from communities.api.calls import current_principal
from communities.services import members as service
from communities.services.context import App
from communities.v1 import members_pb2, members_pb2_grpc


class MembersServicer(members_pb2_grpc.MembersServicer):
    def __init__(self, app: App):
        self.app = app

    async def GetMembers(self, request, context):
        records = await service.get_members(
            self.app, current_principal(), request.community_id, list(request.member_ids)
        )
        return members_pb2.CommunityMembers(members=[convert.member(record) for record in records])

    async def ListMembers(self, request, context):
        page = await service.list_members(
            self.app, current_principal(), request.community_id, request.page_size, request.page_token
        )
        return members_pb2.CommunityMembers(
            members=[convert.member(record) for record in page.items], next_page_token=page.next_page_token
        )

    async def EditMember(self, request, context):
        record = await service.edit_member(
            self.app,
            current_principal(),
            request.community_id,
            request.member_id,
            nickname=request.nickname if request.HasField("nickname") else None,
            role_ids=list(request.role_ids.ids) if request.HasField("role_ids") else None,
        )
        return convert.member(record)

    async def RemoveMembers(self, request, context):
        ban = request.HasField("until")
        until_ms = None
        # The zero Timestamp (exactly: 0 seconds, 0 nanos) is a permanent ban; any other is a time.
        if ban and (request.until.seconds or request.until.nanos):
            until_ms = convert.request_time_ms(request.until, "until")
        await service.remove_members(
            self.app,
            current_principal(),
            request.community_id,
            list(request.member_ids),
            ban=ban,
            until_ms=until_ms,
            reason=request.reason if request.HasField("reason") else None,
        )
        return empty_pb2.Empty()

    async def GetRemovedMembers(self, request, context):
        page = await service.get_removed_members(
            self.app, current_principal(), request.community_id, request.page_size, request.page_token
        )
        return members_pb2.RemovedMembers(
            removed=[convert.removed_member(record) for record in page.items], next_page_token=page.next_page_token
        )

    async def UnbanMembers(self, request, context):
        await service.unban_members(self.app, current_principal(), request.community_id, list(request.user_ids))
        return empty_pb2.Empty()
