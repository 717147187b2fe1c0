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
// Run from the project root (after `npm install`): node examples/node/player_invite.js
'use strict';

const { call, authorization, timestamp, requireBotToken, connect, run } = require('./common');

const COMMUNITY_NAME = 'My Game';
const ROLE_NAME = 'Player';

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

requireBotToken();
run(main, connect());
