"""(c) Static credentials from a file: one key pair shared by every user.

For a store where nothing else is possible (no OIDC, no admin API). Every user gets the
same keys, so nothing confines a user to their bucket: any user can read and change every
other user's data. The start-up log and docs/storage.md say so; use it for one user, or
for a read-only shared dataset.
"""

from __future__ import annotations

import time

from .base import Issuer, IssueRequest, StorageCredentials, read_key_pair


class StaticIssuer(Issuer):
    kind = "static"

    async def issue(self, request: IssueRequest) -> StorageCredentials:
        access, secret = read_key_pair(self.settings.credentials_file)
        return StorageCredentials(
            access_key=access,
            secret_key=secret,
            issued_at=time.time(),
            expires_at=None,
            kind=self.kind,
            key_id=access,
        )
