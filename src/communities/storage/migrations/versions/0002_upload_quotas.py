"""Upload quotas: a per-uploader counter of the bytes held in upload_parts, so that the pending-bytes limit is one
conditional UPDATE (parallel UploadFilePart calls could all pass a SUM read before any of them inserted).

Filled from the parts already stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_quotas",
        sa.Column("uploader_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pending_bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("uploader_id", name=op.f("pk_upload_quotas")),
    )
    op.execute(
        "INSERT INTO upload_quotas (uploader_id, pending_bytes) "
        "SELECT uploader_id, SUM(size) FROM upload_parts GROUP BY uploader_id"
    )


def downgrade() -> None:
    op.drop_table("upload_quotas")
