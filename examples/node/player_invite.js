// Role granting invite: a game's bot hands out an invite that gives every player who accepts it a Player role.
//
// The first walk-through of the community invites tutorial, on communities.v1 with @grpc/grpc-js and
// @grpc/proto-loader reading the project's .proto files.
//
// Environment:
//   COMMUNITIES_BOT_TOKEN     the bot's token (required; never put it in the code)
//   COMMUNITIES_ADDRESS       host:port of the server (default 127.0.0.1:50051)
//   COMMUNITIES_PLAYER_TOKEN  optional: a person's token; the script then accepts the invite as that player
//
// Run from the project root (after `npm ci`): node examples/node/player_invite.js
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const COMMUNITY_NAME = 'My Game';
const ROLE_NAME = 'Player';

// Load the services from protos/. Ids are fixed64: with `longs: String` they are decimal strings both ways.
const PROTO_DIR = path.resolve(__dirname, '../../protos');
const definition = protoLoader.loadSync(
  ['users', 'communities', 'roles', 'channels', 'members', 'invites'].map((n) => `communities/v1/${n}.proto`),
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] },
);
const v1 = grpc.loadPackageDefinition(definition).communities.v1;

// grpc-js calls take a callback; this turns one call into a promise.
function call(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

function authorization(scheme, token) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `${scheme} ${token}`);
  return metadata;
}

async function main(clients) {
  const { users, communities, roles, channels, invites, members } = clients;
  // Every call carries `authorization: Bot <token>` (people use `Bearer <token>`).
  const asBot = authorization('Bot', process.env.COMMUNITIES_BOT_TOKEN);

  const bot = await call(users, 'GetSelf', {}, asBot);
  console.log(`Signed in as bot ${bot.name} (${bot.id})`);

  // 1. The game's community: reuse the one the bot owns, or create it (the bot becomes its owner, with every
  //    permission: CREATE_INVITE to make invites and MODIFY_ROLES to let them grant roles).
  const owned = (await call(communities, 'GetCommunities', {}, asBot)).communities;
  let community = owned.find((c) => c.owner && c.name === COMMUNITY_NAME);
  if (!community) {
    community = await call(communities, 'CreateCommunity', { name: COMMUNITY_NAME }, asBot);
  }
  console.log(`Community: ${community.name} (${community.id})`);

  // 2. The Player role. An invite may only grant roles below the inviter's own rank; the owner outranks all.
  const existing = (await call(roles, 'GetRoles', { community_id: community.id }, asBot)).roles;
  let playerRole = existing.find((r) => r.name === ROLE_NAME);
  if (!playerRole) {
    playerRole = await call(roles, 'CreateRole', { community_id: community.id, name: ROLE_NAME, priority: 1 }, asBot);
  }
  console.log(`Role: ${playerRole.name} (${playerRole.id}, priority ${playerRole.priority})`);

  // 3. Where the invite leads: the community's system channel (`general` in a new community).
  const settings = await call(communities, 'GetSettings', { community_id: community.id }, asBot);
  const channelId = settings.system_messages?.channel_id;
  if (!channelId || channelId === '0') {
    throw new Error('the community has no system channel; set one with Communities/EditSettings');
  }
  const listed = (await call(channels, 'GetChannels', { community_id: community.id }, asBot)).channels;
  const channelName = listed.find((c) => c.id === channelId)?.name ?? '?';
  console.log(`Invite channel: #${channelName} (${channelId})`);

  // 4. The invite: role_ids lists the roles given to whoever accepts it. Not `unique`, so running the script
  //    again returns the same still-valid invite instead of piling up new ones.
  const invite = await call(invites, 'CreateInvite', { channel_id: channelId, role_ids: [playerRole.id] }, asBot);
  const expires = invite.expires_at ? timestamp(invite.expires_at) : 'never';
  console.log(`Invite code: ${invite.code} (grants ${invite.roles.map((r) => r.name).join(', ')}; expires ${expires})`);
  console.log(`Share this code: ${invite.code}`);

  const playerToken = process.env.COMMUNITIES_PLAYER_TOKEN;
  if (!playerToken) {
    console.log("Set COMMUNITIES_PLAYER_TOKEN to a player's token to accept the invite as that player.");
    return;
  }

  // 5. A player accepts the invite with their own (Bearer) token: they join and get the Player role.
  const asPlayer = authorization('Bearer', playerToken);
  const player = await call(users, 'GetSelf', {}, asPlayer);
  const joined = await call(invites, 'UseInvite', { code: invite.code }, asPlayer);
  console.log(`${player.name} (${player.id}) accepted the invite and is in ${joined.name}`);

  // 6. Check: the player's roles, as the community sees them.
  const [member] = (await call(members, 'GetMembers', { community_id: community.id, member_ids: [player.id] }, asBot))
    .members;
  const roleNames = new Map(
    (await call(roles, 'GetRoles', { community_id: community.id }, asBot)).roles.map((r) => [r.id, r.name]),
  );
  const held = member.role_ids.map((id) => roleNames.get(id) ?? id);
  console.log(`${player.name}'s roles: ${held.join(', ') || '(none)'}`);
  if (!member.role_ids.includes(playerRole.id)) {
    throw new Error(`${player.name} did not get the ${ROLE_NAME} role`);
  }
  console.log(`${ROLE_NAME} role granted to ${player.name}`);
}

// A google.protobuf.Timestamp ({seconds: '...', nanos}) as an ISO 8601 string.
function timestamp({ seconds, nanos }) {
  return new Date(Number(seconds) * 1000 + Math.floor(nanos / 1e6)).toISOString();
}

// An error as its status code name and message, plus the details of the google.rpc.Status the server attaches
// to every error (binary, in the `grpc-status-details-bin` trailer): the ErrorInfo reason and, for bad fields,
// the BadRequest violations. Without google/rpc/*.proto at hand, a few lines of protobuf wire format read them.
function explain(error) {
  if (error.code === undefined) return error.message;
  const lines = [`${grpc.status[error.code]}: ${error.details}`];
  const [status] = error.metadata?.get('grpc-status-details-bin') ?? [];
  for (const any of status ? strings(status, 3) : []) {
    // Status.details (3): Any{type_url (1), value (2)}.
    const [typeUrl] = strings(any, 1).map(String);
    const [value = Buffer.alloc(0)] = strings(any, 2);
    if (typeUrl?.endsWith('/google.rpc.ErrorInfo')) {
      // ErrorInfo: reason (1), metadata (3): map entries {key (1), value (2)}.
      const metadata = strings(value, 3).map((entry) => ` ${strings(entry, 1).join('')}=${strings(entry, 2).join('')}`);
      lines.push(`  reason: ${strings(value, 1).join('')}${metadata.join('')}`);
    } else if (typeUrl?.endsWith('/google.rpc.BadRequest')) {
      for (const violation of strings(value, 1)) {
        // BadRequest.field_violations (1): {field (1), description (2)}.
        lines.push(`  ${strings(violation, 1).join('')}: ${strings(violation, 2).join('')}`);
      }
    }
  }
  if (error.code === grpc.status.UNAVAILABLE) {
    lines.push('  (is the server running? ./scripts/serve, or set COMMUNITIES_ADDRESS)');
  } else if (error.code === grpc.status.UNAUTHENTICATED) {
    lines.push("  (check the token: a bot token with `Bot`, a person's token with `Bearer`)");
  }
  return lines.join('\n');
}

// The values of length-delimited field `wanted` (strings, bytes, messages) in an encoded protobuf message.
function strings(buffer, wanted) {
  const found = [];
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = buffer[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return value;
    }
  };
  while (at < buffer.length) {
    const key = varint();
    const [field, type] = [Math.floor(key / 8), key % 8];
    if (type === 0) varint();
    else if (type === 1) at += 8;
    else if (type === 5) at += 4;
    else if (type === 2) {
      const length = varint();
      if (field === wanted) found.push(buffer.subarray(at, at + length));
      at += length;
    } else break; // groups: not used by google.rpc
  }
  return found;
}

// IMPORTANT: never hard-code tokens or commit them; read them from the environment.
if (!process.env.COMMUNITIES_BOT_TOKEN) {
  console.error(
    'error: COMMUNITIES_BOT_TOKEN is not set. Create a bot with\n' +
      '  .venv/bin/communities users create "Game Bot" --bot --json\n' +
      'and export its token as COMMUNITIES_BOT_TOKEN.',
  );
  process.exit(1);
}
const address = process.env.COMMUNITIES_ADDRESS || '127.0.0.1:50051';
const credentials = grpc.credentials.createInsecure();
const clients = Object.fromEntries(
  ['Users', 'Communities', 'Roles', 'Channels', 'Members', 'Invites'].map((s) => [
    s.toLowerCase(),
    new v1[s](address, credentials),
  ]),
);
main(clients)
  .catch((error) => {
    console.error(`error: ${explain(error)}`);
    process.exitCode = 1;
  })
  .finally(() => Object.values(clients).forEach((client) => client.close()));
