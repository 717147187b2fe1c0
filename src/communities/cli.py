"""The `communities` command: serve | migrate | users | tokens | console-link."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import sys

from communities.config import Settings, SettingsError
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
    for name in SETTING_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            setattr(settings, name, value)
    return settings


# Settings a flag can set (the attribute names of Settings and of the parsed arguments).
SETTING_FLAGS = (
    "listen",
    "database",
    "worker_id",
    "grace_seconds",
    "log_level",
    "media_dir",
    "jwt_keys",
    "jwt_leeway_seconds",
    "jwt_audience",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "metrics_listen",
    "console",
    "console_listen",
)


async def _with_app(settings: Settings, action):
    from communities.media.blobstore import LocalBlobStore, ThreadedBlobStore
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
            blobs = ThreadedBlobStore(LocalBlobStore(settings.media_dir))
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


def console_url(settings: Settings) -> str:
    """Where the console of a server with these settings is: http://<console-listen>/ (a wildcard address is
    reached through loopback)."""
    host, _, port = settings.console_listen.rpartition(":")
    if port in ("", "0"):
        raise ValueError(
            "the console's port is chosen when the server starts (port 0): pass --console-url with the URL it logged"
        )
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
    return f"http://{host}:{port}/"


def cmd_console_link(args) -> int:
    from communities.web import login

    settings = _settings(args)
    try:
        base = args.console_url or console_url(settings)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not base.startswith(("http://", "https://")):
        print("error: --console-url must start with http:// or https://", file=sys.stderr)
        return 2
    code = _run(_with_app(settings, lambda app: login.create_link(app, args.user_id)))
    base = base.split("#", 1)[0]
    print(f"{base if base.endswith('/') else base + '/'}#login={code}")
    return 0


def cmd_users_list(args) -> int:
    from communities.services import users

    found = _run(
        _with_app(
            _settings(args), lambda app: users.list_users(app, name=args.name, after_id=args.after, limit=args.limit)
        )
    )
    if args.json:
        print(json.dumps([{"id": str(user.id), "name": user.name, "bot": user.bot} for user in found]))
    else:
        for user in found:
            print(f"{user.id}  {'bot ' if user.bot else 'user'}  {user.name}")
    return 0


def cmd_users_show(args) -> int:
    from datetime import UTC, datetime

    from communities.services import users

    detail = _run(_with_app(_settings(args), lambda app: users.show_user(app, args.user_id)))
    user = detail.user
    created = datetime.fromtimestamp(detail.created_at / 1000, UTC).isoformat(timespec="milliseconds")
    created = created.replace("+00:00", "Z")
    shown = {
        "id": str(user.id),
        "name": user.name,
        "bot": user.bot,
        "created_at": created,
        "communities": detail.community_count,
        "tokens": detail.token_count,
        "identities": [{"issuer": issuer, "subject": subject} for issuer, subject in detail.identities],
    }
    if args.json:
        print(json.dumps(shown))
    else:
        print(f"{'bot' if user.bot else 'user'} {user.name} id {user.id}")
        print(f"created {created}, in {detail.community_count} communities, {detail.token_count} token(s)")
        for issuer, subject in detail.identities:
            print(f"signs in with a JSON Web Token of issuer {issuer!r}, subject {subject!r}")
    return 0


def _user_id(text: str) -> int:
    if not text.isdigit() or int(text) >= 1 << 64:
        raise argparse.ArgumentTypeError("expected a decimal user id")
    return int(text)


def _identity_flags(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("player identities (JSON Web Tokens a game signs)")
    group.add_argument(
        "--jwt-key",
        dest="jwt_keys",
        action="append",
        metavar="ISSUER=ALG:SOURCE",
        help="trust tokens of issuer ISSUER (`iss`) signed with ALG (HS256, RS256, ES256, ...) and the key at "
        "SOURCE: file:PATH (a PEM public key, or a file holding an HMAC secret) or env:NAME (an HMAC secret in that "
        "environment variable); repeat for several issuers, or several keys of one issuer (rotation) "
        "(env COMMUNITIES_JWT_KEYS: entries separated by whitespace; default: none)",
    )
    group.add_argument(
        "--jwt-leeway-seconds",
        dest="jwt_leeway_seconds",
        type=float,
        help="clock skew allowed on `exp` and `nbf` (env COMMUNITIES_JWT_LEEWAY_SECONDS; default 30)",
    )
    group.add_argument(
        "--jwt-audience",
        dest="jwt_audience",
        help="require this `aud` (env COMMUNITIES_JWT_AUDIENCE; default: none, and tokens with an `aud` are refused)",
    )


def _operations_flags(serve: argparse.ArgumentParser) -> None:
    tls = serve.add_argument_group("TLS (default: plaintext)")
    tls.add_argument(
        "--tls-cert", dest="tls_cert", metavar="PEM", help="certificate chain, PEM (env COMMUNITIES_TLS_CERT)"
    )
    tls.add_argument("--tls-key", dest="tls_key", metavar="PEM", help="its private key, PEM (env COMMUNITIES_TLS_KEY)")
    tls.add_argument(
        "--tls-client-ca",
        dest="tls_client_ca",
        metavar="PEM",
        help="mutual TLS: require client certificates signed by this CA (env COMMUNITIES_TLS_CLIENT_CA)",
    )
    console = serve.add_argument_group("web console")
    console.add_argument(
        "--console-listen",
        dest="console_listen",
        metavar="HOST:PORT",
        help="serve the web console over HTTP at http://HOST:PORT/ (port 0: any free port, logged at start) "
        "(env COMMUNITIES_CONSOLE_LISTEN; default 127.0.0.1:8080)",
    )
    console.add_argument(
        "--no-console",
        dest="console",
        action="store_const",
        const=False,
        help="do not serve the web console (env COMMUNITIES_CONSOLE=off; default on)",
    )
    metrics = serve.add_argument_group("metrics")
    metrics.add_argument(
        "--metrics-listen",
        dest="metrics_listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (env COMMUNITIES_METRICS_LISTEN; "
        "default: off)",
    )


ENV_ONLY_HELP = """settings from the environment only:
  COMMUNITIES_MAX_RECEIVE_BYTES        largest request accepted (default 33554432, 32 MiB)
  COMMUNITIES_MAX_SEND_BYTES           largest answer sent (default 33554432, 32 MiB)
  COMMUNITIES_DB_POOL_SIZE             PostgreSQL connections per server (default 8)
  COMMUNITIES_EVENT_RETENTION_SECONDS  how long updates are kept for Subscribe cursors and the audit log
                                       (default 604800, 7 days)
  COMMUNITIES_TEMPORARY_GRACE_SECONDS  how long a temporary member may have no update stream open before
                                       being removed (default 60)"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("communities")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "unknown"


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database",
        help="database URL: sqlite:///path or postgresql://user:pass@host/db "
        "(env COMMUNITIES_DATABASE; default sqlite:///data/communities.db)",
    )
    common.add_argument("--log-level", dest="log_level", help="env COMMUNITIES_LOG_LEVEL; default INFO")

    root = argparse.ArgumentParser(prog="communities", description=__doc__)
    root.add_argument("--version", action="version", version=f"communities {_version()}")
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the gRPC server",
        description="Run the gRPC server. Every flag also has an environment variable (shown with it).",
        epilog=ENV_ONLY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    _identity_flags(serve)
    _operations_flags(serve)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", parents=[common], help="bring the database schema up to date")
    migrate.set_defaults(handler=cmd_migrate)

    users = commands.add_parser("users", help="manage users and bots").add_subparsers(dest="action", required=True)
    create = users.add_parser("create", parents=[common], help="create a user (or --bot) and print its token once")
    create.add_argument("name")
    create.add_argument("--bot", action="store_true", help="a bot: authenticates with `Bot <token>`")
    create.add_argument("--json", action="store_true", help="print {id, name, bot, token} as JSON")
    create.set_defaults(handler=cmd_users_create)
    listing = users.add_parser("list", parents=[common], help="list users and bots, by id")
    listing.add_argument("--name", help="only those whose name contains this (case-insensitive)")
    listing.add_argument("--after", type=_user_id, default=0, help="only ids after this one (the next page)")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="print [{id, name, bot}] as JSON")
    listing.set_defaults(handler=cmd_users_list)
    show = users.add_parser("show", parents=[common], help="one user: name, kind, tokens, player identities")
    show.add_argument("user_id", type=_user_id)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_users_show)

    tokens = commands.add_parser("tokens", help="manage tokens").add_subparsers(dest="action", required=True)
    token_create = tokens.add_parser("create", parents=[common], help="give a user another token")
    token_create.add_argument("user_id", type=_user_id)
    token_create.add_argument("--json", action="store_true")
    token_create.set_defaults(handler=cmd_tokens_create)
    revoke = tokens.add_parser("revoke", parents=[common], help="revoke one token, or every token of a user id")
    revoke.add_argument("token_or_user_id")
    revoke.set_defaults(handler=cmd_tokens_revoke)

    link = commands.add_parser(
        "console-link",
        parents=[common],
        help="print a one-time sign-in link to the web console for a user (valid 10 minutes, single use)",
    )
    link.add_argument("user_id", type=_user_id)
    link.add_argument(
        "--console-url",
        dest="console_url",
        metavar="URL",
        help="the console's address as the browser reaches it (default http://<COMMUNITIES_CONSOLE_LISTEN>/, "
        "i.e. http://127.0.0.1:8080/)",
    )
    link.set_defaults(handler=cmd_console_link)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # Our own lines say when a schema is created or migrated; Alembic's are chatter.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
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
