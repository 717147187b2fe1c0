// Clients of the public API over the Connect protocol, on the page's own origin (the server bridges to the same
// servicers the gRPC port serves).
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { Channels } from "./gen/communities/v1/channels_pb";
import { Communities } from "./gen/communities/v1/communities_pb";
import { Invites } from "./gen/communities/v1/invites_pb";
import { Members } from "./gen/communities/v1/members_pb";
import { Roles } from "./gen/communities/v1/roles_pb";
import { Updates } from "./gen/communities/v1/updates_pb";
import { Users } from "./gen/communities/v1/users_pb";

export function makeApi(authorization: string) {
  const auth: Interceptor = (next) => (request) => {
    request.header.set("authorization", authorization);
    return next(request);
  };
  const transport = createConnectTransport({
    baseUrl: location.origin,
    useBinaryFormat: true,
    interceptors: [auth],
  });
  return {
    channels: createClient(Channels, transport),
    communities: createClient(Communities, transport),
    invites: createClient(Invites, transport),
    members: createClient(Members, transport),
    roles: createClient(Roles, transport),
    updates: createClient(Updates, transport),
    users: createClient(Users, transport),
  };
}

export type Api = ReturnType<typeof makeApi>;
