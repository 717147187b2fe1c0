"""communities.v1.Roles."""

from __future__ import annotations

from google.protobuf import empty_pb2

from communities.api import convert
from communities.api.calls import current_principal
from communities.services import roles as service
from communities.services.context import App
from communities.v1 import roles_pb2_grpc


def _optional(message, *names: str) -> dict:
    return {name: getattr(message, name) if message.HasField(name) else None for name in names}


class RolesServicer(roles_pb2_grpc.RolesServicer):
    def __init__(self, app: App):
        self.app = app

    async def GetRoles(self, request, context):
        return convert.community_roles(await service.get_roles(self.app, current_principal(), request.community_id))

    async def CreateRole(self, request, context):
        record = await service.create_role(
            self.app,
            current_principal(),
            request.community_id,
            name=request.name,
            permissions=request.permissions,
            priority=request.priority,
            color=request.color,
            separated=request.separated,
            public=request.public,
        )
        return convert.role(record)

    async def EditRole(self, request, context):
        changes = _optional(request, "name", "permissions", "priority", "color", "separated", "public")
        record = await service.edit_role(
            self.app, current_principal(), request.community_id, request.role_id, **changes
        )
        return convert.role(record)

    async def DeleteRole(self, request, context):
        await service.delete_role(self.app, current_principal(), request.community_id, request.role_id)
        return empty_pb2.Empty()

    async def EditDefaultPermissions(self, request, context):
        view = await service.edit_default_permissions(
            self.app, current_principal(), request.community_id, request.permissions
        )
        return convert.community_roles(view)

    async def ExplainPermissions(self, request, context):
        view = await service.explain_permissions(
            self.app,
            current_principal(),
            request.community_id,
            request.user_id,
            request.channel_id if request.HasField("channel_id") else None,
        )
        if view.encoded is None:  # possibly cached (services/roles.py): so is its message, never mutated
            view.encoded = convert.explanation(view)
        return view.encoded
