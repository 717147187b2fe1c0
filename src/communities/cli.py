"""The `communities` command: serve | migrate | users | tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import sys

from communities.config import Settings
from communities.domain.errors import DomainError
from communities.domain.snowflake import MAX_WORKER, SnowflakeGenerator

# Servers use worker ids 0..MAX_SERVER_WORKER; operator commands (which mint ids for new users while servers run)
# lease one of the rest for as long as they run, so two of them at once never mint the same id either.
CLI_WORKER_IDS = range(1000, MAX_WORKER + 1)
MAX_SERVER_WORKER = CLI_WORKER_IDS.start - 1
CLI_LEASE_MS = 60_000


def _run(coroutine):
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed everywhere but Windows
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    for name in ("listen", "database", "worker_id", "grace_seconds", "log_level", "media_dir"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(settings, name, value)
    return settings


async def _with_app(settings: Settings, action):
    from communities.media.blobstore import LocalBlobStore
    from communities.server import prepare_database
    from communities.services.context import App
    from communities.storage import workers
    from communities.storage.database import Database

    await prepare_database(settings)
    db = Database.open(settings.database, pool_size=1)
    instance = f"cli:{os.getpid()}:{secrets.token_hex(4)}"
    try:
        worker_id = await _lease_cli_worker(db, instance)
        try:
            blobs = LocalBlobStore(settings.media_dir)
            return await action(App(db=db, ids=SnowflakeGenerator(worker_id), blobs=blobs))
        finally:
            async with db.unit_of_work(write=True) as uow:
                await workers.release(uow, worker_id, instance)
    finally:
        await db.close()


async def _lease_cli_worker(db, instance: str) -> int:
    from communities.services.context import wall_clock_ms
    from communities.storage import workers

    for _ in range(50):
        candidates = list(CLI_WORKER_IDS)
        random.shuffle(candidates)
        for worker_id in candidates:
            async with db.unit_of_work(write=True) as uow:
                if await workers.claim(uow, worker_id, instance, wall_clock_ms(), CLI_LEASE_MS):
                    return worker_id
        await asyncio.sleep(0.1)
    raise RuntimeError(f"all {len(CLI_WORKER_IDS)} operator worker ids are in use; try again")


def cmd_serve(args) -> int:
    from communities.server import serve

    settings = _settings(args)
    if not 0 <= settings.worker_id <= MAX_SERVER_WORKER:
        print(f"worker id must be within 0..{MAX_SERVER_WORKER}", file=sys.stderr)
        return 2
    _run(serve(settings))
    return 0


def cmd_migrate(args) -> int:
    from communities.server import check_database
    from communities.storage import migrate

    settings = _settings(args)
    _run(check_database(settings))
    _run(migrate.upgrade(settings.database))
    print(f"database {settings.safe_database} is at schema {migrate.head_revision()}")
    return 0


def _print_credentials(credentials, as_json: bool) -> None:
    user = credentials.user
    if as_json:
        print(json.dumps({"id": str(user.id), "name": user.name, "bot": user.bot, "token": credentials.token}))
    else:
        kind = "bot" if user.bot else "user"
        scheme = "Bot" if user.bot else "Bearer"
        print(f"{kind} {user.name} id {user.id}")
        print(f"token (shown once, keep it secret): {credentials.token}")
        print(f"send it as call metadata:  authorization: {scheme} {credentials.token}")


def cmd_users_create(args) -> int:
    from communities.services import users

    credentials = _run(_with_app(_settings(args), lambda app: users.create_user(app, args.name, bot=args.bot)))
    _print_credentials(credentials, args.json)
    return 0


def cmd_tokens_create(args) -> int:
    from communities.services import users

    credentials = _run(_with_app(_settings(args), lambda app: users.create_token(app, args.user_id)))
    _print_credentials(credentials, args.json)
    return 0


def cmd_tokens_revoke(args) -> int:
    from communities.services import users

    count = _run(_with_app(_settings(args), lambda app: users.revoke(app, args.token_or_user_id)))
    print(f"revoked {count} token{'s' if count != 1 else ''}")
    return 0 if count else 1


def _user_id(text: str) -> int:
    if not text.isdigit() or int(text) >= 1 << 64:
        raise argparse.ArgumentTypeError("expected a decimal user id")
    return int(text)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database",
        help="database URL: sqlite:///path or postgresql://user:pass@host/db "
        "(env COMMUNITIES_DATABASE; default sqlite:///data/communities.db)",
    )
    common.add_argument("--log-level", dest="log_level", help="env COMMUNITIES_LOG_LEVEL; default INFO")

    root = argparse.ArgumentParser(prog="communities", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the gRPC server")
    serve.add_argument("--listen", help="HOST:PORT (env COMMUNITIES_LISTEN; default 127.0.0.1:50051)")
    serve.add_argument(
        "--worker-id",
        dest="worker_id",
        type=int,
        help=f"snowflake worker id, unique per server sharing a database, 0..{MAX_SERVER_WORKER} "
        "(env COMMUNITIES_WORKER_ID; default 0)",
    )
    serve.add_argument(
        "--grace-seconds",
        dest="grace_seconds",
        type=float,
        help="time in-flight calls get to finish on SIGTERM/SIGINT (env COMMUNITIES_GRACE_SECONDS; default 10)",
    )
    serve.add_argument(
        "--media-dir",
        dest="media_dir",
        help="where photos are stored (env COMMUNITIES_MEDIA_DIR; default data/media)",
    )
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", parents=[common], help="bring the database schema up to date")
    migrate.set_defaults(handler=cmd_migrate)

    users = commands.add_parser("users", help="manage users and bots").add_subparsers(dest="action", required=True)
    create = users.add_parser("create", parents=[common], help="create a user (or --bot) and print its token once")
    create.add_argument("name")
    create.add_argument("--bot", action="store_true", help="a bot: authenticates with `Bot <token>`")
    create.add_argument("--json", action="store_true", help="print {id, name, bot, token} as JSON")
    create.set_defaults(handler=cmd_users_create)

    tokens = commands.add_parser("tokens", help="manage tokens").add_subparsers(dest="action", required=True)
    token_create = tokens.add_parser("create", parents=[common], help="give a user another token")
    token_create.add_argument("user_id", type=_user_id)
    token_create.add_argument("--json", action="store_true")
    token_create.set_defaults(handler=cmd_tokens_create)
    revoke = tokens.add_parser("revoke", parents=[common], help="revoke one token, or every token of a user id")
    revoke.add_argument("token_or_user_id")
    revoke.set_defaults(handler=cmd_tokens_revoke)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # Our own lines say when a schema is created or migrated; Alembic's are chatter.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    except Exception as error:  # a clear line instead of a traceback for the usual operator mistakes
        from communities.server import StartupError

        if isinstance(error, StartupError | ConnectionError | OSError):
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
