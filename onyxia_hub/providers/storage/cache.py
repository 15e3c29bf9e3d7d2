"""The per-user credentials cache: encrypted, shared by the hub and the portal, leased.

One row per user and scope (`user` today; group buckets would add `group:<name>`) in the
table `portal_storage_credentials` of the portal's store (`db.models.CredentialRow`,
created by its migration 0003), so that the hub (at launch) and the portal (when a server
refreshes) see the same credentials, and a hub restart finds them again instead of
issuing new ones.

The credentials are Fernet ciphertext bound to the user's name (`db.crypto`): the
new set and the one before it, which running servers may still hold. Around them, in
clear: the issuer kind, the store's identity, when to renew, how many sets were issued,
and the lease.

The lease makes issuing single-flight across processes: whoever wants new credentials
first takes the lease with one conditional UPDATE (or INSERT); the others wait for the
row to change, so that a burst of launches and refreshes issues one set, not one each.
A lease expires by itself (`lease_seconds`) when its holder dies.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ...db import engine as engines
from ...db.crypto import CryptoError, FieldCrypto
from ...db.models import CredentialRow
from .base import StorageCredentials, StorageError

TABLE = CredentialRow.__tablename__


@dataclass(frozen=True)
class Entry:
    """A cached row, decrypted. `current` is None when the row holds none (or cannot be
    read with the keys given: then it is issued again, never shown as an error)."""

    username: str
    scope: str
    issuer: str
    store_id: str
    current: StorageCredentials | None
    previous: StorageCredentials | None
    renew_at: float | None
    issue_count: int
    lease_owner: str | None
    lease_until: float | None

    def fresh(self, issuer: str, store_id: str, now: float | None = None) -> bool:
        """Usable as is: same issuer and store, not yet due for renewal."""
        now = time.time() if now is None else now
        if self.current is None or self.issuer != issuer or self.store_id != store_id:
            return False
        return self.renew_at is None or now < self.renew_at

    def usable(self, issuer: str, store_id: str, margin: float = 60.0) -> bool:
        """Past renewal but not expired: good enough when a new set cannot be had."""
        if self.current is None or self.issuer != issuer or self.store_id != store_id:
            return False
        return not self.current.expired(margin=margin)


class CredentialCache:
    def __init__(self, engine: Engine, crypto: FieldCrypto):
        self.engine = engine
        self.crypto = crypto

    def _session(self, *, write: bool = False) -> Session:
        return engines.session(self.engine, write=write)

    def _entry(self, row: CredentialRow) -> Entry:
        current = previous = None
        if row.payload:
            try:
                data = json.loads(self.crypto.decrypt(row.username, row.payload))
                current = StorageCredentials.from_json(data["current"])
                if data.get("previous"):
                    previous = StorageCredentials.from_json(data["previous"])
            except (CryptoError, ValueError, KeyError, TypeError):
                current = previous = None
        return Entry(
            row.username,
            row.scope,
            row.issuer,
            row.store_id,
            current,
            previous,
            row.renew_at,
            row.issue_count or 0,
            row.lease_owner,
            row.lease_until,
        )

    def _guard(self, action):
        try:
            return action()
        except OperationalError as e:
            raise StorageError(
                "the storage credentials cache cannot be used "
                f"({str(e.orig).splitlines()[0] if e.orig else type(e).__name__})"
            ) from None

    def load(self, username: str, scope: str = "user") -> Entry | None:
        def action():
            with self._session() as db:
                row = db.get(CredentialRow, (username, scope))
                return None if row is None else self._entry(row)

        return self._guard(action)

    def try_lease(self, username: str, scope: str, owner: str, seconds: float) -> bool:
        """Take the right to issue for this row; False if someone else holds it."""
        now = time.time()

        def action():
            with self._session(write=True) as db, db.begin():
                result = db.execute(
                    update(CredentialRow)
                    .where(
                        CredentialRow.username == username,
                        CredentialRow.scope == scope,
                        or_(
                            CredentialRow.lease_until.is_(None),
                            CredentialRow.lease_until < now,
                            CredentialRow.lease_owner == owner,
                        ),
                    )
                    .values(lease_owner=owner, lease_until=now + seconds, updated_at=now)
                )
                if result.rowcount == 1:
                    return True
                if db.get(CredentialRow, (username, scope)) is not None:
                    return False
            try:
                with self._session(write=True) as db, db.begin():
                    db.add(
                        CredentialRow(
                            username=username,
                            scope=scope,
                            lease_owner=owner,
                            lease_until=now + seconds,
                            issue_count=0,
                            updated_at=now,
                        )
                    )
                return True
            except IntegrityError:  # another process inserted it first
                return False

        return self._guard(action)

    def release(self, username: str, scope: str, owner: str) -> None:
        def action():
            with self._session(write=True) as db, db.begin():
                db.execute(
                    update(CredentialRow)
                    .where(
                        CredentialRow.username == username,
                        CredentialRow.scope == scope,
                        CredentialRow.lease_owner == owner,
                    )
                    .values(lease_owner=None, lease_until=None)
                )

        self._guard(action)

    def store(
        self,
        username: str,
        scope: str,
        current: StorageCredentials,
        previous: StorageCredentials | None,
        *,
        issuer: str,
        store_id: str,
        renew_at: float | None,
    ) -> int:
        """Save a newly issued set (and the one before it); the user's issue count."""
        payload = json.dumps(
            {"current": current.to_json(), "previous": previous.to_json() if previous else None}
        )

        def action():
            with self._session(write=True) as db, db.begin():
                row = db.get(CredentialRow, (username, scope), with_for_update=True)
                if row is None:
                    row = CredentialRow(username=username, scope=scope, issue_count=0)
                    db.add(row)
                row.issuer, row.store_id = issuer, store_id
                row.payload = self.crypto.encrypt(username, payload)
                row.issued_at, row.expires_at = current.issued_at, current.expires_at
                row.renew_at = renew_at
                row.issue_count = (row.issue_count or 0) + 1
                row.lease_owner = row.lease_until = None
                row.updated_at = time.time()
                return row.issue_count

        return self._guard(lambda: engines.again_on_conflict(action))

    def forget(self, username: str) -> list[Entry]:
        """Delete every row of username; what they held (to revoke it)."""

        def action():
            with self._session(write=True) as db, db.begin():
                rows = list(
                    db.scalars(select(CredentialRow).where(CredentialRow.username == username))
                )
                entries = [self._entry(r) for r in rows]
                db.execute(delete(CredentialRow).where(CredentialRow.username == username))
                return entries

        return self._guard(action)

    def usernames(self) -> list[str]:
        def action():
            with self._session() as db:
                return sorted(set(db.scalars(select(CredentialRow.username))))

        return self._guard(action)
