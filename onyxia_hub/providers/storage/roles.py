"""(d) Session credentials: a role per user, assumed with the admin keys (STS `AssumeRole`).

For stores that speak IAM and STS but have no OpenID Connect: the embedded moto store
(its default), AWS itself, Ceph's RGW. With the admin keys of `credentials_file`, the hub
keeps for each user a role `hub-<name>` whose inline policy allows only their bucket
(`base.bucket_policy`), and assumes it for `sts_duration` seconds: the user gets an access
key, a secret key, a session token and an expiry, as on SSP Cloud.

moto applies only the role's policies to an assumed role's keys (never the admin's), and
does not check expiry itself: the embedded store's front (`embedded/motostore.py`) refuses
expired sessions, as S3 does.

Sessions cannot be deleted one by one (nor on AWS): an older set stays valid until it
expires, which is what running servers holding it need. `revoke` deletes the role: every
session of it loses its permissions at once.
"""

from __future__ import annotations

import json
import time

from .accesskeys import POLICY_NAME, _code, admin_client, iam_user, store_errors
from .base import Issuer, IssueRequest, StorageCredentials, StorageError


def trust_policy(principal_arn: str) -> dict:
    """Only the admin identity may assume the users' roles."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal_arn},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def session_name(username: str) -> str:
    """STS's RoleSessionName: 2-64 of `[\\w+=,.@-]`; bucket-valid names always are."""
    return f"onyxia-hub-{username}"[:64]


class RoleSessions(Issuer):
    kind = "roles"

    async def issue(self, request: IssueRequest) -> StorageCredentials:
        return await self.call("STS AssumeRole", self._issue, request)

    def _issue(self, request: IssueRequest) -> StorageCredentials:
        from botocore.exceptions import ClientError

        iam = admin_client(self.settings, "iam")
        sts = admin_client(self.settings, "sts", validate=False)  # the store says what it takes
        name = iam_user(request.username)
        with store_errors("open your session"):
            try:
                role = iam.get_role(RoleName=name)["Role"]
            except ClientError as e:
                if _code(e) != "NoSuchEntity":
                    raise
                admin = sts.get_caller_identity()["Arn"]
                role = iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(trust_policy(admin)),
                    Tags=[{"Key": "onyxia-hub", "Value": "user"}],
                )["Role"]
            iam.put_role_policy(
                RoleName=name,
                PolicyName=POLICY_NAME,
                PolicyDocument=json.dumps(self.policy(request.bucket)),
            )
            answer = sts.assume_role(
                RoleArn=role["Arn"],
                RoleSessionName=session_name(request.username),
                DurationSeconds=self.settings.sts_duration,
            )["Credentials"]
        return StorageCredentials(
            access_key=answer["AccessKeyId"],
            secret_key=answer["SecretAccessKey"],
            session_token=answer["SessionToken"],
            issued_at=time.time(),
            expires_at=answer["Expiration"].timestamp(),
            kind=self.kind,
            key_id=answer["AccessKeyId"],
        )

    def _delete_role(self, username: str) -> None:
        from botocore.exceptions import ClientError

        iam, name = admin_client(self.settings, "iam"), iam_user(username)
        try:
            iam.delete_role_policy(RoleName=name, PolicyName=POLICY_NAME)
        except ClientError as e:
            if _code(e) != "NoSuchEntity":
                raise StorageError(
                    f"the storage service refused to remove a role's policy ({_code(e)})"
                ) from None
        try:
            iam.delete_role(RoleName=name)
        except ClientError as e:
            if _code(e) != "NoSuchEntity":
                raise StorageError(
                    f"the storage service refused to delete a role ({_code(e)})"
                ) from None

    async def revoke(self, username, known) -> None:
        await self.call("role revocation", self._delete_role, username)
