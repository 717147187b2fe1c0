"""Signing in to the console with a one-time link: `communities console-link USER_ID` stores the SHA-256 of a
random code and prints `<console URL>#login=<code>`; the page posts the code to /console/login, which redeems it
(once: a conditional UPDATE) and creates a new, ordinary token of that user that expires after TOKEN_SECONDS.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from communities.domain.errors import NotFound
from communities.services import users
from communities.services.context import App
from communities.storage import login_links
from communities.storage import repository as repo

LINK_SECONDS = 10 * 60
TOKEN_SECONDS = 12 * 3600
CODE_BYTES = 32
MAX_CODE_LENGTH = 200


@dataclass(frozen=True)
class ConsoleSession:
    user: repo.UserRecord
    token: str
    expires_ms: int


async def create_link(app: App, user_id: int, *, seconds: int = LINK_SECONDS) -> str:
    """A new single-use code for `user_id`, valid for `seconds`; only its hash is stored."""
    code = secrets.token_urlsafe(CODE_BYTES)
    async with app.db.unit_of_work(write=True) as uow:
        if await repo.get_user(uow, user_id) is None:
            raise NotFound.of("USER")
        now = app.clock_ms()
        await login_links.insert_link(uow, users.hash_token(code), user_id, now, now + seconds * 1000)
    return code


async def redeem(app: App, code: str, *, token_seconds: int = TOKEN_SECONDS) -> ConsoleSession | None:
    """The session for an unused, unexpired code (which is used up by this); None for any other code."""
    if not code or len(code) > MAX_CODE_LENGTH:
        return None
    token = users.new_token()
    async with app.db.unit_of_work(write=True) as uow:
        now = app.clock_ms()
        user_id = await login_links.redeem(uow, users.hash_token(code), now)
        if user_id is None:
            return None
        user = await repo.get_user(uow, user_id)
        if user is None:  # pragma: no cover - links go with their user (ON DELETE CASCADE)
            return None
        expires_ms = now + token_seconds * 1000
        await repo.insert_token(uow, users.hash_token(token), user_id, now, expires_ms)
    return ConsoleSession(user, token, expires_ms)


async def sweep_expired(app: App) -> int:
    """Forget expired links and expired tokens (both are refused already; this only frees the rows)."""
    async with app.db.unit_of_work(write=True) as uow:
        now = app.clock_ms()
        return await login_links.delete_expired(uow, now) + await repo.delete_expired_tokens(uow, now)
