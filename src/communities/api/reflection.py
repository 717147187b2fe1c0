"""Server reflection that documents itself: the descriptors served carry the proto comments (source info), so
`grpcurl describe communities.v1.RemoveMembers` says what `until` means, and every message and enum of the
contract (CommunityPermission included) resolves. protoc's Python modules drop comments, so scripts/generate.sh
also writes the descriptor set with source info (generated/communities/v1/descriptors.binpb) that this serves.
Symbols of other files (health, reflection itself) come from the default pool, without comments."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

from communities.v1 import communities_pb2

DESCRIPTOR_SET = "descriptors.binpb"
SERVICE_NAMES = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    # Next to the generated modules (communities.v1 is a namespace package: no resources.files() of its own).
    data = Path(communities_pb2.__file__).with_name(DESCRIPTOR_SET).read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


def _without_json_names(messages) -> None:
    """protoc fills in each field's json_name (lowerCamelCase); grpcurl would then print `communityUserInfo`.
    The served descriptors leave it out, as the Python modules' descriptors do, so JSON keeps the proto names."""
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _without_json_names(message.nested_type)


class DocumentedReflection(reflection.aio.ReflectionServicer):
    def __init__(self, service_names):
        super().__init__(service_names)
        files = _descriptor_set()
        self._documented = descriptor_pool.DescriptorPool()
        for file in files.file:  # protoc lists dependencies before their dependents
            self._documented.Add(file)
        for file in files.file:
            _without_json_names(file.message_type)
        self._serialized = {file.name: file.SerializeToString() for file in files.file}

    def _respond(self, descriptor, request) -> reflection_pb2.ServerReflectionResponse:
        names: list[str] = []
        pending = [descriptor]
        while pending:  # the file and everything it imports, each once
            current = pending.pop()
            if current.name not in names:
                names.append(current.name)
                pending.extend(current.dependencies)
        return reflection_pb2.ServerReflectionResponse(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=[self._serialized[name] for name in names]
            ),
            original_request=request,
        )

    def _file_by_filename(self, request, filename):
        try:
            return self._respond(self._documented.FindFileByName(filename), request)
        except KeyError:
            return super()._file_by_filename(request, filename)

    def _file_containing_symbol(self, request, fully_qualified_name):
        # A method (`communities.v1.Updates.Subscribe`) lives in its service's file; the pool finds only the latter.
        parent = fully_qualified_name.rpartition(".")[0]
        for symbol in (fully_qualified_name, parent):
            try:
                return self._respond(self._documented.FindFileContainingSymbol(symbol), request)
            except KeyError:
                continue
        return super()._file_containing_symbol(request, fully_qualified_name)


def add_reflection(server: grpc.aio.Server, service_names: tuple[str, ...]) -> None:
    """Serve reflection under grpc.reflection.v1alpha and, wire-identical, grpc.reflection.v1 (for clients that
    insist on it); only v1alpha is advertised in the service list."""
    servicer = DocumentedReflection(service_names)
    for name in SERVICE_NAMES:
        handler = grpc.method_handlers_generic_handler(
            name,
            {
                "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                    servicer.ServerReflectionInfo,
                    request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                    response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
