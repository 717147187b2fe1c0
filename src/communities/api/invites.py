"""communities.v1.Invites."""

from __future__ import annotations

from google.protobuf import empty_pb2

from communities.api import convert
from communities.api.calls import current_principal
from communities.services import invites as service
from communities.services.context import App
from communities.v1 import invites_pb2, invites_pb2_grpc


class InvitesServicer(invites_pb2_grpc.InvitesServicer):
    def __init__(self, app: App):
        self.app = app

    async def CreateInvite(self, request, context):
        view = await service.create_invite(
            self.app,
            current_principal(),
            request.channel_id,
            max_age=request.max_age if request.HasField("max_age") else None,
            max_uses=request.max_uses if request.HasField("max_uses") else None,
            unique=request.unique,
            role_ids=list(request.role_ids),
            target_users_file=request.target_users_file,
            temporary=request.temporary,
        )
        return convert.invite(view)

    async def LookupInvite(self, request, context):
        return convert.invite_preview(await service.lookup_invite(self.app, current_principal(), request.code))

    async def UseInvite(self, request, context):
        return convert.community(await service.use_invite(self.app, current_principal(), request.code))

    async def ListInvites(self, request, context):
        scope = request.WhichOneof("scope")
        views, token = await service.list_invites(
            self.app,
            current_principal(),
            community_id=request.community_id if scope == "community_id" else None,
            channel_id=request.channel_id if scope == "channel_id" else None,
            include_inactive=request.include_inactive,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return invites_pb2.InviteList(invites=[convert.invite(view) for view in views], next_page_token=token)

    async def DeleteInvite(self, request, context):
        await service.delete_invite(self.app, current_principal(), request.code)
        return empty_pb2.Empty()

    async def GetTargetUsers(self, request, context):
        data = await service.get_target_users(self.app, current_principal(), request.code)
        return invites_pb2.TargetUsersFile(target_users_file=data)

    async def UpdateTargetUsers(self, request, context):
        view = await service.update_target_users(self.app, current_principal(), request.code, request.target_users_file)
        return convert.job_status(view)

    async def GetTargetUsersJobStatus(self, request, context):
        return convert.job_status(await service.get_job_status(self.app, current_principal(), request.code))
