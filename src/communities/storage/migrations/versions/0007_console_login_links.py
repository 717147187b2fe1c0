"""The web console's sign-in: tokens may expire (`expires_at`, Unix ms; NULL: never), and one-time login links
(`communities console-link`) are stored as the SHA-256 of their code, redeemed at most once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("expires_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_tokens_expires_at", "tokens", ["expires_at"])
    op.create_table(
        "console_login_links",
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_login_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_console_login_links")),
    )
    op.create_index("ix_console_login_links_expires_at", "console_login_links", ["expires_at"])


def downgrade() -> None:
    op.drop_table("console_login_links")
    op.drop_index("ix_tokens_expires_at", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")
