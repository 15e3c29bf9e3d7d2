"""The portal's store: per-user settings, in SQLite by default or PostgreSQL in production.

Why not auth_state: JupyterHub rewrites a user's auth_state at every login (to None when
the authenticator returns none), so settings kept there would be lost.

Every query takes the user's name and filters on it: there is no method that reaches a
row without naming its owner, so a handler cannot hand one user another user's data by
mistake. Secret fields hold Fernet ciphertext only (`crypto.FieldCrypto`).

Tables (created and upgraded by `migrate.upgrade`, revisions in `migrations/versions/`):

- `portal_accounts`: one row per user who saved settings (git name, e-mail, token,
  repository, branch);
- `portal_configurations`: saved launch configurations (name, canonical user_options,
  the server they relaunch into), at most `MAX_CONFIGURATIONS` per user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .crypto import CryptoError, FieldCrypto

MAX_CONFIGURATIONS = 50
UNCHANGED = object()  # save_account(token=UNCHANGED): keep the stored token


def _now() -> datetime:
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
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=_now)


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
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=_now)


@dataclass(frozen=True)
class Account:
    """What "My account" shows: the token only as whether it is set and its last 4 chars."""

    git_name: str | None = None
    git_email: str | None = None
    git_repository: str | None = None
    git_branch: str | None = None
    token_set: bool = False
    token_hint: str | None = None  # '…wxyz', or None when unset or unreadable
    token_unreadable: bool = False  # set, but the keys given cannot decrypt it
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SavedConfiguration:
    id: int
    name: str
    server_name: str
    user_options: dict
    created_at: datetime
    updated_at: datetime


class StoreError(ValueError):
    """A request the store refuses; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def make_engine(db_url: str) -> Engine:
    url = make_url(db_url)
    kwargs = {"pool_pre_ping": True} if not url.drivername.startswith("sqlite") else {}
    return create_engine(url, future=True, **kwargs)


def safe_url(db_url: str) -> str:
    """db_url with its password hidden, for logs."""
    return make_url(db_url).render_as_string(hide_password=True)


class Store:
    def __init__(self, engine: Engine, crypto: FieldCrypto):
        self.engine = engine
        self.crypto = crypto

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- account -----------------------------------------------------------------------
    def account(self, user: str) -> Account:
        with self.session() as db:
            row = db.get(AccountRow, user)
            if row is None:
                return Account()
            hint, unreadable = None, False
            if row.git_token:
                try:
                    hint = "…" + self.crypto.decrypt(user, row.git_token)[-4:]
                except CryptoError:
                    unreadable = True
            return Account(
                git_name=row.git_name,
                git_email=row.git_email,
                git_repository=row.git_repository,
                git_branch=row.git_branch,
                token_set=bool(row.git_token),
                token_hint=hint,
                token_unreadable=unreadable,
                updated_at=row.updated_at,
            )

    def git_token(self, user: str) -> str | None:
        """The user's token in clear, for what needs it (a git provider at launch)."""
        with self.session() as db:
            row = db.get(AccountRow, user)
            if row is None or not row.git_token:
                return None
            return self.crypto.decrypt(user, row.git_token)

    def save_account(
        self,
        user: str,
        *,
        git_name=UNCHANGED,
        git_email=UNCHANGED,
        git_repository=UNCHANGED,
        git_branch=UNCHANGED,
        git_token=UNCHANGED,
    ) -> Account:
        """Set the fields given (None clears one; values must be validated already)."""
        with self.session() as db, db.begin():
            row = db.get(AccountRow, user) or AccountRow(username=user)
            for field, value in (
                ("git_name", git_name),
                ("git_email", git_email),
                ("git_repository", git_repository),
                ("git_branch", git_branch),
            ):
                if value is not UNCHANGED:
                    setattr(row, field, value)
            if git_token is not UNCHANGED:
                row.git_token = None if git_token is None else self.crypto.encrypt(user, git_token)
            row.updated_at = _now()
            db.add(row)
        return self.account(user)

    # -- saved configurations ------------------------------------------------------------
    @staticmethod
    def _configuration(row: ConfigurationRow) -> SavedConfiguration:
        return SavedConfiguration(
            row.id,
            row.name,
            row.server_name or "",
            json.loads(row.user_options),
            row.created_at,
            row.updated_at,
        )

    def configurations(self, user: str) -> list[SavedConfiguration]:
        with self.session() as db:
            rows = db.scalars(
                select(ConfigurationRow)
                .where(ConfigurationRow.username == user)
                .order_by(ConfigurationRow.name)
            )
            return [self._configuration(r) for r in rows]

    def configuration(self, user: str, config_id: int) -> SavedConfiguration | None:
        with self.session() as db:
            row = db.get(ConfigurationRow, config_id)
            if row is None or row.username != user:  # someone else's: as if it did not exist
                return None
            return self._configuration(row)

    def add_configuration(
        self, user: str, name: str, user_options: dict, server_name: str = ""
    ) -> SavedConfiguration:
        with self.session() as db, db.begin():
            count = db.scalar(select(func.count()).where(ConfigurationRow.username == user))
            if count >= MAX_CONFIGURATIONS:
                raise StoreError(
                    "name", f"you have {count} saved configurations, the most there may be"
                )
            self._check_free_name(db, user, name)
            row = ConfigurationRow(
                username=user,
                name=name,
                server_name=server_name,
                user_options=json.dumps(user_options, sort_keys=True),
            )
            db.add(row)
            try:
                db.flush()
            except IntegrityError:
                raise StoreError(
                    "name", f"you already have a configuration named {name!r}"
                ) from None
            return self._configuration(row)

    def update_configuration(
        self, user: str, config_id: int, *, name=UNCHANGED, server_name=UNCHANGED
    ) -> SavedConfiguration | None:
        with self.session() as db, db.begin():
            row = db.get(ConfigurationRow, config_id)
            if row is None or row.username != user:
                return None
            if name is not UNCHANGED and name != row.name:
                self._check_free_name(db, user, name)
                row.name = name
            if server_name is not UNCHANGED:
                row.server_name = server_name
            row.updated_at = _now()
            return self._configuration(row)

    def delete_configuration(self, user: str, config_id: int) -> bool:
        with self.session() as db, db.begin():
            row = db.get(ConfigurationRow, config_id)
            if row is None or row.username != user:
                return False
            db.delete(row)
            return True

    @staticmethod
    def _check_free_name(db: Session, user: str, name: str) -> None:
        taken = db.scalar(
            select(ConfigurationRow.id).where(
                ConfigurationRow.username == user, ConfigurationRow.name == name
            )
        )
        if taken is not None:
            raise StoreError("name", f"you already have a configuration named {name!r}")

    # -- keys --------------------------------------------------------------------------
    def reencrypt(self) -> int:
        """Re-encrypt with the first key every field another key encrypted; the count."""
        count = 0
        with self.session() as db, db.begin():
            for row in db.scalars(select(AccountRow).where(AccountRow.git_token.is_not(None))):
                try:
                    if self.crypto.needs_rotation(row.git_token):
                        row.git_token = self.crypto.rotate(row.git_token)
                        count += 1
                except CryptoError:  # unreadable with every key: left as it is, shown as such
                    continue
        return count
