"""communities.v1.Users."""

from __future__ import annotations

from communities.api import convert
from communities.api.calls import current_principal
from communities.services import users as service
from communities.services.context import App
from communities.storage.repository import UserRecord
from communities.v1 import users_pb2, users_pb2_grpc


class UsersServicer(users_pb2_grpc.UsersServicer):
    def __init__(self, app: App):
        self.app = app

    async def GetSelf(self, request, context):
        principal = current_principal()
        return convert.user(UserRecord(id=principal.id, name=principal.name, bot=principal.bot))

    async def GetUsers(self, request, context):
        records = await service.get_users(self.app, current_principal(), list(request.user_ids))
        return users_pb2.UserList(users=[convert.user(record) for record in records])
