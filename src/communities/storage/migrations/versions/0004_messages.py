"""Messages: messages (tombstones for deleted ones), per-channel counters, per-member read states and mention rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_channels",
        sa.Column("channel_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("live_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_message_channels_channel_id_channels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_message_channels")),
    )
    op.create_index(op.f("ix_message_channels_community_id"), "message_channels", ["community_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("edited_at", sa.BigInteger(), nullable=True),
        sa.Column("mention_user_ids", sa.Text(), server_default="", nullable=False),
        sa.Column("mention_role_ids", sa.Text(), server_default="", nullable=False),
        sa.Column("mention_everyone", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_messages_channel_id_channels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index("uq_messages_channel_id_seq", "messages", ["channel_id", "seq"], unique=True)
    op.create_index("ix_messages_channel_id_id", "messages", ["channel_id", "id"])
    op.create_index("ix_messages_channel_id_author_id_seq", "messages", ["channel_id", "author_id", "seq"])
    op.create_index(
        "uq_messages_channel_id_author_id_client_id", "messages", ["channel_id", "author_id", "client_id"], unique=True
    )
    op.create_table(
        "read_states",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("read_seq", sa.BigInteger(), nullable=False),
        sa.Column("read_message_id", sa.BigInteger(), nullable=True),
        sa.Column("live_read", sa.BigInteger(), nullable=False),
        sa.Column("own_unread", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_read_states_channel_id_channels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "channel_id", name=op.f("pk_read_states")),
    )
    op.create_index("ix_read_states_channel_id_read_seq", "read_states", ["channel_id", "read_seq"])
    op.create_table(
        "message_mentions",
        sa.Column("message_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("target_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_mentions_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("message_id", "target_id", name=op.f("pk_message_mentions")),
    )
    op.create_index("ix_message_mentions_channel_id_seq", "message_mentions", ["channel_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_message_mentions_channel_id_seq", table_name="message_mentions")
    op.drop_table("message_mentions")
    op.drop_index("ix_read_states_channel_id_read_seq", table_name="read_states")
    op.drop_table("read_states")
    op.drop_index("uq_messages_channel_id_author_id_client_id", table_name="messages")
    op.drop_index("ix_messages_channel_id_author_id_seq", table_name="messages")
    op.drop_index("ix_messages_channel_id_id", table_name="messages")
    op.drop_index("uq_messages_channel_id_seq", table_name="messages")
    op.drop_table("messages")
    op.drop_index(op.f("ix_message_channels_community_id"), table_name="message_channels")
    op.drop_table("message_channels")
