"""Player identities and the revocation feed: jwt_identities maps a JSON Web Token's (issuer, subject) to one
user; token_revocations is the change feed every server polls to drop revoked tokens from its cache.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jwt_identities",
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_jwt_identities_user_id_users")),
        sa.PrimaryKeyConstraint("issuer", "subject", name=op.f("pk_jwt_identities")),
    )
    op.create_index("ix_jwt_identities_user_id", "jwt_identities", ["user_id"])
    op.create_table(
        "token_revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_revocations")),
    )
    op.create_index("ix_token_revocations_revoked_at", "token_revocations", ["revoked_at"])


def downgrade() -> None:
    op.drop_table("token_revocations")
    op.drop_table("jwt_identities")
