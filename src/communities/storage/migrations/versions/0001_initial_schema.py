"""Initial schema: users and tokens, communities, channels, roles, members, member roles, channel overrides,
bans, invites with their roles and target users, uploads and files, worker id leases.

Ids are BIGINT (snowflakes, see storage/tables.py), times BIGINT Unix milliseconds.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_files_blob_key"), ["blob_key"], unique=False)

    op.create_table(
        "server_workers",
        sa.Column("worker_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_server_workers")),
    )
    op.create_table(
        "upload_parts",
        sa.Column("uploader_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("upload_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("part", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uploader_id", "upload_id", "part", name=op.f("pk_upload_parts")),
    )
    with op.batch_alter_table("upload_parts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upload_parts_created_at"), ["created_at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("bot", sa.Boolean(), nullable=False),
        sa.Column("community_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "communities",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("default_permissions", sa.BigInteger(), nullable=False),
        sa.Column("photo_file_id", sa.BigInteger(), nullable=True),
        sa.Column("photo_preview", sa.LargeBinary(), nullable=True),
        sa.Column("system_channel_id", sa.BigInteger(), nullable=True),
        sa.Column("join_messages", sa.Boolean(), nullable=False),
        sa.Column("role_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("channel_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("invite_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("channels_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_communities_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
    )
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_communities_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_tokens_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_tokens")),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "bans",
        sa.Column("community_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=512), server_default="", nullable=False),
        sa.Column("banned_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_bans_community_id_communities"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("community_id", "user_id", name=op.f("pk_bans")),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_channels_community_id_communities"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channels_community_id"), ["community_id"], unique=False)

    op.create_table(
        "members",
        sa.Column("community_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nickname", sa.String(length=32), nullable=True),
        sa.Column("joined_at", sa.BigInteger(), nullable=False),
        sa.Column("invite_code", sa.String(length=32), nullable=True),
        sa.Column("muted", sa.Boolean(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_members_community_id_communities"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_members_user_id_users")),
        sa.PrimaryKeyConstraint("community_id", "user_id", name=op.f("pk_members")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_user_id_joined_at", ["user_id", "joined_at"], unique=False)

    op.create_table(
        "roles",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("permissions", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("color", sa.Integer(), server_default="0", nullable=False),
        sa.Column("separated", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("public", sa.Boolean(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_roles_community_id_communities"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
    )
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roles_community_id"), ["community_id"], unique=False)

    op.create_table(
        "channel_overrides",
        sa.Column("channel_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("target_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("allow", sa.BigInteger(), nullable=False),
        sa.Column("deny", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_channel_overrides_channel_id_channels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("channel_id", "target_id", name=op.f("pk_channel_overrides")),
    )
    op.create_table(
        "invites",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("inviter_id", sa.BigInteger(), nullable=False),
        sa.Column("max_age", sa.Integer(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("targeted", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("job_status", sa.Integer(), server_default="0", nullable=False),
        sa.Column("job_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("job_processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("job_unknown", sa.Integer(), server_default="0", nullable=False),
        sa.Column("job_created_at", sa.BigInteger(), nullable=True),
        sa.Column("job_completed_at", sa.BigInteger(), nullable=True),
        sa.Column("job_heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("job_error", sa.String(length=500), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_invites_channel_id_channels"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_invites_community_id_communities"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_invites")),
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invites_channel_id"), ["channel_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invites_community_id"), ["community_id"], unique=False)
        batch_op.create_index("ix_invites_inviter_id_channel_id", ["inviter_id", "channel_id"], unique=False)

    op.create_table(
        "member_roles",
        sa.Column("community_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("role_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_member_roles_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_member_roles_role_id_roles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("community_id", "user_id", "role_id", name=op.f("pk_member_roles")),
    )
    with op.batch_alter_table("member_roles", schema=None) as batch_op:
        batch_op.create_index("ix_member_roles_role_id", ["role_id"], unique=False)
        batch_op.create_index("ix_member_roles_user_id", ["user_id"], unique=False)

    op.create_table(
        "invite_roles",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("role_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["code"], ["invites.code"], name=op.f("fk_invite_roles_code_invites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_invite_roles_role_id_roles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code", "role_id", name=op.f("pk_invite_roles")),
    )
    op.create_table(
        "invite_targets",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["code"], ["invites.code"], name=op.f("fk_invite_targets_code_invites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code", "user_id", name=op.f("pk_invite_targets")),
    )


def downgrade() -> None:
    op.drop_table("invite_targets")
    op.drop_table("invite_roles")
    with op.batch_alter_table("member_roles", schema=None) as batch_op:
        batch_op.drop_index("ix_member_roles_user_id")
        batch_op.drop_index("ix_member_roles_role_id")

    op.drop_table("member_roles")
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_index("ix_invites_inviter_id_channel_id")
        batch_op.drop_index(batch_op.f("ix_invites_community_id"))
        batch_op.drop_index(batch_op.f("ix_invites_channel_id"))

    op.drop_table("invites")
    op.drop_table("channel_overrides")
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roles_community_id"))

    op.drop_table("roles")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_user_id_joined_at")

    op.drop_table("members")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channels_community_id"))

    op.drop_table("channels")
    op.drop_table("bans")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_user_id"))

    op.drop_table("tokens")
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_communities_owner_id"))

    op.drop_table("communities")
    op.drop_table("users")
    with op.batch_alter_table("upload_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_parts_created_at"))

    op.drop_table("upload_parts")
    op.drop_table("server_workers")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_files_blob_key"))

    op.drop_table("files")
