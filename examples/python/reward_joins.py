"""Reward joins: a game server watches players join its community through the Player invite, the moment they do,
and picks up where it left off after a restart: no join lost, none rewarded twice.

It reads the Updates/Subscribe stream: everything that happens in the bot's communities, each update with a
`cursor`. After handling an update the script saves its cursor to a file; when it starts again it passes the saved
cursor to Subscribe, and the server first sends what was missed, then `ready`, then live updates.

Usage (from the project root):
  .venv/bin/python examples/python/reward_joins.py [COMMUNITY_ID] [--cursor-file PATH] [--max-joins N]

  COMMUNITY_ID   the community to watch; default: the bot's "My Game" (made by player_invite.py)
  --cursor-file  where the position in the stream is kept (default: reward_joins.cursor)
  --max-joins    exit after N joins (default: run until Ctrl-C or SIGTERM)

Environment:
  COMMUNITIES_BOT_TOKEN  the bot's token (required; never put it in the code)
  COMMUNITIES_ADDRESS    host:port of the server (default 127.0.0.1:50051)
"""

import argparse
import os
import signal
import sys
import threading

import grpc
from common import bot_token, reason, run

from communities.v1 import communities_pb2, communities_pb2_grpc, updates_pb2, updates_pb2_grpc

COMMUNITY_NAME = "My Game"
# Reconnecting after UNAVAILABLE (a server restarting): wait 1 s, then 2, 4, then 5 s between tries.
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 5.0


def load_cursor(path: str) -> str:
    """The saved cursor, or '' (start from now) when there is none."""
    try:
        with open(path) as file:
            return file.read().strip()
    except FileNotFoundError:
        return ""


def save_cursor(path: str, cursor: str) -> None:
    """Write to a temporary file, then rename it over the old one: a crash mid-write leaves the old cursor whole,
    never half a cursor."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as file:
        file.write(cursor)
        file.flush()
        os.fsync(file.fileno())  # on disk before the rename, so a power cut cannot leave an empty file
    os.replace(temporary, path)


def role_list(role_ids) -> str:
    return "[" + ", ".join(str(role_id) for role_id in role_ids) + "]"


def handle(update: updates_pb2.Update, community_id: int) -> int:
    """Print what the game cares about in one update; returns how many joins it was (0 or 1)."""
    kind = update.WhichOneof("event")
    if kind == "ready":
        # Everything missed while we were away has been sent: from here on updates are live.
        print("ready: caught up, waiting for joins")
    elif update.community_id != community_id:
        pass  # the stream carries every community the bot is in; this one is not ours
    elif kind == "member_joined":
        joined = update.member_joined
        # This is where a real game would hand out the reward (and, say, credit the inviter). Key it on the user
        # id, so that the rare update that comes twice (see main) does no harm.
        via = (
            f"with invite {joined.invite_code} from {joined.inviter_id}" if joined.invite_code else "without an invite"
        )
        temporary = "yes" if joined.temporary else "no"
        print(
            f"joined: user {joined.member.id} {via}, roles {role_list(joined.granted_role_ids)} "
            f"(temporary: {temporary})"
        )
        return 1
    elif kind == "member_updated" and update.member_updated.invite_code:
        # Someone already in the community used an invite that gave them roles they did not have. Note: this is
        # the invite that granted the roles now; member.invite_code is still the one they joined with.
        updated = update.member_updated
        print(
            f"roles: user {updated.member.id} got {role_list(updated.granted_role_ids)} "
            f"with invite {updated.invite_code} from {updated.inviter_id}"
        )
    return 0


def find_community(communities, as_bot, community_id: int | None) -> communities_pb2.Community:
    """The community to watch: the given id, or the bot's own "My Game"."""
    listed = communities.GetCommunities(communities_pb2.GetCommunities(), metadata=as_bot).communities
    if community_id is not None:
        found = next((c for c in listed if c.id == community_id), None)
        if found is None:
            sys.exit(f"error: the bot is not a member of community {community_id}")
    else:
        found = next((c for c in listed if c.owner and c.name == COMMUNITY_NAME), None)
        if found is None:
            sys.exit(f'error: the bot owns no community "{COMMUNITY_NAME}"; run player_invite.py first')
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the joins of a community, resuming after a restart.")
    parser.add_argument("community_id", nargs="?", type=int, help='default: the bot\'s "My Game"')
    parser.add_argument("--cursor-file", default="reward_joins.cursor", help="default: %(default)s")
    parser.add_argument("--max-joins", type=int, default=0, help="exit after N joins (0: never)")
    args = parser.parse_args()
    if args.max_joins < 0:
        parser.error("--max-joins must be 0 or more")
    # IMPORTANT: never hard-code tokens or commit them; read them from the environment.
    token = bot_token()
    address = os.environ.get("COMMUNITIES_ADDRESS", "127.0.0.1:50051")
    sys.stdout.reconfigure(line_buffering=True)  # one line at a time, also into a pipe or a log file

    as_bot = (("authorization", f"Bot {token}"),)
    channel = grpc.insecure_channel(address)
    communities = communities_pb2_grpc.CommunitiesStub(channel)
    updates = updates_pb2_grpc.UpdatesStub(channel)

    community = find_community(communities, as_bot, args.community_id)
    print(f"Community: {community.name} ({community.id})")

    # Ctrl-C (SIGINT) and SIGTERM: cancel the stream instead of stopping wherever the script happens to be, so
    # that the update in hand is handled and its cursor saved before the loop below ends.
    stopping = threading.Event()
    stream = None

    def stop(signum, frame) -> None:
        stopping.set()
        if stream is not None:
            stream.cancel()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    joins = 0
    retry_in = FIRST_RETRY_SECONDS
    while not stopping.is_set():
        cursor = load_cursor(args.cursor_file)
        if cursor:
            print(f"subscribing: resuming after the cursor saved in {args.cursor_file}")
        else:
            print(f"subscribing: no cursor in {args.cursor_file}, starting from now")
        stream = updates.Subscribe(updates_pb2.Subscribe(cursor=cursor), metadata=as_bot)
        if stopping.is_set():  # a signal came before the stream existed
            stream.cancel()
        try:
            for update in stream:
                retry_in = FIRST_RETRY_SECONDS  # connected again: the next outage starts with a short wait
                joins += handle(update, community.id)
                # Save only after handling: killed in between (SIGKILL, a crash), this update comes again on the
                # next start rather than never. Every update has a cursor (`ready` and `checkpoint` too).
                if update.cursor:
                    save_cursor(args.cursor_file, update.cursor)
                if args.max_joins and joins >= args.max_joins:
                    print(f"stopping after {joins} join(s)")
                    stream.cancel()
                    return
        except grpc.RpcError as error:
            if stopping.is_set():
                break  # we cancelled it
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                # The server is restarting (or unreachable): try again, resuming from the saved cursor.
                print(f"server unavailable ({error.details()}); reconnecting in {retry_in:g}s")
                stopping.wait(retry_in)
                retry_in = min(retry_in * 2, MAX_RETRY_SECONDS)
            elif error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(error) == "CURSOR_EXPIRED":
                # Away longer than the server keeps updates (7 days by default): what happened meanwhile cannot be
                # replayed. A real game would now compare its records with Members/ListMembers.
                os.remove(args.cursor_file)
                print(f"cursor expired: deleted {args.cursor_file}; joins while we were away are not replayed")
            else:
                raise
    if os.path.exists(args.cursor_file):
        print(f"stopped; the next start resumes from {args.cursor_file}")
    else:
        # Stopped before the server's first answer (`ready`): there was no position to save yet.
        print("stopped; the server never answered, so no cursor was saved: the next start begins from now")


if __name__ == "__main__":
    run(main)
