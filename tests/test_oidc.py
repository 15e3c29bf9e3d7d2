"""Production sign-in through OpenID Connect, against a real local provider.

The provider is `oidc-provider-mock` (an OAuth 2.0 / OpenID Connect server built on
authlib) run in a thread, with client registration required, so the provider checks our
client id, client secret and redirect URI. One extra hub (`onyxia-hub up --config FILE`)
signs users in with `OnyxiaOIDCAuthenticator`, configured only with the issuer, the
client's id and secret, the callback URL and `allowed_groups` / `admin_groups`: every
endpoint comes from discovery, and `manage_groups` from our default. Users sign in as a
browser does: /hub/oauth_login -> the provider's authorize form -> /hub/oauth_callback.

Covered:
- the authorization-code flow end to end; username from `preferred_username`
  (lower-cased); PKCE parameters sent;
- auth_state: stored encrypted, readable by an admin's API token, holding the access
  token (accepted by the provider's userinfo endpoint), the refresh token, the id token
  (signed by the provider for our client) and the userinfo claims;
- the `groups` claim becomes JupyterHub groups and follows the provider at each login;
  `admin_groups` grants and revokes admin; a user outside `allowed_groups`, or sent no
  `groups` claim, gets a 403 page and no account;
- logging out sends the user to the provider's end-session endpoint;
- a hub whose issuer is unreachable or wrong does not start: exit status 2, one error
  line naming the issuer, no traceback;
- `discover()` and the authenticator's start-up checks, in-process (no hub).

Not covered: Keycloak itself (realm issuer paths, its group mapper and full group paths,
its logout confirmation, client_secret_basic, TLS); token refresh with the refresh token
(`refresh_user`, `refresh_pre_spawn`: the mock revokes access and refresh tokens
together); spawning with auth_state (no user server is started here).
"""

from __future__ import annotations

import html
import json
import sqlite3
import threading
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from traitlets.config import Config

from onyxia_hub.auth.oidc import (
    DISCOVERY_PATH,
    OIDCDiscoveryError,
    OnyxiaOIDCAuthenticator,
    discover,
)
from onyxia_hub.embedded.ports import pick_free_port
from onyxia_hub.embedded.state import StateDir
from onyxia_hub.errors import OnyxiaHubError
from tests.helpers.client import HubClient
from tests.helpers.hub import HubProcess, HubStartError

with warnings.catch_warnings():  # the mock imports authlib modules deprecated upstream
    import authlib.deprecate  # noqa: F401 - sets its own "always" filter: put ours first

    warnings.simplefilter("ignore", DeprecationWarning)
    from oidc_provider_mock import run_server_in_thread

# ...and calls authlib APIs deprecated upstream, in the provider's thread
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

ALLOWED = "datalab-users"
ADMINS = "datalab-admins"
REFUSED = "your account is not allowed to use this datalab"  # our custom_403_message


# -- the provider -----------------------------------------------------------------------
@dataclass
class Provider:
    issuer: str
    config: dict  # its discovery document

    def set_claims(self, sub: str, **claims) -> None:
        """(Re)define the user `sub` and every claim the provider will release for them."""
        r = requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10)
        assert r.status_code == 204, r.text

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        r = requests.post(
            self.config["registration_endpoint"],
            timeout=10,
            json={
                "redirect_uris": [redirect_uri],
                # oauthenticator's default (basic_auth = False): id and secret in the POST body
                "token_endpoint_auth_method": "client_secret_post",
            },
        )
        assert r.status_code == 201, r.text
        return r.json()["client_id"], r.json()["client_secret"]


@pytest.fixture(scope="module")
def provider():
    with run_server_in_thread(require_client_registration=True) as server:
        # The server listens on 127.0.0.1 under the name localhost, and its issuer is the
        # scheme and host the request used: use the name its own documentation uses.
        issuer = f"http://localhost:{server.server_port}"
        config = requests.get(issuer + DISCOVERY_PATH, timeout=10).json()
        assert config["issuer"] == issuer
        yield Provider(issuer, config)


# -- the hub ----------------------------------------------------------------------------
@dataclass
class OIDCHub:
    url: str
    client_id: str
    state: StateDir
    process: HubProcess


def oidc_config(
    issuer: str, client_id: str, client_secret: str, hub_url: str, extra: str = ""
) -> str:
    return f"""\
c = get_config()  # noqa: F821
c.JupyterHub.authenticator_class = "onyxia-oidc"
c.OnyxiaOIDCAuthenticator.oidc_issuer = {issuer!r}
c.OnyxiaOIDCAuthenticator.client_id = {client_id!r}
c.OnyxiaOIDCAuthenticator.client_secret = {client_secret!r}
c.OnyxiaOIDCAuthenticator.oauth_callback_url = {hub_url + "/hub/oauth_callback"!r}
{extra}"""


@pytest.fixture(scope="module")
def oidc_hub(new_hub, provider) -> OIDCHub:
    hub = new_hub("oidc", start=False)  # its port is known now; the config comes next
    client_id, client_secret = provider.register_client(f"{hub.url}/hub/oauth_callback")
    config = hub.state_dir.parent / "oidc_config.py"
    config.write_text(
        oidc_config(
            provider.issuer,
            client_id,
            client_secret,
            hub.url,
            # manage_groups is left to OnyxiaOIDCAuthenticator's default (True): without it
            # these two lines would stop the hub with a ValueError.
            f"c.OnyxiaOIDCAuthenticator.allowed_groups = {{{ALLOWED!r}}}\n"
            f"c.OnyxiaOIDCAuthenticator.admin_groups = {{{ADMINS!r}}}\n",
        )
    )
    hub.config_files = [config]
    hub.start()
    return OIDCHub(hub.url, client_id, StateDir(hub.state_dir), hub)


def sign_in(hub: OIDCHub, provider: Provider, sub: str) -> tuple[HubClient, requests.Response]:
    """A browser's authorization-code flow as `sub`: the hub's answer to the callback."""
    client = HubClient(hub.url)
    r = client.get("/hub/oauth_login", allow_redirects=False)
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    assert authorize.startswith(provider.config["authorization_endpoint"] + "?"), authorize
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_id"] == [hub.client_id]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert set(query["scope"][0].split()) == {"openid", "profile", "email"}
    r = client.session.get(authorize, timeout=30)  # the provider's sign-in form
    assert r.status_code == 200 and 'name="sub"' in r.text, r.text
    r = client.session.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    callback = r.headers["location"]
    assert callback.startswith(f"{hub.url}/hub/oauth_callback?"), callback
    return client, client.session.get(callback, allow_redirects=False, timeout=30)


def signed_in_user(client: HubClient) -> dict | None:
    r = client.api("GET", "/user")
    return r.json() if r.status_code == 200 else None


@pytest.fixture(scope="module")
def admin_token(oidc_hub, provider) -> str:
    """An API token of `alice`, admin through the provider's `datalab-admins` group."""
    provider.set_claims(
        "kc-alice", preferred_username="alice", email="alice@example.org", groups=[ALLOWED, ADMINS]
    )
    client, r = sign_in(oidc_hub, provider, "kc-alice")
    assert r.status_code == 302, r.text
    return client.new_token("alice", note="oidc tests")


def hub_api(hub: OIDCHub, token: str, path: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/hub/api{path}", timeout=30, headers={"Authorization": f"token {token}"}
    )


# -- signing in -------------------------------------------------------------------------
def test_login_page_offers_the_provider(oidc_hub):
    r = requests.get(oidc_hub.url + "/hub/login", timeout=30)
    assert r.status_code == 200
    assert "Sign in with your organisation's account" in html.unescape(r.text)
    assert "/hub/oauth_login" in r.text


def test_sign_in_through_the_provider(oidc_hub, provider):
    provider.set_claims(
        "kc-bob",
        preferred_username="Bob",
        email="bob@example.org",
        name="Bob Marley",
        groups=[ALLOWED, "project-x"],
    )
    client, r = sign_in(oidc_hub, provider, "kc-bob")
    assert r.status_code == 302, r.text
    assert r.headers["location"].startswith("/hub/")
    user = signed_in_user(client)
    # the username is preferred_username, normalised to lower case; not the `sub`
    assert user is not None and user["name"] == "bob"
    assert user["admin"] is False  # admin_groups is set and bob is not in it
    r = client.get("/hub/home")
    assert r.status_code == 200 and "bob" in r.text
    # passwords belong to the identity provider: no password page, no People
    assert 'href="/hub/change-password"' not in r.text


def test_auth_state_holds_the_provider_tokens(oidc_hub, provider, admin_token):
    r = hub_api(oidc_hub, admin_token, "/users/alice")
    assert r.status_code == 200, r.text
    model = r.json()
    assert model["admin"] is True  # from the provider's datalab-admins group
    state = model["auth_state"]
    assert isinstance(state, dict), model
    for key in ("access_token", "refresh_token", "id_token"):
        assert isinstance(state[key], str) and state[key], key
    assert state["oauth_user"] == {
        "sub": "kc-alice",
        "preferred_username": "alice",
        "email": "alice@example.org",
        "groups": [ALLOWED, ADMINS],
    }
    assert "openid" in state["scope"]

    # the access token is live: the provider's userinfo endpoint accepts it
    r = requests.get(
        provider.config["userinfo_endpoint"],
        timeout=10,
        headers={"Authorization": f"Bearer {state['access_token']}"},
    )
    assert r.status_code == 200 and r.json()["sub"] == "kc-alice"
    # the id token was signed by the provider, for our client (the mock's tokens name no
    # `kid`: its key set has a single key)
    (key,) = jwt.PyJWKSet.from_json(requests.get(provider.config["jwks_uri"], timeout=10).text).keys
    claims = jwt.decode(
        state["id_token"],
        key.key,
        algorithms=["RS256"],
        audience=oidc_hub.client_id,
        issuer=provider.issuer,
    )
    assert claims["sub"] == "kc-alice"

    # stored encrypted: no token in clear in the hub's database
    with sqlite3.connect(f"file:{oidc_hub.state.hub_db}?mode=ro", uri=True) as db:
        (stored,) = db.execute(
            "SELECT encrypted_auth_state FROM users WHERE name = 'alice'"
        ).fetchone()
    assert stored
    for key in ("access_token", "refresh_token", "id_token"):
        assert state[key].encode() not in stored


def test_groups_follow_the_provider_at_each_login(oidc_hub, provider, admin_token):
    provider.set_claims("kc-dave", preferred_username="dave", groups=[ALLOWED, ADMINS, "project-y"])
    client, r = sign_in(oidc_hub, provider, "kc-dave")
    assert r.status_code == 302, r.text
    dave = hub_api(oidc_hub, admin_token, "/users/dave").json()
    assert sorted(dave["groups"]) == sorted([ALLOWED, ADMINS, "project-y"])
    assert dave["admin"] is True
    r = hub_api(oidc_hub, admin_token, "/groups/project-y")
    assert r.status_code == 200 and "dave" in r.json()["users"]

    # an admin adds dave to a group by hand, and the provider drops him from two groups:
    # his next login leaves him in the provider's groups only
    r = requests.post(
        f"{oidc_hub.url}/hub/api/groups/hand-made",
        json={"users": ["dave"]},
        headers={"Authorization": f"token {admin_token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    assert "hand-made" in hub_api(oidc_hub, admin_token, "/users/dave").json()["groups"]
    provider.set_claims("kc-dave", preferred_username="dave", groups=[ALLOWED])
    client, r = sign_in(oidc_hub, provider, "kc-dave")
    assert r.status_code == 302, r.text
    dave = hub_api(oidc_hub, admin_token, "/users/dave").json()
    assert dave["groups"] == [ALLOWED]
    assert dave["admin"] is False  # admin_groups revokes as well as grants
    for group in ("project-y", "hand-made"):
        assert "dave" not in hub_api(oidc_hub, admin_token, f"/groups/{group}").json()["users"]


@pytest.mark.parametrize(
    "sub, groups",
    [("kc-mallory", ["other-team"]), ("kc-carol", None)],
    ids=["other-group", "no-groups-claim"],
)
def test_user_outside_allowed_groups_is_refused(oidc_hub, provider, admin_token, sub, groups):
    name = sub.removeprefix("kc-")
    claims = {"preferred_username": name, "email": f"{name}@example.org"}
    if groups is not None:
        claims["groups"] = groups
    provider.set_claims(sub, **claims)
    client, r = sign_in(oidc_hub, provider, sub)
    assert r.status_code == 403
    assert REFUSED in r.text
    assert signed_in_user(client) is None
    assert hub_api(oidc_hub, admin_token, f"/users/{name}").status_code == 404  # no account
    if groups is None:  # oauthenticator's treatment of a missing claim, as documented
        assert "oauth_user.groups does not exist" in oidc_hub.process.output()


def test_logout_goes_to_the_provider(oidc_hub, provider):
    provider.set_claims("kc-erin", preferred_username="erin", groups=[ALLOWED])
    client, r = sign_in(oidc_hub, provider, "kc-erin")
    assert r.status_code == 302 and signed_in_user(client)["name"] == "erin"
    r = client.get("/hub/logout", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == provider.config["end_session_endpoint"]
    assert signed_in_user(client) is None


# -- start-up checks --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["unreachable", "wrong-path"])
def test_hub_with_a_bad_issuer_does_not_start(new_hub, provider, kind):
    if kind == "unreachable":
        issuer = f"http://127.0.0.1:{pick_free_port()}/realms/datalab"  # nothing listens
    else:
        issuer = provider.issuer + "/realms/datalab"  # the provider answers 404 there
    hub = new_hub(f"oidc-{kind}", start=False)
    config = hub.state_dir.parent / "oidc_config.py"
    config.write_text(
        oidc_config(
            issuer, "onyxia-hub", "secret", hub.url, "c.OnyxiaOIDCAuthenticator.allow_all = True\n"
        )
    )
    hub.config_files = [config]
    with pytest.raises(HubStartError):
        hub.start()
    assert hub.proc.returncode == 2
    output = hub.output()
    errors = [line for line in output.splitlines() if line.startswith("onyxia-hub: error:")]
    assert len(errors) == 1, output
    assert issuer in errors[0]
    assert ("could not be reached" if kind == "unreachable" else "HTTP 404") in errors[0]
    assert "fix: check OnyxiaOIDCAuthenticator.oidc_issuer" in output
    assert "Traceback" not in output


def serve_json(documents: dict[str, bytes]):
    """A throw-away HTTP server answering each path with the given bytes."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_discover_checks_the_document_is_the_issuers():
    documents: dict[str, bytes] = {}
    server = serve_json(documents)
    base = f"http://127.0.0.1:{server.server_port}"
    documents.update(
        {
            "/other" + DISCOVERY_PATH: json.dumps(
                {
                    "issuer": "https://auth.example.org/realms/datalab",
                    "authorization_endpoint": "https://auth.example.org/auth",
                    "token_endpoint": "https://auth.example.org/token",
                }
            ).encode(),
            "/html" + DISCOVERY_PATH: b"<html>Welcome</html>",
            "/partial" + DISCOVERY_PATH: json.dumps(
                {"issuer": base + "/partial", "authorization_endpoint": base + "/auth"}
            ).encode(),
        }
    )
    try:
        with pytest.raises(OIDCDiscoveryError, match="names the issuer") as e:
            discover(base + "/other")
        assert "https://auth.example.org/realms/datalab" in str(e.value)
        assert isinstance(e.value, OnyxiaHubError) and e.value.fix
        with pytest.raises(OIDCDiscoveryError, match="did not return JSON"):
            discover(base + "/html")
        with pytest.raises(OIDCDiscoveryError, match="has no token_endpoint"):
            discover(base + "/partial")
        with pytest.raises(OIDCDiscoveryError, match="answered HTTP 404"):
            discover(base + "/missing")
    finally:
        server.shutdown()
        server.server_close()


def authenticator(**settings) -> OnyxiaOIDCAuthenticator:
    config = Config()
    for name, value in settings.items():
        setattr(config.OnyxiaOIDCAuthenticator, name, value)
    return OnyxiaOIDCAuthenticator(config=config)


def test_endpoints_come_from_discovery_unless_set(provider):
    auth = authenticator(
        oidc_issuer=provider.issuer,
        client_id="hub",
        token_url="https://elsewhere.example.org/token",
    )
    assert auth.authorize_url == provider.config["authorization_endpoint"]
    assert auth.userdata_url == provider.config["userinfo_endpoint"]
    assert auth.logout_redirect_url == provider.config["end_session_endpoint"]
    assert auth.token_url == "https://elsewhere.example.org/token"  # explicit wins
    assert auth.manage_groups is True and auth.enable_auth_state is True
    assert auth.auth_state_groups_key == "oauth_user.groups"
    assert auth.username_claim == "preferred_username"


def test_userdata_from_id_token_is_compatible_with_discovery(provider):
    # oauthenticator refuses userdata_url together with userdata_from_id_token
    auth = authenticator(oidc_issuer=provider.issuer, client_id="hub", userdata_from_id_token=True)
    assert auth.userdata_url == ""
    assert auth.token_url == provider.config["token_endpoint"]


def test_missing_client_id_is_refused_at_start(provider, monkeypatch):
    monkeypatch.delenv("OAUTH_CLIENT_ID", raising=False)
    with pytest.raises(OnyxiaHubError, match="client_id is not set"):
        authenticator(oidc_issuer=provider.issuer)
