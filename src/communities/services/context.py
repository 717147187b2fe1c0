"""What every use case gets: the database, the id generator, the clock, and who is calling."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from communities.domain.snowflake import SnowflakeGenerator
from communities.media.blobstore import Blobs
from communities.storage.database import Database
from communities.updates.hub import Hub
from communities.updates.streams import StreamRegistry

if TYPE_CHECKING:
    from communities.services.credentials import CredentialCache
    from communities.services.identities import JwtVerifier


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class App:
    db: Database
    ids: SnowflakeGenerator
    blobs: Blobs
    clock_ms: Callable[[], int] = field(default=wall_clock_ms)
    # Work that outlives the call that started it (target user jobs); the server waits for or cancels it on stop.
    background: set[asyncio.Task] = field(default_factory=set)
    # See services/blobs.py.
    blob_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Channel lists by (community, its channels_version, the member's standing): see services/channels.py.
    channel_lists: BoundedCache = field(default_factory=lambda: BoundedCache(4096))
    # GetCommunities' answers by the rows they were built from (see services/communities.py); a few KB each.
    community_lists: BoundedCache = field(default_factory=lambda: BoundedCache(1024))
    # Callers' own permission explanations, by the same kind of key plus the channel: see services/roles.py.
    explanations: BoundedCache = field(default_factory=lambda: BoundedCache(4096))
    # Invite previews' member counts with when they were counted: see services/invites.py.
    member_counts: BoundedCache = field(default_factory=lambda: BoundedCache(4096))
    # The update stream machinery of a running server (None in the operator CLI): see services/updates.py.
    hub: Hub | None = None
    streams: StreamRegistry | None = None
    # PostgreSQL: give positions to the events committed so far (see updates/wakeup.py); None where commits do.
    sequence_committed: Callable[[], Awaitable[None]] | None = None
    # Player identities: the JSON Web Token issuers this server trusts (services/identities.py); None: none.
    jwt: JwtVerifier | None = None
    # A running server's authentication cache and revocation feed (services/credentials.py); None in the CLI.
    credentials: CredentialCache | None = None

    # What updates/publish.py needs of the application.
    def next_id(self) -> int:
        return self.ids.next_id()

    def now_ms(self) -> int:
        return self.clock_ms()


class BoundedCache:
    """A dict that forgets its least recently used entries beyond `size`."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict = OrderedDict()

    def get(self, key):
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    id: int
    name: str
    bot: bool
    # The stored hash of the token the call came with (update streams end when it is revoked).
    credential: bytes | None = field(default=None, compare=False, repr=False)
    # A JSON Web Token's principal: when its token stops being accepted (Unix ms); its update streams end then.
    expires_ms: int | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"{'bot' if self.bot else 'user'}:{self.id}"
