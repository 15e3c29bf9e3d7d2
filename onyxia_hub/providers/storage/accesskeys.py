"""(b) Per-user access keys confined to the user's bucket, made with the store's admin API.

For stores without OpenID Connect, and the embedded default. With the admin credentials
of `credentials_file`, the hub makes for each user keys whose policy allows only their
bucket (`base.bucket_policy`), and makes new ones when the cached ones reach
`reuse_fraction` of `key_lifetime`:

- `IamKeys` (`admin_api = "iam"`, the IAM API, which moto speaks): an IAM user
  `hub-<name>` with an inline policy, and its access keys. IAM allows two keys per user:
  before making a new key, every key but the newest is deleted, so the new key and the one
  before it (still held by running servers until it expires) coexist. With
  `reuse_fraction` at most 0.5 a key is never deleted before `key_lifetime` has passed.
- `MinioKeys` (`admin_api = "minio"`, `minio.MinioAdmin`): service accounts of the admin
  identity, each with the bucket policy as its session policy (a service account can do
  at most what its policy allows) and an expiration of `key_lifetime` enforced by MinIO.

`revoke` deletes every key (and for IAM the user and its policy) of a user who is
deleted or disabled.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from contextlib import contextmanager
from datetime import UTC, datetime

from .base import Issuer, IssueRequest, StorageCredentials, StorageError, read_key_pair

POLICY_NAME = "onyxia-hub-bucket"


def iam_user(username: str) -> str:
    return f"hub-{username}"


def _code(error) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", "")) or "an error"


@contextmanager
def store_errors(refusal: str):
    """botocore's errors inside, as a StorageError for users ("the storage service refused
    to <refusal> (<code>)"), never the SDK's own text."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        yield
    except ClientError as e:
        raise StorageError(f"the storage service refused to {refusal} ({_code(e)})") from None
    except ResponseParserError:
        raise StorageError("the storage service sent an answer that cannot be read") from None
    except BotoCoreError as e:
        raise StorageError(f"the storage service cannot be reached ({type(e).__name__})") from None


def admin_client(settings, service: str, *, validate: bool = True):
    """A boto3 client of the store's `service` ("iam", "sts") with the admin keys of
    `credentials_file`, failing fast (no retry storm). `validate=False`: the store, not
    botocore's model, judges parameters (STS durations under AWS's 900 s for moto)."""
    import boto3
    from botocore.config import Config

    access, secret = read_key_pair(settings.credentials_file)
    return boto3.client(
        service,
        endpoint_url=settings.s3_internal,
        region_name=settings.region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        verify=settings.ca_bundle or None,
        config=Config(
            connect_timeout=settings.timeout,
            read_timeout=settings.timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            parameter_validation=validate,
        ),
    )


class IamKeys(Issuer):
    kind = "accesskeys"

    def _iam(self):
        return admin_client(self.settings, "iam")

    async def issue(self, request: IssueRequest) -> StorageCredentials:
        return await self.call("IAM access key", self._issue, request)

    def _issue(self, request: IssueRequest) -> StorageCredentials:
        from botocore.exceptions import ClientError

        iam, name = self._iam(), iam_user(request.username)
        with store_errors("make your access key"):
            try:
                iam.create_user(UserName=name, Tags=[{"Key": "onyxia-hub", "Value": "user"}])
            except ClientError as e:
                if _code(e) != "EntityAlreadyExists":
                    raise
            iam.put_user_policy(
                UserName=name,
                PolicyName=POLICY_NAME,
                PolicyDocument=json.dumps(self.policy(request.bucket)),
            )
            keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
            keys.sort(key=lambda k: k["CreateDate"])
            for old in keys[:-1]:  # room for the new key next to the newest one
                iam.delete_access_key(UserName=name, AccessKeyId=old["AccessKeyId"])
            key = iam.create_access_key(UserName=name)["AccessKey"]
        now = time.time()
        return StorageCredentials(
            access_key=key["AccessKeyId"],
            secret_key=key["SecretAccessKey"],
            issued_at=now,
            expires_at=now + self.settings.key_lifetime,
            kind=self.kind,
            key_id=key["AccessKeyId"],
        )

    async def retire(self, username, keep, drop) -> None:
        await self.call("IAM key clean-up", self._delete_keys, username, {c.key_id for c in keep})

    def _delete_keys(self, username: str, keep: set[str], remove_user: bool = False) -> int:
        from botocore.exceptions import ClientError

        iam, name = self._iam(), iam_user(username)
        try:
            keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        except ClientError as e:
            if _code(e) == "NoSuchEntity":
                return 0
            raise StorageError(f"the storage service refused to list keys ({_code(e)})") from None
        deleted = 0
        for key in keys:
            if key["AccessKeyId"] not in keep:
                iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
                deleted += 1
        if remove_user:
            try:
                iam.delete_user_policy(UserName=name, PolicyName=POLICY_NAME)
            except ClientError:
                pass
            iam.delete_user(UserName=name)
        return deleted

    async def revoke(self, username, known) -> None:
        await self.call("IAM revocation", self._delete_keys, username, set(), True)


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class MinioKeys(Issuer):
    kind = "accesskeys"

    def _admin(self):
        from urllib.parse import urlsplit

        import urllib3
        from minio.credentials import StaticProvider
        from minio.minioadmin import MinioAdmin

        access, secret = read_key_pair(self.settings.credentials_file)
        url = urlsplit(self.settings.s3_internal)
        timeout = self.settings.timeout
        return MinioAdmin(
            endpoint=url.netloc,
            credentials=StaticProvider(access, secret),
            region=self.settings.region,
            secure=url.scheme == "https",
            http_client=urllib3.PoolManager(
                ca_certs=self.settings.ca_bundle or None,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=urllib3.Retry(total=1, status_forcelist=[502, 503, 504]),
            ),
        )

    async def issue(self, request: IssueRequest) -> StorageCredentials:
        return await self.call("MinIO access key", self._issue, request)

    def _issue(self, request: IssueRequest) -> StorageCredentials:
        now = time.time()
        expires = now + self.settings.key_lifetime
        access = _random(string.ascii_uppercase + string.digits, 20)
        secret = _random(string.ascii_letters + string.digits, 40)
        expiration = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            self._admin().add_service_account(
                access_key=access,
                secret_key=secret,
                description=f"onyxia-hub:{request.username}",
                policy=self.policy(request.bucket),
                expiration=expiration,
            )
        except Exception as e:  # the SDK's errors: never shown whole
            raise StorageError(
                f"the storage service refused to make your access key ({type(e).__name__})"
            ) from None
        return StorageCredentials(
            access_key=access,
            secret_key=secret,
            issued_at=now,
            expires_at=expires,
            kind=self.kind,
            key_id=access,
        )

    def _delete(self, key_ids: list[str]) -> None:
        admin = self._admin()
        for key_id in key_ids:
            try:
                admin.delete_service_account(access_key=key_id)
            except Exception:  # noqa: S112 - already expired and gone
                continue

    async def retire(self, username, keep, drop) -> None:
        kept = {c.key_id for c in keep}
        await self.call(
            "MinIO key clean-up", self._delete, [c.key_id for c in drop if c.key_id not in kept]
        )

    async def revoke(self, username, known) -> None:
        await self.call("MinIO revocation", self._delete, [c.key_id for c in known if c.key_id])


def access_key_issuer(settings):
    return MinioKeys(settings) if settings.admin_api == "minio" else IamKeys(settings)
