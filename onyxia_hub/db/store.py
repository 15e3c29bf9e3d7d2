"""Queries of the portal's store: My account and saved configurations.

Why not auth_state: JupyterHub rewrites a user's auth_state at every login (to None when
the authenticator returns none), so settings kept there would be lost.

Every query takes the user's name and filters on it: there is no method that reaches a
row without naming its owner, so a handler cannot hand one user another user's data by
mistake. Secret fields hold Fernet ciphertext only (`crypto.FieldCrypto`).

The portal reads and writes both tables; the hub's git provider reads `portal_accounts`
(`account`, `git_token`). Tables and revisions: `models`, `migrations/portal/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import engine as engines
from .crypto import CryptoError, FieldCrypto
from .models import AccountRow, ConfigurationRow
from .models import utcnow as _now

MAX_CONFIGURATIONS = 50
UNCHANGED = object()  # save_account(token=UNCHANGED): keep the stored token


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


class Store:
    def __init__(self, engine: Engine, crypto: FieldCrypto):
        self.engine = engine
        self.crypto = crypto

    def session(self, *, write: bool = False) -> Session:
        return engines.session(self.engine, write=write)

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

        def transaction():
            with self.session(write=True) as db, db.begin():
                row = db.get(AccountRow, user, with_for_update=True) or AccountRow(username=user)
                for field, value in (
                    ("git_name", git_name),
                    ("git_email", git_email),
                    ("git_repository", git_repository),
                    ("git_branch", git_branch),
                ):
                    if value is not UNCHANGED:
                        setattr(row, field, value)
                if git_token is not UNCHANGED:
                    sealed = None if git_token is None else self.crypto.encrypt(user, git_token)
                    row.git_token = sealed
                row.updated_at = _now()
                db.add(row)

        engines.again_on_conflict(transaction)
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
        with self.session(write=True) as db, db.begin():
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
        with self.session(write=True) as db, db.begin():
            row = db.get(ConfigurationRow, config_id, with_for_update=True)
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
        with self.session(write=True) as db, db.begin():
            row = db.get(ConfigurationRow, config_id, with_for_update=True)
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
        with self.session(write=True) as db, db.begin():
            for row in db.scalars(select(AccountRow).where(AccountRow.git_token.is_not(None))):
                try:
                    if self.crypto.needs_rotation(row.git_token):
                        row.git_token = self.crypto.rotate(row.git_token)
                        count += 1
                except CryptoError:  # unreadable with every key: left as it is, shown as such
                    continue
        return count
