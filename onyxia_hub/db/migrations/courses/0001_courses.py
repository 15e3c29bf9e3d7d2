"""Courses, each trainee's course server, and the record of what happened.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "courses_courses",
        sa.Column("id", sa.String(30), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("autostart", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "courses_servers",
        sa.Column("course_id", sa.String(30), primary_key=True),
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("server_name", sa.String(30), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started", sa.String(40), nullable=True),
        sa.Column("pull_state", sa.String(16), nullable=True),
        sa.Column("pull_message", sa.String(500), nullable=True),
        sa.Column("pull_at", sa.Float(), nullable=True),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "courses_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("course_id", sa.String(30), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("message", sa.String(500), nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_courses_events_course_id", "courses_events", ["course_id"])


def downgrade() -> None:
    op.drop_index("ix_courses_events_course_id", "courses_events")
    op.drop_table("courses_events")
    op.drop_table("courses_servers")
    op.drop_table("courses_courses")
