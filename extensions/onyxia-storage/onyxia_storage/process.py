"""The `credential_process` helper: current S3 credentials, from the hub, in AWS's format.

    [default]
    credential_process = /path/to/python -m onyxia_storage.process

Prints `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}`
on standard output (errors on standard error, exit status 1). It asks
`$ONYXIA_STORAGE_CREDENTIALS_URL` (the portal) with the server's own token
(`$JUPYTERHUB_API_TOKEN`), and keeps the answer in `cache.json` of the private,
memory-backed state directory until the portal's `RefreshAfter`, so that an SDK
refreshing often costs no request. When the portal cannot be reached, a cached set
that has not expired is printed (with a warning on standard error).

Standard library only: it starts in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

from .kernelenv import STATE_ENV, URL_ENV, make_private_dir, state_dir

TIMEOUT = 15


def epoch(text: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (`2026-12-03T16:00:00Z`, as the portal
    and AWS write them; no zone: UTC), or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _output(data: dict) -> str:
    out = {
        "Version": 1,
        "AccessKeyId": data["AccessKeyId"],
        "SecretAccessKey": data["SecretAccessKey"],
    }
    if data.get("SessionToken"):
        out["SessionToken"] = data["SessionToken"]
    if data.get("Expiration"):
        out["Expiration"] = data["Expiration"]
    return json.dumps(out)


def _read_cache(path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and data.get("AccessKeyId") else None
    except (OSError, ValueError):
        return None


def _write_cache(path, data: dict) -> None:
    tmp = path.with_name(".cache.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def fetch(url: str, token: str) -> dict:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{URL_ENV} must be an http(s) URL")
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        data = json.loads(response.read())
    if not isinstance(data, dict) or not data.get("AccessKeyId") or not data.get("SecretAccessKey"):
        raise ValueError("the hub's answer holds no credentials")
    return data


def credentials(env=os.environ, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    url, token = env.get(URL_ENV), env.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        raise RuntimeError(f"{URL_ENV} and JUPYTERHUB_API_TOKEN are needed (run inside a server)")
    cache_path = None
    try:
        cache_path = make_private_dir(state_dir(env)) / "cache.json"
    except (OSError, RuntimeError):
        pass
    cached = _read_cache(cache_path) if cache_path else None
    if cached:
        due = epoch(cached.get("RefreshAfter")) or epoch(cached.get("Expiration"))
        if due is None or now < due:
            return cached
    try:
        data = fetch(url, token)
    except (urllib.error.URLError, OSError, ValueError) as e:
        expires = epoch(cached.get("Expiration")) if cached else None
        if cached and (expires is None or now < expires):
            print(f"onyxia-storage: using cached credentials: {_reason(e)}", file=sys.stderr)
            return cached
        raise RuntimeError(f"no S3 credentials from the hub: {_reason(e)}") from None
    if cache_path:
        _write_cache(cache_path, data)
    return data


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        try:
            return f"HTTP {error.code}: {json.loads(error.read()).get('error', '')}"
        except (ValueError, OSError, AttributeError):
            return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return f"the hub cannot be reached ({error.reason})"
    return str(error) or type(error).__name__


def main() -> int:
    try:
        print(_output(credentials()))
    except RuntimeError as e:
        print(f"onyxia-storage: {e}", file=sys.stderr)
        return 1
    return 0


__all__ = ["STATE_ENV", "credentials", "main"]

if __name__ == "__main__":
    sys.exit(main())
