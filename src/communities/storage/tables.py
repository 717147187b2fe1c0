"""The schema, as SQLAlchemy Core tables. Alembic migrations in storage/migrations create exactly this.

Ids are snowflakes (fixed64 in the API). They are stored in signed 64-bit columns through `Snowflake`, which maps
the unsigned value to its two's complement, so any fixed64 a client sends can be used in a query without
overflowing the column. Times are Unix milliseconds in BIGINT columns: exact, and the same on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

_SIGN = 1 << 63
_WRAP = 1 << 64


class Snowflake(TypeDecorator):
    """An unsigned 64-bit id in a signed BIGINT column.

    `client_chosen`: the column holds ids a client picked (any fixed64). Everywhere else the ids were minted by
    this service, which stay below 2**63 until about 2095, so reading them back needs no conversion; the
    prepared-statement fast path skips it there (SQLAlchemy's own path always converts)."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, client_chosen: bool = False):
        super().__init__()
        self.client_chosen = client_chosen

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = int(value)
        return value - _WRAP if value >= _SIGN else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value + _WRAP if value < 0 else value


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("bot", Boolean, nullable=False),
    # Memberships held, kept by the same transactions that add and remove them; the per-user community limit
    # is a conditional UPDATE of this counter, so racing joins cannot pass it.
    Column("community_count", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    # SHA-256 of the token. The token itself is shown once and never stored.
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("user_id", Snowflake, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    # Unix ms after which the token is refused (the console's sign-in tokens); NULL: never.
    Column("expires_at", BigInteger, nullable=True, index=True),
)

communities = Table(
    "communities",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("owner_id", Snowflake, ForeignKey("users.id"), nullable=False, index=True),
    Column("default_permissions", BigInteger, nullable=False),
    Column("photo_file_id", Snowflake, nullable=True),
    Column("photo_preview", LargeBinary, nullable=True),
    # Not a foreign key (channels reference communities); services clear it when the channel goes.
    Column("system_channel_id", Snowflake, nullable=True),
    Column("join_messages", Boolean, nullable=False),
    # How many roles and channels it has, kept by the statements that add and remove them: the limits are
    # conditional UPDATEs of these counters, so racing creations cannot pass them.
    Column("role_count", Integer, nullable=False, server_default="0"),
    Column("channel_count", Integer, nullable=False, server_default="0"),
    # Active invites (not expired, not used up), for the per-community limit; same scheme as the counters above.
    Column("invite_count", Integer, nullable=False, server_default="0"),
    # Bumped by every change to its channels or their overrides, in the same transaction: a server may keep what
    # it computed from them for as long as the number stays the same (see services/channels.py).
    Column("channels_version", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=False),
    Column(
        "community_id",
        Snowflake,
        ForeignKey("communities.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(100), nullable=False),
    Column("type", Integer, nullable=False),  # ChannelType number
    Column("parent_id", Snowflake, nullable=True),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=False),
    Column(
        "community_id",
        Snowflake,
        ForeignKey("communities.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(100), nullable=False),
    Column("permissions", BigInteger, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("color", Integer, nullable=False, server_default="0"),
    Column("separated", Boolean, nullable=False, server_default="0"),
    Column("public", Boolean, nullable=False, server_default="0"),
)

members = Table(
    "members",
    metadata,
    Column(
        "community_id",
        Snowflake,
        ForeignKey("communities.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("user_id", Snowflake, ForeignKey("users.id"), primary_key=True, autoincrement=False),
    Column("nickname", String(32), nullable=True),
    Column("joined_at", BigInteger, nullable=False),
    Column("invite_code", String(32), nullable=True),
    Column("muted", Boolean, nullable=False, server_default="0"),
    # Joined with a temporary invite and not given a role since: removed when offline past the grace period.
    Column("temporary", Boolean, nullable=False, server_default="0"),
    Index("ix_members_user_id_joined_at", "user_id", "joined_at"),
)

member_roles = Table(
    "member_roles",
    metadata,
    Column(
        "community_id",
        Snowflake,
        ForeignKey("communities.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("user_id", Snowflake, primary_key=True, autoincrement=False),
    Column(
        "role_id",
        Snowflake,
        ForeignKey("roles.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Index("ix_member_roles_user_id", "user_id"),
    Index("ix_member_roles_role_id", "role_id"),
)

channel_overrides = Table(
    "channel_overrides",
    metadata,
    Column(
        "channel_id",
        Snowflake,
        ForeignKey("channels.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    # A role id, or the community id for @everyone.
    Column("target_id", Snowflake, primary_key=True, autoincrement=False),
    Column("allow", BigInteger, nullable=False),
    Column("deny", BigInteger, nullable=False),
)

bans = Table(
    "bans",
    metadata,
    Column(
        "community_id",
        Snowflake,
        ForeignKey("communities.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("user_id", Snowflake, primary_key=True, autoincrement=False),
    # Unix ms when it ends; NULL = permanent.
    Column("until_ms", BigInteger, nullable=True),
    Column("reason", String(512), nullable=False, server_default=""),
    Column("banned_by", Snowflake, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

invites = Table(
    "invites",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("community_id", Snowflake, ForeignKey("communities.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("channel_id", Snowflake, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("inviter_id", Snowflake, nullable=False),
    Column("max_age", Integer, nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),  # NULL = never
    Column("targeted", Boolean, nullable=False),
    # Members who join with it are temporary (see members.temporary).
    Column("temporary", Boolean, nullable=False, server_default="0"),
    # Counted in communities.invite_count; cleared when it is used up or swept after expiry.
    Column("active", Boolean, nullable=False),
    # The target users job (targeted invites): see services/invites.py.
    Column("job_id", Snowflake, nullable=True),
    Column("job_status", Integer, nullable=False, server_default="0"),
    Column("job_total", Integer, nullable=False, server_default="0"),
    Column("job_processed", Integer, nullable=False, server_default="0"),
    Column("job_unknown", Integer, nullable=False, server_default="0"),
    Column("job_created_at", BigInteger, nullable=True),
    Column("job_completed_at", BigInteger, nullable=True),
    Column("job_heartbeat_at", BigInteger, nullable=True),
    Column("job_error", String(500), nullable=False, server_default=""),
    Index("ix_invites_inviter_id_channel_id", "inviter_id", "channel_id"),
)

invite_roles = Table(
    "invite_roles",
    metadata,
    Column("code", String(32), ForeignKey("invites.code", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Snowflake, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
)

invite_targets = Table(
    "invite_targets",
    metadata,
    Column("code", String(32), ForeignKey("invites.code", ondelete="CASCADE"), primary_key=True),
    # Any fixed64 from a target users file (a player may register later).
    Column("user_id", Snowflake(client_chosen=True), primary_key=True, autoincrement=False),
)

upload_parts = Table(
    "upload_parts",
    metadata,
    Column("uploader_id", Snowflake, primary_key=True, autoincrement=False),
    Column("upload_id", Snowflake(client_chosen=True), primary_key=True, autoincrement=False),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False, index=True),
)

upload_quotas = Table(
    "upload_quotas",
    metadata,
    # The bytes of an uploader's upload_parts, kept by the same transactions that add, replace and remove them.
    # The pending-bytes limit is a conditional UPDATE of this row, which also serializes the uploader's part
    # writes (PostgreSQL row lock), so parallel uploads cannot pass the limit.
    Column("uploader_id", Snowflake, primary_key=True, autoincrement=False),
    Column("pending_bytes", BigInteger, nullable=False, server_default="0"),
)

blobs = Table(
    "blobs",
    metadata,
    # The contents of stored files on PostgreSQL, keyed by their SHA-256 (media/blobstore.py): every replica reads
    # them. SQLite deployments keep them as files under --media-dir instead.
    Column("key", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

files = Table(
    "files",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=False),
    # The blob store key (SHA-256 of the contents): several files may share one blob.
    Column("blob_key", String(64), nullable=False, index=True),
    Column("size", Integer, nullable=False),
    Column("mime", String(100), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

server_workers = Table(
    "server_workers",
    metadata,
    # Snowflake worker ids leased by running servers: two servers on one database never share one.
    Column("worker_id", Integer, primary_key=True, autoincrement=False),
    Column("instance", String(100), nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
)

# ------------------------------------------------------------------------------------------------ events (outbox)

events = Table(
    "events",
    metadata,
    # A snowflake: the audit log's id and page order.
    Column("id", Snowflake, primary_key=True, autoincrement=False),
    # No foreign key: a community's events outlive it (community_deleted is one of them), until retention.
    Column("community_id", Snowflake, nullable=False),
    # Gap-free per community, assigned in the transaction that made the change: commit order in the community.
    Column("seq", BigInteger, nullable=False),
    # The stream position readers follow (gap-free over all communities, in commit order). SQLite assigns it in
    # the same transaction (one writer at a time); on PostgreSQL a sequencer assigns it right after commit.
    Column("position", BigInteger, nullable=True),
    Column("kind", String(40), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor_id", Snowflake, nullable=True),
    Column("target_id", Snowflake(client_chosen=True), nullable=True),
    # Who may receive it: the channel's viewers (channel_id), members holding audience_permission (or being
    # audience_user_id), or only audience_user_id. See storage/events.py.
    Column("channel_id", Snowflake, nullable=True),
    Column("audience", Integer, nullable=False),
    Column("audience_permission", BigInteger, nullable=False),
    Column("audience_user_id", Snowflake, nullable=True),
    # The channel's overrides when it was deleted (its viewers can no longer be computed afterwards).
    Column("overrides", LargeBinary, nullable=True),
    Column("reason", String(512), nullable=True),
    # Whether it is an entry of the audit log.
    Column("audited", Boolean, nullable=False),
    # The Update message without cursor, community_id and at (serialized protobuf).
    Column("payload", LargeBinary, nullable=False),
    Index("uq_events_community_id_seq", "community_id", "seq", unique=True),
    Index("uq_events_position", "position", unique=True),
    Index(
        "ix_events_unsequenced", "id", postgresql_where=text("position IS NULL"), sqlite_where=text("position IS NULL")
    ),
    Index("ix_events_community_id_id", "community_id", "id"),
)

event_counters = Table(
    "event_counters",
    metadata,
    # The last seq given out in the community; its row lock orders a community's writers on PostgreSQL.
    Column("community_id", Snowflake, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
)

event_sequenced = Table(
    "event_sequenced",
    metadata,
    # PostgreSQL's sequencer: the last seq of the community that has a position. Apart from event_counters so that
    # the sequencer never waits for a writer's row lock.
    Column("community_id", Snowflake, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)

stream_head = Table(
    "stream_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # one row, id 1
    # The last position given out.
    Column("last_position", BigInteger, nullable=False),
    # Events up to this position were swept (retention): an older cursor has expired.
    Column("swept_position", BigInteger, nullable=False),
)

stream_presence = Table(
    "stream_presence",
    metadata,
    # One row per open Subscribe stream, heartbeated by the server holding it: temporary members are those with
    # no fresh row. In the database so that the rule holds across replicas.
    Column("stream_id", String(64), primary_key=True),
    Column("user_id", Snowflake, nullable=False, index=True),
    # While open: refreshed every few seconds. Once closed: when it closed.
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("open", Boolean, nullable=False),
)

# ------------------------------------------------------------------------------------------------ messages
#
# Unread counts are counters, so that sending never touches a row per member (see services/messages.py):
#   unread(member, channel) = message_channels.live_count - read_states.live_read - read_states.own_unread
# (no read_states row: everything live is unread). Sending bumps the channel's row and the sender's own row;
# deleting adjusts the channel's row and, in one statement, the rows of the readers who had already read past
# the message; MarkRead recomputes the reader's row. Mentions are rows only for what a message names.

message_channels = Table(
    "message_channels",
    metadata,
    # One row per channel that has had messages. Its row lock orders the channel's counter changes on PostgreSQL
    # (send, delete, MarkRead), so `seq` is the channel's commit order.
    Column(
        "channel_id", Snowflake, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    ),
    Column("community_id", Snowflake, nullable=False, index=True),
    # The last seq given out (messages ever sent, deleted ones included).
    Column("last_seq", BigInteger, nullable=False),
    # Messages not deleted.
    Column("live_count", BigInteger, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=False),
    Column("channel_id", Snowflake, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("community_id", Snowflake, nullable=False),
    # Gap-free per channel, in commit order (see message_channels): history pages by it.
    Column("seq", BigInteger, nullable=False),
    Column("author_id", Snowflake, nullable=False),
    Column("type", Integer, nullable=False),  # MessageType number
    Column("text", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("edited_at", BigInteger, nullable=True),
    # Resolved mentions, as space-separated decimal ids (what Message lists); message_mentions holds them as rows.
    Column("mention_user_ids", Text, nullable=False, server_default=""),
    Column("mention_role_ids", Text, nullable=False, server_default=""),
    Column("mention_everyone", Boolean, nullable=False, server_default="0"),
    # SendMessage's client_id: the unique index makes a retry return the first message, also under races.
    Column("client_id", Snowflake(client_chosen=True), nullable=True),
    # A deleted message stays as a tombstone (no text, no client_id) so that a cursor naming it keeps its place.
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Index("uq_messages_channel_id_seq", "channel_id", "seq", unique=True),
    Index("ix_messages_channel_id_id", "channel_id", "id"),
    Index("ix_messages_channel_id_author_id_seq", "channel_id", "author_id", "seq"),
    Index("uq_messages_channel_id_author_id_client_id", "channel_id", "author_id", "client_id", unique=True),
)

read_states = Table(
    "read_states",
    metadata,
    Column("user_id", Snowflake, primary_key=True, autoincrement=False),
    Column(
        "channel_id", Snowflake, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    ),
    Column("community_id", Snowflake, nullable=False),
    # The seq and id of the last message read (0 / NULL: none).
    Column("read_seq", BigInteger, nullable=False),
    Column("read_message_id", Snowflake, nullable=True),
    # Live messages with seq <= read_seq.
    Column("live_read", BigInteger, nullable=False),
    # The user's own live messages with seq > read_seq (never unread for them).
    Column("own_unread", BigInteger, nullable=False),
    Index("ix_read_states_channel_id_read_seq", "channel_id", "read_seq"),
)

message_mentions = Table(
    "message_mentions",
    metadata,
    # One row per user, role (or the community id for @everyone) a live message mentions; deleted with it.
    Column(
        "message_id", Snowflake, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    ),
    Column("target_id", Snowflake, primary_key=True, autoincrement=False),
    Column("channel_id", Snowflake, nullable=False),
    Column("community_id", Snowflake, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("author_id", Snowflake, nullable=False),
    Index("ix_message_mentions_channel_id_seq", "channel_id", "seq"),
)

__all__ = [
    "bans",
    "blobs",
    "channel_overrides",
    "channels",
    "communities",
    "event_counters",
    "event_sequenced",
    "events",
    "files",
    "invite_roles",
    "invite_targets",
    "invites",
    "member_roles",
    "members",
    "message_channels",
    "message_mentions",
    "messages",
    "metadata",
    "read_states",
    "roles",
    "server_workers",
    "stream_head",
    "stream_presence",
    "tokens",
    "upload_parts",
    "upload_quotas",
    "users",
]

# ------------------------------------------------------------------------- player identities and revocations

jwt_identities = Table(
    "jwt_identities",
    metadata,
    # A player signed in with a JSON Web Token: (`iss`, `sub`) is one user, created on first use. The primary key
    # makes racing first calls with the same new token create exactly one.
    Column("issuer", String(255), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", Snowflake, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
)

token_revocations = Table(
    "token_revocations",
    metadata,
    # A change feed of revocations (one token, or every token of a user), written in the transaction that deletes
    # the tokens; every server polls it to drop what it has cached. Kept for a day.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", LargeBinary(32), nullable=True),
    Column("user_id", Snowflake, nullable=True),
    Column("revoked_at", BigInteger, nullable=False, index=True),
)

__all__ += ["jwt_identities", "token_revocations"]

console_login_links = Table(
    "console_login_links",
    metadata,
    # A one-time sign-in link for the web console (`communities console-link`): the SHA-256 of its code; redeemed
    # by one conditional UPDATE that sets used_at, so a code signs in at most once.
    Column("code_hash", LargeBinary(32), primary_key=True),
    Column("user_id", Snowflake, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("used_at", BigInteger, nullable=True),
)

__all__ += ["console_login_links"]
