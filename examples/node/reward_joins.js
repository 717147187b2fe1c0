// Reward joins: a game server watches players join its community through the Player invite, the moment they do,
// and picks up where it left off after a restart: no join lost, none rewarded twice.
//
// It reads the Updates/Subscribe stream: everything that happens in the bot's communities, each update with a
// `cursor`. After handling an update the script saves its cursor to a file; when it starts again it passes the
// saved cursor to Subscribe, and the server first sends what was missed, then `ready`, then live updates.
//
// Usage (from the project root, after `npm install`):
//   node examples/node/reward_joins.js [COMMUNITY_ID] [--cursor-file PATH] [--max-joins N]
//
//   COMMUNITY_ID   the community to watch; default: the bot's "My Game" (made by player_invite.js)
//   --cursor-file  where the position in the stream is kept (default: reward_joins.cursor)
//   --max-joins    exit after N joins (default: run until Ctrl-C or SIGTERM)
//
// Environment:
//   COMMUNITIES_BOT_TOKEN  the bot's token (required; never put it in the code)
//   COMMUNITIES_ADDRESS    host:port of the server (default 127.0.0.1:50051)
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { setTimeout: sleep } = require('node:timers/promises');
const { grpc, call, authorization, reason, requireBotToken, connect, run } = require('./common');

const COMMUNITY_NAME = 'My Game';
// Reconnecting after UNAVAILABLE (a server restarting): wait 1 s, then 2, 4, ... at most 10.
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 5000;

// The saved cursor, or '' (start from now) when there is none.
function loadCursor(path) {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch (error) {
    if (error.code === 'ENOENT') return '';
    throw error;
  }
}

// Write to a temporary file, then rename it over the old one: a crash mid-write leaves the old cursor whole,
// never half a cursor.
function saveCursor(path, cursor) {
  const temporary = `${path}.tmp`;
  const fd = fs.openSync(temporary, 'w');
  try {
    fs.writeSync(fd, cursor);
    fs.fsyncSync(fd); // on disk before the rename, so a power cut cannot leave an empty file
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, path);
}

const roleList = (roleIds) => `[${roleIds.join(', ')}]`;

// Prints what the game cares about in one update; returns how many joins it was (0 or 1).
function handle(update, communityId) {
  // With `oneofs: true`, `update.event` names the field that is set. Ids are decimal strings (`longs: String`).
  if (update.event === 'ready') {
    // Everything missed while we were away has been sent: from here on updates are live.
    console.log('ready: caught up, waiting for joins');
  } else if (update.community_id !== communityId) {
    // the stream carries every community the bot is in; this one is not ours
  } else if (update.event === 'member_joined') {
    const joined = update.member_joined;
    // This is where a real game would hand out the reward (and, say, credit the inviter). Key it on the user id,
    // so that the rare update that comes twice (see main) does no harm.
    const via = joined.invite_code
      ? `with invite ${joined.invite_code} from ${joined.inviter_id}`
      : 'without an invite';
    const temporary = joined.temporary ? 'yes' : 'no';
    console.log(
      `joined: user ${joined.member.id} ${via}, roles ${roleList(joined.granted_role_ids)} (temporary: ${temporary})`,
    );
    return 1;
  } else if (update.event === 'member_updated' && update.member_updated.invite_code) {
    // Someone already in the community used an invite that gave them roles they did not have. Note: this is the
    // invite that granted the roles now; member.invite_code is still the one they joined with.
    const updated = update.member_updated;
    console.log(
      `roles: user ${updated.member.id} got ${roleList(updated.granted_role_ids)} ` +
        `with invite ${updated.invite_code} from ${updated.inviter_id}`,
    );
  }
  return 0;
}

// The community to watch: the given id, or the bot's own "My Game".
async function findCommunity(communities, asBot, communityId) {
  const listed = (await call(communities, 'GetCommunities', {}, asBot)).communities;
  if (communityId !== undefined) {
    const found = listed.find((c) => c.id === communityId);
    if (!found) throw new Error(`the bot is not a member of community ${communityId}`);
    return found;
  }
  const found = listed.find((c) => c.owner && c.name === COMMUNITY_NAME);
  if (!found) throw new Error(`the bot owns no community "${COMMUNITY_NAME}"; run player_invite.js first`);
  return found;
}

async function main(clients, { communityId, cursorFile, maxJoins }) {
  const { communities, updates } = clients;
  // Every call carries `authorization: Bot <token>`.
  const asBot = authorization('Bot', process.env.COMMUNITIES_BOT_TOKEN);

  const community = await findCommunity(communities, asBot, communityId);
  console.log(`Community: ${community.name} (${community.id})`);

  // Ctrl-C (SIGINT) and SIGTERM: cancel the stream. Updates are handled synchronously in 'data', so the one in
  // hand is always finished, its cursor saved, before the signal is seen.
  const stopping = new AbortController();
  let stream = null;
  const stop = () => {
    stopping.abort();
    stream?.cancel();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  let joins = 0;
  let retryIn = FIRST_RETRY_MS;
  while (!stopping.signal.aborted) {
    const cursor = loadCursor(cursorFile);
    console.log(
      cursor
        ? `subscribing: resuming after the cursor saved in ${cursorFile}`
        : `subscribing: no cursor in ${cursorFile}, starting from now`,
    );
    // One Subscribe call, until it ends: its error, or null if it ended without one.
    const error = await new Promise((resolve) => {
      stream = updates.Subscribe({ cursor }, asBot);
      stream.on('data', (update) => {
        if (stopping.signal.aborted) return; // cancelled: whatever still arrives comes again on the next start
        retryIn = FIRST_RETRY_MS; // connected again: the next outage starts with a short wait
        joins += handle(update, community.id);
        // Save only after handling: killed in between (SIGKILL, a crash), this update comes again on the next
        // start rather than never. Every update has a cursor (`ready` and `checkpoint` too).
        if (update.cursor) saveCursor(cursorFile, update.cursor);
        if (maxJoins && joins >= maxJoins) {
          console.log(`stopping after ${joins} join(s)`);
          stop();
        }
      });
      stream.on('error', resolve); // UNAVAILABLE, CURSOR_EXPIRED, CANCELLED (our own cancel), ...
      stream.on('end', () => resolve(null));
    });
    if (maxJoins && joins >= maxJoins) return;
    if (stopping.signal.aborted) break; // a signal: we cancelled it
    if (error?.code === grpc.status.UNAVAILABLE) {
      // The server is restarting (or unreachable): try again, resuming from the saved cursor.
      console.log(`server unavailable (${error.details}); reconnecting in ${retryIn / 1000}s`);
      await sleep(retryIn, undefined, { signal: stopping.signal }).catch(() => {}); // a signal ends the wait
      retryIn = Math.min(retryIn * 2, MAX_RETRY_MS);
    } else if (error?.code === grpc.status.FAILED_PRECONDITION && reason(error) === 'CURSOR_EXPIRED') {
      // Away longer than the server keeps updates (7 days by default): what happened meanwhile cannot be
      // replayed. A real game would now compare its records with Members/ListMembers.
      fs.rmSync(cursorFile);
      console.log(`cursor expired: deleted ${cursorFile}; joins while we were away are not replayed`);
    } else if (error) {
      throw error;
    }
  }
  if (fs.existsSync(cursorFile)) {
    console.log(`stopped; the next start resumes from ${cursorFile}`);
  } else {
    // Stopped before the server's first answer (`ready`): there was no position to save yet.
    console.log('stopped; the server never answered, so no cursor was saved: the next start begins from now');
  }
}

const USAGE = 'usage: node reward_joins.js [COMMUNITY_ID] [--cursor-file PATH] [--max-joins N]';
let options;
try {
  options = parseArgs({
    allowPositionals: true,
    options: {
      'cursor-file': { type: 'string', default: 'reward_joins.cursor' },
      'max-joins': { type: 'string', default: '0' },
    },
  });
} catch (error) {
  console.error(`error: ${error.message}\n${USAGE}`);
  process.exit(2);
}
const { values, positionals } = options;
const maxJoins = Number(values['max-joins']);
if (positionals.length > 1 || !/^\d*$/.test(positionals[0] ?? '') || !Number.isInteger(maxJoins) || maxJoins < 0) {
  console.error(USAGE);
  process.exit(2);
}
requireBotToken();
run(main, connect(), { communityId: positionals[0], cursorFile: values['cursor-file'], maxJoins });
