"""The tables of every store, on one declarative base.

The portal's store (revisions in `migrations/portal/`, see `onyxia_hub.db.portal`):

- `portal_accounts`: My account, one row per user who saved settings (git name, e-mail,
  token as ciphertext, default repository and branch); read by the git provider;
- `portal_configurations`: saved launch configurations (name, canonical user_options,
  the server they relaunch into);
- `portal_storage_credentials`: the S3 credentials cache (ciphertext, renewal, lease),
  shared by the hub's storage provider and the portal (onyxia_hub/providers/storage/cache.py).

The courses service's store (revisions in `migrations/courses/`, `onyxia_hub.db.courses`):
`courses_courses` (courses made on its pages or API), `courses_servers` (each trainee's
course server and its state), `courses_events` (the record: join, start, ready, failure,
stop).

The models describe the tables for queries; the migrations create them. A column added
here needs a revision there.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the tables hold."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class AccountRow(Base):
    __tablename__ = "portal_accounts"
    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    git_name: Mapped[str | None] = mapped_column(String(100))
    git_email: Mapped[str | None] = mapped_column(String(254))
    git_token: Mapped[str | None] = mapped_column(Text)  # ciphertext
    git_repository: Mapped[str | None] = mapped_column(String(2048))
    git_branch: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConfigurationRow(Base):
    __tablename__ = "portal_configurations"
    __table_args__ = (
        UniqueConstraint("username", "name", name="uq_portal_configurations_username_name"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(64))
    server_name: Mapped[str] = mapped_column(String(30), default="")
    user_options: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CredentialRow(Base):
    __tablename__ = "portal_storage_credentials"
    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(32), default="")
    store_id: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)  # ciphertext
    issued_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    renew_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    issue_count: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)


# -- the courses service's store (revisions in `migrations/courses/`, `onyxia_hub.db.courses`)
class CourseRow(Base):
    """A course created on the courses service's pages or through its API (course files
    stay files: they are read, never copied here)."""

    __tablename__ = "courses_courses"
    id: Mapped[str] = mapped_column(String(30), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[str] = mapped_column(Text)  # options, open, join, instructors (JSON)
    autostart: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TraineeServerRow(Base):
    """The server the service created for one trainee of one course, and where it stands."""

    __tablename__ = "courses_servers"
    course_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    server_name: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(16), default="joined")
    started: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the hub's
    pull_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    pull_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    pull_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CourseEventRow(Base):
    """One line of a course's record: join, start, ready, failure, stop."""

    __tablename__ = "courses_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    course_id: Mapped[str] = mapped_column(String(30), index=True)
    username: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
