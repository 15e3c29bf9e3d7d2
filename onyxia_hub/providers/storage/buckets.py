"""Bucket names and bucket creation.

A user's bucket is `<prefix><username>` (`user-alice`), exactly: MinIO's policy matches
it with `arn:aws:s3:::user-${jwt:preferred_username}`, so the name the hub uses and the
name the policy allows must be the same string. A username that does not make a valid
bucket name (S3's rules: 3-63 characters of `a-z`, `0-9`, `.` and `-`, starting and ending
with a letter or digit, no `..`, not an IP address, no reserved prefix or suffix) is
refused with a message saying why, never renamed: a renamed bucket would not match the
policy, and two users could end up with the same one.

Group buckets (Onyxia's `projet-<group>`) will go through `bucket_name(prefix, group)`.
"""

from __future__ import annotations

import ipaddress
import re

from .base import StorageCredentials, StorageError, StorageSettings

_ALLOWED = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_problem(name: str) -> str | None:
    """Why name is not a valid S3 bucket name, or None."""
    if not 3 <= len(name) <= 63:
        return f"it would be {len(name)} characters long (3 to 63 allowed)"
    bad = sorted(
        {c for c in name if not (c.isascii() and (c.islower() or c.isdigit()))} - {".", "-"}
    )
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        return f"it would contain {shown} (only a-z, 0-9, '.' and '-' are allowed)"
    if not _ALLOWED.match(name):
        return "it must start and end with a letter or a digit"
    if ".." in name or ".-" in name or "-." in name:
        return "it must not contain '..', '.-' or '-.'"
    try:
        ipaddress.IPv4Address(name)
        return "it must not look like an IP address"
    except ValueError:
        pass
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "it uses a prefix or suffix S3 reserves"
    return None


def bucket_name(prefix: str, owner: str) -> str:
    """The bucket of owner (a user name), or StorageError saying why there is none."""
    name = f"{prefix}{owner}"
    problem = bucket_problem(name)
    if problem:
        raise StorageError(
            f"Your storage bucket would be named {name!r}, which S3 does not accept: {problem}. "
            "Ask your administrator for an account name made of lowercase letters, digits, "
            "'.' and '-' to get storage."
        )
    return name


def s3_client(settings: StorageSettings, credentials: StorageCredentials, internal=True):
    """A boto3 S3 client with these credentials, failing fast (no retry storm)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_internal if internal else settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.session_token,
        verify=settings.ca_bundle or None,
        config=Config(
            connect_timeout=settings.timeout,
            read_timeout=settings.timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path" if settings.path_style else "auto"},
        ),
    )


def ensure_bucket(settings: StorageSettings, credentials: StorageCredentials, name: str) -> bool:
    """Create the bucket with the user's own credentials when missing; True if created.

    Blocking (boto3): call it in a thread. Raises StorageError with a message for users.
    """
    client = s3_client(settings, credentials)
    missing = ("404", "NoSuchBucket", "NotFound")
    if _bucket_call("checked", name, lambda: client.head_bucket(Bucket=name), missing) is None:
        return False  # it exists
    kwargs = {"Bucket": name}
    if settings.region and settings.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    owned = ("BucketAlreadyOwnedByYou",)  # created meanwhile, by another launch
    return _bucket_call("created", name, lambda: client.create_bucket(**kwargs), owned) is None


def _bucket_call(action: str, name: str, call, tolerated: tuple[str, ...]) -> str | None:
    """Run call: None when it succeeds, the error code when it is one of tolerated;
    any other failure is a StorageError that says what could not be done to the bucket."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        call()
        return None
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in tolerated:
            return code
        raise StorageError(
            f"your bucket {name} cannot be {action}: the storage service answered "
            f"{code or 'an error'}"
        ) from None
    except ResponseParserError:
        raise StorageError("the storage service sent an answer that cannot be read") from None
    except BotoCoreError as e:
        raise StorageError(f"the storage service cannot be reached ({type(e).__name__})") from None
