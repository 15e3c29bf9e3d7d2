"""Per-user S3 storage: credentials issued, injected, scoped, cached and refreshed.

Modules, from the bottom up (docs/storage.md tells the whole flow):

- `base`: `StorageSettings` (what both the hub and the portal need to know), the
  `StorageCredentials` record, `StorageError`, and the `Issuer` interface;
- `buckets`: bucket names (`user-<name>`, refused rather than renamed) and bucket creation;
- `sts` (a), `accesskeys` (b), `static` (c): the three ways of getting credentials;
- `cache`: the encrypted per-user cache, shared by the hub and the portal through the
  portal's database, with a lease so that one credential set is issued at a time;
- `service`: `CredentialService`, cache + issuer + bucket, used by both processes;
- `provider`: `StorageProvider`, the `PlanProvider` that injects them into launches;
- `tokens`: the OIDC access token from auth_state, and the refresh hook that keeps it
  long enough for MinIO's STS.
"""

from .base import StorageCredentials, StorageError, StorageSettings
from .provider import StorageProvider

__all__ = ["StorageCredentials", "StorageError", "StorageProvider", "StorageSettings"]
