"""`OnyxiaOIDCAuthenticator`: sign-in through an OpenID Connect provider (Keycloak).

oauthenticator's GenericOAuthenticator with the settings a datalab needs by default:

- `oidc_issuer`: the provider's issuer URL; the authorize, token, userinfo and logout
  endpoints are read once, at hub start, from its `/.well-known/openid-configuration`
  (any of them set explicitly wins). The hub does not start, with one error naming the
  issuer, when that document cannot be read, names another issuer, or lacks an endpoint;
  nor when `client_id` is not set.
- auth_state on: the access, refresh and id tokens and the userinfo claims are stored,
  encrypted with the hub's `CryptKeeper` keys, for storage credentials and git tokens.
  The user's auth is refreshed before each spawn (`refresh_pre_spawn`) and on requests
  once older than five minutes (`auth_refresh_age`): the userinfo is read again with the
  access token, and a rejected access token is renewed with the refresh token (if that
  fails too, the user must sign in again).
- `preferred_username` as the username (JupyterHub lower-cases it).
- `manage_groups` on: the `groups` claim of the userinfo response
  (`auth_state_groups_key`, default `oauth_user.groups`) *is* the user's list of JupyterHub
  groups. At each login and each auth refresh the user's membership is replaced by that
  list (groups are created as needed): membership given by hand in the admin page does
  not survive the next login. `allowed_groups` and `admin_groups` need `manage_groups`;
  set `manage_groups = False` to keep JupyterHub groups independent of the provider (then
  neither option may be set).
- No `groups` claim at all (e.g. a Keycloak client without a "Group Membership" mapper):
  oauthenticator logs an error ("The auth_state_groups_key oauth_user.groups does not
  exist ...") and treats the user as a member of no group: they are removed from every
  JupyterHub group, refused (an HTTP 403 page, `custom_403_message`, and no account is
  created) unless another setting lets them in (`allow_all`, `allowed_users`,
  `admin_users`, ...), and, when `admin_groups` is set, lose the admin flag unless listed
  in `admin_users`.

Keycloak: add a "Group Membership" mapper to the client (token claim name `groups`, added
to the userinfo). With "Full group path" on (Keycloak's default) the groups arrive as
`/datalab-users`, and `allowed_groups` / `admin_groups` must be written that way.

Logging out of the hub sends the user to the provider's `end_session_endpoint`, which
ends their single sign-on session there (Keycloak asks them to confirm).

Example for Keycloak::

    c.JupyterHub.authenticator_class = "onyxia-oidc"
    c.OnyxiaOIDCAuthenticator.oidc_issuer = "https://auth.example.org/realms/datalab"
    c.OnyxiaOIDCAuthenticator.client_id = "onyxia-hub"
    c.OnyxiaOIDCAuthenticator.client_secret = "..."   # or $OAUTH_CLIENT_SECRET
    c.OnyxiaOIDCAuthenticator.oauth_callback_url = "https://datalab.example.org/hub/oauth_callback"
    c.OnyxiaOIDCAuthenticator.allowed_groups = {"datalab-users"}   # or allow_all = True
    c.OnyxiaOIDCAuthenticator.admin_groups = {"datalab-admins"}
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from oauthenticator.generic import GenericOAuthenticator
from traitlets import Float, Unicode, default

from ..errors import OnyxiaHubError
from . import navigation

DISCOVERY_PATH = "/.well-known/openid-configuration"


class OIDCDiscoveryError(OnyxiaHubError):
    """The provider's discovery document could not be read, or does not fit the issuer."""


def discover(issuer: str, timeout: float = 10.0) -> dict:
    """The provider's OpenID configuration, checked to be for this issuer.

    Raises `OIDCDiscoveryError` (an `OnyxiaHubError`: one message naming the issuer, and
    its fix) when the document cannot be read or is not this issuer's.
    """
    url = issuer.rstrip("/") + DISCOVERY_PATH
    fix = (
        "check OnyxiaOIDCAuthenticator.oidc_issuer (for Keycloak: "
        "https://<host>/realms/<realm>) and that this machine can reach the provider"
    )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            document = json.load(response)
    except urllib.error.HTTPError as e:
        raise OIDCDiscoveryError(
            f"OpenID provider {issuer}: its discovery document {url} answered HTTP {e.code}", fix
        ) from None
    except (urllib.error.URLError, OSError) as e:  # TimeoutError is an OSError
        reason = getattr(e, "reason", e)
        reason = getattr(reason, "strerror", None) or reason or type(e).__name__
        raise OIDCDiscoveryError(
            f"OpenID provider {issuer} could not be reached ({url}: {reason})", fix
        ) from None
    except ValueError:  # JSON or UTF-8 decoding
        raise OIDCDiscoveryError(
            f"OpenID provider {issuer}: {url} did not return JSON", fix
        ) from None
    if not isinstance(document, dict):
        raise OIDCDiscoveryError(
            f"OpenID provider {issuer}: {url} did not return a JSON object", fix
        )
    named = document.get("issuer")
    if not isinstance(named, str) or named.rstrip("/") != issuer.rstrip("/"):
        raise OIDCDiscoveryError(
            f"OpenID provider {issuer}: {url} names the issuer {named!r}, not {issuer!r}",
            "set OnyxiaOIDCAuthenticator.oidc_issuer to exactly the issuer the provider "
            "names (scheme, host, port and path)",
        )
    for key in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(document.get(key), str) or not document[key]:
            raise OIDCDiscoveryError(f"OpenID provider {issuer}: {url} has no {key}", fix)
    return document


class OnyxiaOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator configured from an OIDC issuer; see the module docstring."""

    login_service = Unicode(
        "your organisation's account",
        help="Shown on the login button: 'Sign in with <login_service>'.",
    ).tag(config=True)

    oidc_issuer = Unicode(
        "",
        help="""
        Issuer URL of the OpenID Connect provider, e.g.
        `https://auth.example.org/realms/datalab` for a Keycloak realm. It must be
        exactly the `issuer` the provider announces.

        At hub start its discovery document (`<issuer>/.well-known/openid-configuration`)
        fills `authorize_url`, `token_url`, `userdata_url` (unless
        `userdata_from_id_token` is set) and `logout_redirect_url`, unless they are set
        explicitly. The hub does not start when the document cannot be read, names
        another issuer, or when `client_id` is not set. Empty: set those URLs yourself.
        """,
    ).tag(config=True)

    oidc_discovery_timeout = Float(
        10.0,
        help="Seconds to wait for the provider's discovery document at hub start.",
    ).tag(config=True)

    @default("enable_auth_state")
    def _enable_auth_state_default(self):
        # Tokens are needed later (storage credentials, refresh); they are stored encrypted.
        return True

    @default("refresh_pre_spawn")
    def _refresh_pre_spawn_default(self):
        return True

    @default("auth_refresh_age")
    def _auth_refresh_age_default(self):
        return 300

    @default("username_claim")
    def _username_claim_default(self):
        return "preferred_username"

    @default("manage_groups")
    def _manage_groups_default(self):
        # The provider's `groups` claim is the user's JupyterHub groups (module docstring).
        return True

    @default("custom_403_message")
    def _custom_403_message_default(self):
        return (
            "You are signed in at your identity provider, but your account is not "
            "allowed to use this datalab. Ask the datalab's administrators for access."
        )

    @default("scope")
    def _scope_default(self):
        return ["openid", "profile", "email"]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.oidc_issuer:
            if not self.client_id:
                raise OnyxiaHubError(
                    f"OnyxiaOIDCAuthenticator.client_id is not set (issuer {self.oidc_issuer})",
                    "set it to the client id registered at the provider, or set $OAUTH_CLIENT_ID",
                )
            self._apply_discovery(discover(self.oidc_issuer, self.oidc_discovery_timeout))

    def get_handlers(self, app):
        # ours first: JupyterHub matches an authenticator's routes before its own
        return navigation.routes() + super().get_handlers(app)

    def _apply_discovery(self, document: dict) -> None:
        endpoints = {
            "authorize_url": "authorization_endpoint",
            "token_url": "token_endpoint",
            "userdata_url": "userinfo_endpoint",
            "logout_redirect_url": "end_session_endpoint",
        }
        if self.userdata_from_id_token:
            # The claims come from the id token; oauthenticator refuses both at once.
            del endpoints["userdata_url"]
        for trait, key in endpoints.items():
            if not getattr(self, trait) and document.get(key):
                setattr(self, trait, document[key])
        if not self.userdata_url and not self.userdata_from_id_token:
            raise OIDCDiscoveryError(
                f"OpenID provider {self.oidc_issuer} announces no userinfo_endpoint",
                "set OnyxiaOIDCAuthenticator.userdata_url, or userdata_from_id_token = True",
            )
        self.log.info("OIDC endpoints read from %s", self.oidc_issuer)
