"""Principals and their tokens: creation (operator CLI), authentication (every RPC), lookups.

Tokens are 32 random bytes (URL-safe base64, prefixed `cmt_` so leaked tokens are easy to spot and tell from
user ids). Only their SHA-256 is stored: a token carries 256 bits of entropy, so a fast hash is as strong as a
slow one here and keeps authentication to one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from communities.domain import validation
from communities.domain.errors import InvalidArgument, NotFound, Unauthenticated
from communities.services.context import App, Principal
from communities.storage import repository as repo

TOKEN_PREFIX = "cmt_"
TOKEN_BYTES = 32


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


@dataclass(frozen=True)
class NewCredentials:
    user: repo.UserRecord
    token: str


async def create_user(app: App, name: str, *, bot: bool) -> NewCredentials:
    name = validation.clean_name(name)
    user_id = app.ids.next_id()
    token = new_token()
    async with app.db.unit_of_work(write=True) as uow:
        now = app.clock_ms()
        await repo.insert_user(uow, user_id, name, bot, now)
        await repo.insert_token(uow, hash_token(token), user_id, now)
    return NewCredentials(repo.UserRecord(user_id, name, bot), token)


async def create_token(app: App, user_id: int) -> NewCredentials:
    token = new_token()
    async with app.db.unit_of_work(write=True) as uow:
        user = await repo.get_user(uow, user_id)
        if user is None:
            raise NotFound.of("USER")
        await repo.insert_token(uow, hash_token(token), user_id, app.clock_ms())
    return NewCredentials(user, token)


async def revoke(app: App, token_or_user_id: str) -> int:
    """Revoke one token, or every token of a user id. Returns how many tokens were revoked."""
    value = token_or_user_id.strip()
    async with app.db.unit_of_work(write=True) as uow:
        if looks_like_token(value):
            return await repo.delete_token(uow, hash_token(value))
        if value.isdigit() and int(value) < 1 << 64:
            return await repo.delete_user_tokens(uow, int(value))
    raise InvalidArgument.field("token_or_user_id", "expected a token (cmt_...) or a decimal user id")


SCHEMES = {"bearer": False, "bot": True}  # scheme -> whether it is for bots


async def authenticate(app: App, authorization: str | None) -> Principal:
    """`Bearer <token>` for people, `Bot <token>` for bots."""
    if not authorization:
        raise Unauthenticated("Missing `authorization` metadata: send `Bearer <token>` or `Bot <token>`")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    expects_bot = SCHEMES.get(scheme.lower())
    if expects_bot is None or not token:
        raise Unauthenticated("Malformed `authorization`: expected `Bearer <token>` or `Bot <token>`")
    credential = hash_token(token)
    user = await repo.user_by_token_hash(app.db, credential)
    if user is None:
        raise Unauthenticated("Invalid or revoked token")
    if user.bot != expects_bot:
        right = "Bot" if user.bot else "Bearer"
        raise Unauthenticated(f"This token belongs to a {'bot' if user.bot else 'user'}: send `{right} <token>`")
    return Principal(id=user.id, name=user.name, bot=user.bot, credential=credential)


async def get_users(app: App, principal: Principal, user_ids: list[int]) -> list[repo.UserRecord]:
    ids = validation.id_list(user_ids, "user_ids")
    async with app.db.unit_of_work(write=False) as uow:
        return await repo.get_users(uow, ids)
