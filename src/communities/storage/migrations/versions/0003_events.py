"""Events: the outbox every unit of work writes with its change (update stream and audit log), per-community
sequences, the stream head, Subscribe stream presence, and temporary memberships. Also repairs channel positions
stored out of bounds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("target_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("audience", sa.Integer(), nullable=False),
        sa.Column("audience_permission", sa.BigInteger(), nullable=False),
        sa.Column("audience_user_id", sa.BigInteger(), nullable=True),
        sa.Column("overrides", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.String(length=512), nullable=True),
        sa.Column("audited", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("uq_events_community_id_seq", "events", ["community_id", "seq"], unique=True)
    op.create_index("uq_events_position", "events", ["position"], unique=True)
    op.create_index(
        "ix_events_unsequenced",
        "events",
        ["id"],
        postgresql_where=sa.text("position IS NULL"),
        sqlite_where=sa.text("position IS NULL"),
    )
    op.create_index("ix_events_community_id_id", "events", ["community_id", "id"])
    op.create_table(
        "event_counters",
        sa.Column("community_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_event_counters")),
    )
    op.create_table(
        "event_sequenced",
        sa.Column("community_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_event_sequenced")),
    )
    stream_head = op.create_table(
        "stream_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("swept_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_head")),
    )
    op.bulk_insert(stream_head, [{"id": 1, "last_position": 0, "swept_position": 0}])
    op.create_table(
        "stream_presence",
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_stream_presence")),
    )
    op.create_index(op.f("ix_stream_presence_user_id"), "stream_presence", ["user_id"])
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("temporary", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("invites") as batch_op:
        batch_op.add_column(sa.Column("temporary", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Channel positions outside Channel.position's bounds (0..2147483647), stored before they were validated,
    # made GetChannels fail for the whole community.
    op.execute("UPDATE channels SET position = 2147483647 WHERE position > 2147483647")
    op.execute("UPDATE channels SET position = 0 WHERE position < 0")


def downgrade() -> None:
    with op.batch_alter_table("invites") as batch_op:
        batch_op.drop_column("temporary")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("temporary")
    op.drop_index(op.f("ix_stream_presence_user_id"), table_name="stream_presence")
    op.drop_table("stream_presence")
    op.drop_table("stream_head")
    op.drop_table("event_sequenced")
    op.drop_table("event_counters")
    op.drop_index("ix_events_community_id_id", table_name="events")
    op.drop_index("ix_events_unsequenced", table_name="events")
    op.drop_index("uq_events_position", table_name="events")
    op.drop_index("uq_events_community_id_seq", table_name="events")
    op.drop_table("events")
