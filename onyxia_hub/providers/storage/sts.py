"""(a) MinIO STS `AssumeRoleWithWebIdentity` with the user's OIDC access token.

The request is the MinIO SDK's (`minio.credentials.WebIdentityProvider`): a POST to the
STS endpoint with `Action=AssumeRoleWithWebIdentity`, `Version=2011-06-15`,
`WebIdentityToken=<access token>` and `DurationSeconds`, answered with the XML
`AssumeRoleWithWebIdentityResponse` whose `Credentials` hold `AccessKeyId`,
`SecretAccessKey`, `SessionToken` and `Expiration`. MinIO checks the token against the
identity provider, takes the policy from its claim (`policy`) and confines the session
to `user-${jwt:preferred_username}`; it caps the lifetime at the token's own `exp`.

The SDK puts the token in the URL's query and its errors repeat that URL: no message from
it is ever shown or logged here, only the HTTP status or the kind of failure.
"""

from __future__ import annotations

import re
import time
from datetime import UTC

from .base import Issuer, IssueRequest, StorageCredentials, StorageError

_STATUS = re.compile(r"failed with HTTP status code (\d+)")


class StsIssuer(Issuer):
    kind = "sts"

    async def issue(self, request: IssueRequest) -> StorageCredentials:
        token = await request.access_token() if request.access_token else None
        if not token:
            raise StorageError(
                "Your sign-in carries no identity token for the storage service: sign out "
                "and sign in again to get storage credentials."
            )
        return await self.call("STS AssumeRoleWithWebIdentity", self._assume, token)

    def _assume(self, token: str) -> StorageCredentials:
        import urllib3
        from minio.credentials import WebIdentityProvider

        settings = self.settings
        http = urllib3.PoolManager(
            ca_certs=settings.ca_bundle or None,
            timeout=urllib3.Timeout(connect=settings.timeout, read=settings.timeout),
            retries=urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
        )
        provider = WebIdentityProvider(
            jwt_provider_func=lambda: {
                "access_token": token,
                "expires_in": str(settings.sts_duration),
            },
            sts_endpoint=settings.sts_url,
            duration_seconds=settings.sts_duration,
            http_client=http,
        )
        try:
            creds = provider.retrieve()
        except ValueError as e:  # the SDK's HTTP error, or malformed XML
            status = _STATUS.search(str(e))
            if status:
                code = int(status.group(1))
                if code in (400, 401, 403):
                    raise StorageError(
                        f"The storage service refused your sign-in token (HTTP {code}): it may "
                        "have expired. Sign out and sign in again."
                    ) from None
                raise StorageError(
                    f"The storage service's STS answered HTTP {code}; try again later."
                ) from None
            raise StorageError(
                "The storage service's STS sent an answer that cannot be read."
            ) from None
        except urllib3.exceptions.HTTPError as e:
            raise StorageError(
                f"The storage service's STS cannot be reached ({type(e).__name__})."
            ) from None
        except Exception as e:  # XML without the expected elements, and the like
            raise StorageError(
                "The storage service's STS sent an answer that cannot be read "
                f"({type(e).__name__})."
            ) from None
        if not creds.access_key or not creds.secret_key or creds.expiration is None:
            raise StorageError("The storage service's STS sent incomplete credentials.")
        expires = creds.expiration.replace(tzinfo=UTC).timestamp()
        return StorageCredentials(
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            session_token=creds.session_token,
            issued_at=time.time(),
            expires_at=expires,
            kind=self.kind,
        )
