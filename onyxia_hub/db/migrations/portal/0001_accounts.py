"""Per-user account settings: git identity, personal access token (encrypted), repository.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_accounts",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("git_name", sa.String(100), nullable=True),
        sa.Column("git_email", sa.String(254), nullable=True),
        # Fernet ciphertext only (see onyxia_hub.db.crypto), never the token itself
        sa.Column("git_token", sa.Text(), nullable=True),
        sa.Column("git_repository", sa.String(2048), nullable=True),
        sa.Column("git_branch", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("portal_accounts")
