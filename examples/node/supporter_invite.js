// Targeted invite: only your paying supporters can accept it, and it gives them a Supporter role that opens a
// private #supporter-chat channel.
//
// The second walk-through of the community invites tutorial, on communities.v1 with @grpc/grpc-js and
// @grpc/proto-loader reading the project's .proto files.
//
// Environment:
//   COMMUNITIES_BOT_TOKEN        the bot's token (required; never put it in the code)
//   COMMUNITIES_SUPPORTER_IDS    comma-separated user ids allowed to accept the invite (required)
//   COMMUNITIES_ADDRESS          host:port of the server (default 127.0.0.1:50051)
//   COMMUNITIES_SUPPORTER_TOKEN  optional: a listed supporter's token; accepts the invite as them
//   COMMUNITIES_OUTSIDER_TOKEN   optional: an unlisted person's token; shows the invite does not exist for them
//
// Run from the project root (after `npm install`): node examples/node/supporter_invite.js
'use strict';

const { setTimeout: sleep } = require('node:timers/promises');
const { grpc, call, authorization, explain, requireBotToken, connect, run } = require('./common');

const COMMUNITY_NAME = 'My Game';
const ROLE_NAME = 'Supporter';
const CHANNEL_NAME = 'supporter-chat';

// Permission bits (CommunityPermission in protos/communities/v1/permissions.proto).
const VIEW_CHANNEL = 2;
const SEND_MESSAGES = 4;
const ADD_REACTIONS = 4096;

async function main(clients, supporterIds) {
  const { users, communities, roles, channels, invites } = clients;
  const asBot = authorization('Bot', process.env.COMMUNITIES_BOT_TOKEN);

  const bot = await call(users, 'GetSelf', {}, asBot);
  console.log(`Signed in as bot ${bot.name} (${bot.id})`);

  // 1. The community: reuse the one the bot owns, or create it. As owner the bot holds every permission,
  //    including MODIFY_COMMUNITY (Discord's MANAGE_GUILD), which targeted invites need.
  const owned = (await call(communities, 'GetCommunities', {}, asBot)).communities;
  let community = owned.find((c) => c.owner && c.name === COMMUNITY_NAME);
  if (!community) {
    community = await call(communities, 'CreateCommunity', { name: COMMUNITY_NAME }, asBot);
  }
  console.log(`Community: ${community.name} (${community.id})`);

  // 2. The Supporter role. It needs no permissions of its own: the channel overrides below do the work.
  const existing = (await call(roles, 'GetRoles', { community_id: community.id }, asBot)).roles;
  let supporterRole = existing.find((r) => r.name === ROLE_NAME);
  if (!supporterRole) {
    const request = { community_id: community.id, name: ROLE_NAME, priority: 1 };
    supporterRole = await call(roles, 'CreateRole', request, asBot);
  }
  console.log(`Role: ${supporterRole.name} (${supporterRole.id})`);

  // 3. The private channel: everyone (role_id = the community id) is denied VIEW_CHANNEL; the Supporter role is
  //    allowed to view it, send messages and add reactions. Overrides are created or replaced.
  const listed = (await call(channels, 'GetChannels', { community_id: community.id }, asBot)).channels;
  let privateChannel = listed.find((c) => c.name === CHANNEL_NAME && c.type === 'TEXT');
  if (!privateChannel) {
    privateChannel = await call(
      channels,
      'CreateChannel',
      { community_id: community.id, name: CHANNEL_NAME, type: 'TEXT' },
      asBot,
    );
  }
  const overrides = [
    [community.id, { neg: VIEW_CHANNEL }],
    [supporterRole.id, { pos: VIEW_CHANNEL | SEND_MESSAGES | ADD_REACTIONS }],
  ];
  for (const [roleId, bits] of overrides) {
    const request = { channel_id: privateChannel.id, role_id: roleId, overrides: bits };
    await call(channels, 'CreateChannelOverride', request, asBot);
  }
  console.log(`Private channel: #${privateChannel.name} (${privateChannel.id}), visible to ${ROLE_NAME} only`);

  // 4. The targeted invite: target_users_file is a CSV file of user ids (one per line); only those users can
  //    see and accept it. role_ids gives them the Supporter role.
  const csvFile = Buffer.from(supporterIds.join('\n'));
  const invite = await call(
    invites,
    'CreateInvite',
    { channel_id: privateChannel.id, role_ids: [supporterRole.id], target_users_file: csvFile },
    asBot,
  );

  // 5. The list is stored by a job (in the background for large files); the invite admits nobody until it is
  //    COMPLETED, so wait for it.
  const deadline = Date.now() + 300_000;
  let job;
  for (;;) {
    job = await call(invites, 'GetTargetUsersJobStatus', { code: invite.code }, asBot);
    if (job.status === 'COMPLETED') break;
    if (job.status === 'FAILED') throw new Error(`storing the target users failed: ${job.error_message}`);
    if (Date.now() > deadline) throw new Error(`target users still ${job.status} after 5 minutes`);
    await sleep(500);
  }
  const unknown = job.unknown_users ? `, ${job.unknown_users} not registered yet` : '';
  console.log(`Target users stored: ${job.processed_users} of ${job.total_users}${unknown}`);
  console.log(`Invite code: ${invite.code} (targeted; grants ${invite.roles.map((r) => r.name).join(', ')})`);
  console.log(`Share this code with your supporters: ${invite.code}`);

  // 6. A listed supporter looks the invite up, accepts it, and now sees #supporter-chat.
  const supporterToken = process.env.COMMUNITIES_SUPPORTER_TOKEN;
  if (supporterToken) {
    const asSupporter = authorization('Bearer', supporterToken);
    const supporter = await call(users, 'GetSelf', {}, asSupporter);
    const preview = await call(invites, 'LookupInvite', { code: invite.code }, asSupporter);
    console.log(`${supporter.name} sees the invite to ${preview.community_name} #${preview.channel_name}`);
    await call(invites, 'UseInvite', { code: invite.code }, asSupporter);
    const visible = (await call(channels, 'GetChannels', { community_id: community.id }, asSupporter)).channels;
    const names = visible.map((c) => c.name);
    console.log(`Channels ${supporter.name} can see: ${names.map((n) => `#${n}`).join(', ')}`);
    if (!names.includes(CHANNEL_NAME)) {
      throw new Error(`${supporter.name} accepted the invite but cannot see #${CHANNEL_NAME}`);
    }
  }

  // 7. Anyone not on the list gets NOT_FOUND, exactly as for a code that does not exist.
  const outsiderToken = process.env.COMMUNITIES_OUTSIDER_TOKEN;
  if (outsiderToken) {
    const asOutsider = authorization('Bearer', outsiderToken);
    const outsider = await call(users, 'GetSelf', {}, asOutsider);
    try {
      await call(invites, 'LookupInvite', { code: invite.code }, asOutsider);
    } catch (error) {
      if (error.code !== grpc.status.NOT_FOUND) throw error;
      console.log(`${outsider.name} is not on the list; looking the invite up gives ${explain(error)}`);
      return;
    }
    throw new Error(`${outsider.name} is not a supporter but can see the invite`);
  }
}

requireBotToken();
// In production you would fetch these from your subscription database.
const supporterIds = (process.env.COMMUNITIES_SUPPORTER_IDS || '')
  .split(',')
  .map((id) => id.trim())
  .filter(Boolean);
if (supporterIds.length === 0) {
  console.error("error: COMMUNITIES_SUPPORTER_IDS is not set: give the supporters' user ids, comma-separated.");
  process.exit(1);
}
run(main, connect(), supporterIds);
