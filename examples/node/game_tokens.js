// Player identities: a game server signs a token for one of its players, and the player calls the service with
// it. No operator CLI, no account to create: the first call with a new (issuer, subject) makes the user.
//
// The server trusts the game's key, e.g. with an HMAC secret shared between them:
//   GAME_SECRET=$(openssl rand -base64 48) .venv/bin/communities serve --jwt-key my-game=HS256:env:GAME_SECRET
//
// Environment:
//   COMMUNITIES_GAME_SECRET  the HS256 secret the server was given (required; never put it in the code)
//   COMMUNITIES_GAME_ISSUER  the `iss` the server trusts that secret for (default my-game)
//   COMMUNITIES_ADDRESS      host:port of the server (default 127.0.0.1:50051)
//
// Run from the project root: node examples/node/game_tokens.js PLAYER_ID "Display Name"
// (HS256 needs nothing but node:crypto; for RS256/ES256 use a JWT library such as `jose`.)
'use strict';

const crypto = require('node:crypto');
const { call, authorization, connect, run } = require('./common');

const TOKEN_LIFETIME_SECONDS = 3600;

function base64url(data) {
  return Buffer.from(data).toString('base64url');
}

// What the game server does when its player logs in: a short-lived token naming the player. `sub` is the game's
// own id for the player (the same player always gets the same user); `name` is used once, for the new user's
// display name; `exp` is required.
function mint(issuer, secret, playerId, name) {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = { iss: issuer, sub: playerId, name, iat: now, exp: now + TOKEN_LIFETIME_SECONDS };
  const payload = base64url(JSON.stringify(claims));
  const signature = crypto.createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

async function main(clients, playerId, name) {
  const secret = process.env.COMMUNITIES_GAME_SECRET;
  if (!secret) throw new Error('COMMUNITIES_GAME_SECRET is not set: the HS256 secret the server trusts for your game');
  const issuer = process.env.COMMUNITIES_GAME_ISSUER || 'my-game';

  // On the game server: sign the player's identity.
  const token = mint(issuer, secret, playerId, name);
  console.log(`minted a token for player ${playerId} (valid ${TOKEN_LIFETIME_SECONDS} s)`);

  // On the player's machine: call the service with it, as `Bearer`.
  const metadata = authorization('Bearer', token);
  const me = await call(clients.users, 'GetSelf', {}, metadata);
  console.log(`signed in as user ${me.id} "${me.name}"`);
  const mine = await call(clients.communities, 'GetCommunities', {}, metadata);
  console.log(`in ${mine.communities.length} communities`);
}

const [playerId, name] = process.argv.slice(2);
if (!playerId || !name) {
  console.error('usage: node game_tokens.js PLAYER_ID NAME');
  process.exit(2);
}
run(main, connect(), playerId, name);
