"""The user's OIDC access token, for MinIO's STS, and keeping it long enough to be useful.

MinIO caps STS credentials at the access token's own expiry and refuses durations under
900 s, while Keycloak's access tokens last 5 minutes by default. Two things make (a)
work (docs/storage.md, "Keycloak"):

- the realm (or the client) gives access tokens a lifespan well above 900 s;
- `refresh_user_hook` below, set as `OnyxiaOIDCAuthenticator.refresh_user_hook`, renews
  the access token with the refresh token whenever JupyterHub refreshes a user's auth
  (before each spawn, and on requests once `auth_refresh_age` has passed) and the token
  has less than `min_seconds` left. oauthenticator alone renews it only once the
  userinfo endpoint refuses it, i.e. after it has expired.

Token contents are read without verifying the signature: only to learn `exp`; MinIO
verifies the token itself.
"""

from __future__ import annotations

import base64
import json
import time

MIN_SECONDS = 20 * 60


def access_token(auth_state: dict | None) -> str | None:
    if not isinstance(auth_state, dict):
        return None
    token = auth_state.get("access_token")
    return token if isinstance(token, str) and token else None


def seconds_left(token: str, now: float | None = None) -> float | None:
    """Seconds until the JWT's `exp`, or None when it is not a JWT with one."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    return exp - (time.time() if now is None else now)


def make_refresh_user_hook(min_seconds: float = MIN_SECONDS):
    """A `refresh_user_hook` renewing access tokens that expire within min_seconds.

        c.OnyxiaOIDCAuthenticator.refresh_user_hook = make_refresh_user_hook(1200)

    Returns None (oauthenticator's own refresh goes on) when the token is fine or there is
    no refresh token; the new auth model when renewed; False (sign in again) when the
    provider refuses the refresh token.
    """

    async def refresh_user_hook(authenticator, user, auth_state):
        token = access_token(auth_state)
        refresh = (auth_state or {}).get("refresh_token")
        left = seconds_left(token) if token else 0.0
        if not refresh or left is None or left >= min_seconds:
            return None
        params = authenticator.build_refresh_token_request_params(refresh)
        try:
            token_info = await authenticator.get_token_info(None, params)
        except Exception as e:
            authenticator.log.info(
                "Refreshing the access token of %s failed (%s): they must sign in again",
                user.name,
                type(e).__name__,
            )
            return False
        if not token_info.get("refresh_token"):
            token_info["refresh_token"] = refresh
        authenticator.log.info("Renewed the access token of %s ahead of its expiry", user.name)
        return await authenticator._token_to_auth_model(token_info)

    return refresh_user_hook


refresh_user_hook = make_refresh_user_hook()
