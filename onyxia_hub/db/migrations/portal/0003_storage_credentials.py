"""Storage credentials cache: one encrypted row per user and scope, with a lease.

Shared by the hub (launches) and the portal (refreshes from running servers); see
onyxia_hub/providers/storage/cache.py (its model: onyxia_hub/db/models.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_storage_credentials",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.String(32), nullable=False, server_default=""),
        sa.Column("store_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("issued_at", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("renew_at", sa.Float(), nullable=True),
        sa.Column("issue_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("portal_storage_credentials")
