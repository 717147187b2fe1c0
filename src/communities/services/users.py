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
from communities.services import identities
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
    """Revoke one token, or every token of a user id. Returns how many tokens were revoked.

    The revocation is also written to the feed every server polls (services/credentials.py), in the same
    transaction, so that servers drop it from their caches within a second."""
    value = token_or_user_id.strip()
    if looks_like_token(value):
        token_hash, user_id = hash_token(value), None
    elif _is_user_id(value):
        token_hash, user_id = None, int(value)
    else:
        raise InvalidArgument.field("token_or_user_id", "expected a token (cmt_...) or a decimal user id")
    async with app.db.unit_of_work(write=True) as uow:
        if token_hash is not None:
            owner = await repo.delete_token_returning_user(uow, token_hash)
            count = 0 if owner is None else 1
        else:
            count = await repo.delete_user_tokens(uow, user_id)
        if count:
            await repo.record_revocation(uow, token_hash=token_hash, user_id=user_id, now_ms=app.clock_ms())
    if count and app.credentials is not None:
        app.credentials.evict(token_hash=token_hash, user_id=user_id)
    return count


def _is_user_id(value: str) -> bool:
    """A decimal fixed64: ASCII digits only (str.isdigit() also takes '²', which int() refuses), bounded by length
    before int() (which refuses more than 4300 digits)."""
    return value.isascii() and value.isdigit() and len(value) <= 20 and int(value) < 1 << 64


SCHEMES = {"bearer": False, "bot": True}  # scheme -> whether it is for bots


async def authenticate(app: App, authorization: str | None) -> Principal:
    """`Bearer <token>` for people, `Bot <token>` for bots; `Bearer <JSON Web Token>` for players whose game
    signs their identity (services/identities.py). Answered from the cache when it can vouch for the token."""
    if not authorization:
        raise Unauthenticated("Missing `authorization` metadata: send `Bearer <token>` or `Bot <token>`")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    expects_bot = SCHEMES.get(scheme.lower())
    if expects_bot is None or not token:
        raise Unauthenticated("Malformed `authorization`: expected `Bearer <token>` or `Bot <token>`")
    jwt = not looks_like_token(token) and identities.looks_like_jwt(token)
    if jwt and expects_bot:
        raise Unauthenticated("A JSON Web Token identifies a player: send `Bearer <token>`")
    credential = hash_token(token)
    cache = app.credentials
    principal = cache.get(credential) if cache is not None else None
    if principal is None:
        generation = cache.generation if cache is not None else 0
        if jwt:
            principal = await identities.authenticate(app, token)
        else:
            found = await repo.user_by_token_hash(app.db, credential, app.clock_ms())
            if found is None:
                raise Unauthenticated("Invalid, revoked or expired token")
            user, expires_ms = found
            principal = Principal(
                id=user.id, name=user.name, bot=user.bot, credential=credential, expires_ms=expires_ms
            )
        if cache is not None:
            cache.put(credential, principal, generation)
    if principal.bot != expects_bot:
        right = "Bot" if principal.bot else "Bearer"
        raise Unauthenticated(f"This token belongs to a {'bot' if principal.bot else 'user'}: send `{right} <token>`")
    return principal


async def get_users(app: App, principal: Principal, user_ids: list[int]) -> list[repo.UserRecord]:
    ids = validation.id_list(user_ids, "user_ids")
    async with app.db.unit_of_work(write=False) as uow:
        return await repo.get_users(uow, ids)


async def list_users(
    app: App, *, name: str | None = None, after_id: int = 0, limit: int = 100
) -> list[repo.UserRecord]:
    async with app.db.unit_of_work(write=False) as uow:
        return await repo.list_users(uow, name=name, after_id=after_id, limit=limit)


async def show_user(app: App, user_id: int) -> repo.UserDetail:
    async with app.db.unit_of_work(write=False) as uow:
        detail = await repo.user_detail(uow, user_id)
    if detail is None:
        raise NotFound.of("USER")
    return detail
