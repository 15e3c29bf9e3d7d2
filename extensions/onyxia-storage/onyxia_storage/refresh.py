"""Keeps a Python kernel's S3 variables current: an IPython extension.

Kernels start with Onyxia's variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`, `AWS_CREDENTIAL_EXPIRATION`...). botocore, and so boto3 and s3fs
(through aiobotocore), read them with their expiry and, once less than 15 minutes
remain, read `os.environ` again before each request: new values are picked up by
clients made long before, with no code of the user's involved.

This extension writes those new values. Before each cell (IPython's `pre_execute`
event, on the kernel's main thread: a `setenv` from a background thread could race a C
library's `getenv`), when `REFRESH_WITHIN` seconds or less remain, it asks for the
current set (`process.credentials`: the portal, through a private cache) and rewrites
the variables when the set changed. Nothing else happens before a cell: one comparison
of two numbers.

Loaded by the kernel provisioner (`--ext=onyxia_storage.refresh`), or by hand:
`%load_ext onyxia_storage.refresh`. What it cannot reach is in docs/storage.md: clients
given explicit keys, a cell that runs for hours, R, terminals.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, MutableMapping
from urllib.parse import quote, urlsplit

from . import process

REFRESH_WITHIN = 20 * 60  # seconds before expiry; botocore starts re-reading at 15 minutes
RETRY_AFTER = 30  # seconds between two asks that brought nothing new (less near expiry)
EXPIRATION = "AWS_CREDENTIAL_EXPIRATION"


def variables(data: dict, env: MutableMapping[str, str]) -> dict[str, str | None]:
    """The variables a credential set gives (None: to remove), Onyxia's names."""
    token = data.get("SessionToken") or None
    found = {
        "AWS_ACCESS_KEY_ID": data["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": data["SecretAccessKey"],
        "AWS_SESSION_TOKEN": token,
        EXPIRATION: data.get("Expiration") or None,
        "ONYXIA_STORAGE_EXPIRATION": data.get("Expiration") or None,
    }
    endpoint = env.get("AWS_ENDPOINT_URL") or data.get("Endpoint") or ""
    url = urlsplit(endpoint)
    if url.scheme and url.netloc:
        auth = ":".join(quote(part, safe="") for part in (data["AccessKeyId"],
                        data["SecretAccessKey"], token) if part)  # fmt: skip
        found["MC_HOST_s3"] = f"{url.scheme}://{auth}@{url.netloc}"
    return found


def apply(data: dict, env: MutableMapping[str, str]) -> None:
    """Rewrite env with data's set; the expiry last, so that a reader seeing the new
    expiry sees the new keys too."""
    for name, value in variables(data, env).items():
        if name == EXPIRATION:
            continue
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    if data.get("Expiration"):
        env[EXPIRATION] = data["Expiration"]
    else:
        env.pop(EXPIRATION, None)


class Refresher:
    """The `pre_execute` callback (see the module docstring)."""

    def __init__(
        self,
        env: MutableMapping[str, str] = os.environ,
        fetch: Callable[..., dict] = process.credentials,
        clock: Callable[[], float] = time.time,
    ):
        self.env, self.fetch, self.clock = env, fetch, clock
        self.next_try = 0.0
        self._seen: tuple[str | None, float | None] = (None, None)
        self.warned = False

    def expiry(self) -> float | None:
        text = self.env.get(EXPIRATION)
        if text != self._seen[0]:
            self._seen = (text, process.epoch(text))
        return self._seen[1]

    def __call__(self, *args) -> None:
        expiry = self.expiry()
        now = self.clock()
        if expiry is None or expiry - now > REFRESH_WITHIN or now < self.next_try:
            return
        # sets shorter than an hour (tests, a store's choice) must not expire between tries
        retry = now + min(RETRY_AFTER, max(1.0, (expiry - now) / 4))
        try:
            data = self.fetch(self.env, now)
        except (RuntimeError, OSError, ValueError) as e:
            self.next_try = retry
            if not self.warned:  # once, not before every cell
                print(f"onyxia-storage: S3 credentials not renewed: {e}", file=sys.stderr)
                self.warned = True
            return
        if data.get("AccessKeyId") == self.env.get("AWS_ACCESS_KEY_ID") and (
            data.get("Expiration") or None
        ) == self.env.get(EXPIRATION):
            self.next_try = retry  # nothing newer yet
            return
        apply(data, self.env)
        self.next_try, self.warned = 0.0, False


def load_ipython_extension(ipython) -> None:
    refresher = Refresher()
    ipython.events.register("pre_execute", refresher)
    ipython._onyxia_storage_refresher = refresher  # unload_ipython_extension finds it


def unload_ipython_extension(ipython) -> None:
    refresher = getattr(ipython, "_onyxia_storage_refresher", None)
    if refresher is not None:
        ipython.events.unregister("pre_execute", refresher)
        del ipython._onyxia_storage_refresher
