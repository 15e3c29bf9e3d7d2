"""The account store behind `OnyxiaLocalAuthenticator`.

Accounts live in NativeAuthenticator's own `users_info` table (same columns, same bcrypt
hashes), so a hub that used NativeAuthenticator keeps its accounts. Next to it, the
`onyxia_account_security` table holds what NativeAuthenticator kept in memory or not at
all: failed sign-ins and lock-outs (which must survive a restart, or restarting the hub
would reset an attacker's counter) and the "must change password" flag of accounts an
administrator created.

An account may have no password yet (an empty hash, which no password matches): a user
added through JupyterHub's admin page or REST API gets such an account, listed on the
Admin > People page, usable once an administrator sets a password there.

The store has its own database connection (`db_url`), as JupyterHub asks of
authenticators since the shared `Authenticator.db` session was deprecated.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bcrypt
from nativeauthenticator.orm import UserInfo
from sqlalchemy import Boolean, DateTime, Integer, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

# A bcrypt hash of a random string, compared against when an account does not exist, so
# that a wrong name and a wrong password take the same time to refuse.
_DUMMY_HASH = bcrypt.hashpw(b"no account has this password", bcrypt.gensalt())
MAX_PASSWORD_BYTES = 72  # bcrypt ignores what follows; refuse rather than truncate
# the addresses NativeAuthenticator's `users_info` table accepts (its validator asserts)
ACCOUNT_EMAIL = re.compile(r"[A-Za-z0-9.+_-]+@[A-Za-z0-9._-]+\.[a-zA-Z]*")


class _Base(DeclarativeBase):
    pass


class AccountSecurity(_Base):
    """Sign-in failures, lock-outs and flags of one account name (existing or not)."""

    __tablename__ = "onyxia_account_security"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_failure: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


def utcnow() -> datetime:
    """Naive UTC, as stored by SQLite."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Account:
    """What the pages show of an account (never its password hash)."""

    username: str
    authorized: bool
    failed_logins: int
    locked_until: datetime | None
    must_change_password: bool
    has_password: bool = True
    email: str | None = None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > utcnow()


def open_session(db_url: str) -> Session:
    """A session on the account database, creating its two tables when missing."""
    engine = create_engine(db_url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    UserInfo.__table__.create(engine, checkfirst=True)
    _Base.metadata.create_all(engine)
    return sessionmaker(bind=engine, expire_on_commit=False)()


def hash_password(password: str) -> bytes:
    """A bcrypt hash (about 0.2 s of CPU: call it through `hash_password_async` in the hub)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt())


async def hash_password_async(password: str) -> bytes:
    return await asyncio.to_thread(hash_password, password)


async def password_matches(stored_hash: bytes | None, password: str) -> bool:
    """Check a password in a thread: bcrypt takes ~0.2 s and must not block the hub."""
    candidate = password.encode()
    if len(candidate) > MAX_PASSWORD_BYTES:
        candidate = candidate[:MAX_PASSWORD_BYTES] + b"\0"  # never equal to a stored one
    target = stored_hash or _DUMMY_HASH
    matched = await asyncio.to_thread(bcrypt.checkpw, candidate, target)
    return matched and bool(stored_hash)  # an empty hash: no password set yet


class AccountStore:
    """Operations on accounts, each committed at once."""

    def __init__(self, db: Session):
        self.db = db

    # -- reading -----------------------------------------------------------------------
    def info(self, username: str) -> UserInfo | None:
        return self.db.query(UserInfo).filter(UserInfo.username == username).first()

    def security(self, username: str) -> AccountSecurity:
        row = self.db.get(AccountSecurity, username)
        if row is None:
            row = AccountSecurity(username=username, failed_logins=0, must_change_password=False)
        return row

    def list(self) -> list[Account]:
        security = {row.username: row for row in self.db.query(AccountSecurity)}
        accounts = []
        for info in self.db.query(UserInfo).order_by(UserInfo.username):
            sec = security.get(info.username)
            accounts.append(
                Account(
                    username=info.username,
                    authorized=bool(info.is_authorized),
                    failed_logins=sec.failed_logins if sec else 0,
                    locked_until=sec.locked_until if sec else None,
                    must_change_password=bool(sec and sec.must_change_password),
                    has_password=bool(info.password),
                    email=info.email or None,
                )
            )
        return accounts

    def exists(self, username: str) -> bool:
        return self.info(username) is not None

    # -- writing -----------------------------------------------------------------------
    def create(
        self,
        username: str,
        password_hash: bytes | None,
        *,
        authorized: bool,
        must_change: bool,
        email: str | None = None,
    ) -> None:
        """Add an account; hash its password with `hash_password` (in a thread if async).
        None: no password yet, nobody can sign in until one is set."""
        self.db.add(
            UserInfo(
                username=username,
                password=password_hash or b"",
                is_authorized=authorized,
                email=email or None,
            )
        )
        self._fresh_start(username, must_change)

    def set_password(self, username: str, password_hash: bytes, *, must_change: bool) -> bool:
        info = self.info(username)
        if info is None:
            return False
        info.password = password_hash
        self._fresh_start(username, must_change)
        return True

    def _fresh_start(self, username: str, must_change: bool) -> None:
        """A new password: forget failures and lock-outs, set the first-sign-in flag."""
        sec = self.security(username)
        sec.must_change_password = must_change
        sec.failed_logins = 0
        sec.locked_until = None
        self.db.merge(sec)
        self.db.commit()

    def set_authorized(self, username: str, authorized: bool) -> bool:
        info = self.info(username)
        if info is None:
            return False
        info.is_authorized = authorized
        self.db.commit()
        return True

    def delete(self, username: str) -> None:
        info = self.info(username)
        if info is not None:
            self.db.delete(info)
        sec = self.db.get(AccountSecurity, username)
        if sec is not None:
            self.db.delete(sec)
        self.db.commit()

    def record_failure(self, username: str, *, limit: int, lock_for: timedelta) -> None:
        """Count a failed sign-in; lock the name for `lock_for` at the `limit`-th in a row."""
        sec = self.security(username)
        now = utcnow()
        sec.failed_logins = (sec.failed_logins or 0) + 1
        sec.last_failure = now
        if limit and sec.failed_logins >= limit:
            sec.locked_until = now + lock_for
            sec.failed_logins = 0
        self.db.merge(sec)
        self.db.commit()

    def record_success(self, username: str) -> None:
        sec = self.db.get(AccountSecurity, username)
        if sec is not None and (sec.failed_logins or sec.locked_until):
            sec.failed_logins = 0
            sec.locked_until = None
            self.db.commit()

    def unlock(self, username: str) -> None:
        self.record_success(username)

    def forget_stale_failures(self, older_than: timedelta) -> int:
        """Drop failure rows of names that are neither locked nor flagged (bounded table)."""
        cutoff = utcnow() - older_than
        stale = (
            self.db.query(AccountSecurity)
            .filter(AccountSecurity.must_change_password.is_(False))
            .filter(AccountSecurity.last_failure < cutoff)
            .filter(
                (AccountSecurity.locked_until.is_(None)) | (AccountSecurity.locked_until < utcnow())
            )
        )
        count = stale.delete(synchronize_session=False)
        self.db.commit()
        return count


NAME_RULE = (
    "1 to 32 characters: lowercase letters, digits and '-', starting with a letter and not "
    "ending with '-'"
)
NAME_PATTERN = r"^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)


def name_problem(username: str) -> str | None:
    """Why username cannot be an account name, or None."""
    if not _NAME_RE.fullmatch(username):
        return f"Usernames are {NAME_RULE}."
    if "--" in username:
        return "Usernames cannot contain '--'."
    return None
