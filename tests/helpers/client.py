"""A browser-like client of the hub: signs in through the login form, keeps cookies."""

from __future__ import annotations

import re
import time
from html import unescape

import requests


class HubClient:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    # -- pages -----------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.get(self.url(path), **kwargs)

    @property
    def xsrf(self) -> str:
        token = self.session.cookies.get("_xsrf", path="/hub/") or self.session.cookies.get("_xsrf")
        if token is None:
            self.get("/hub/login")
            token = self.session.cookies.get("_xsrf", path="/hub/")
        return token

    def post_form(self, path: str, data: dict, *, xsrf: bool = True, **kwargs):
        data = dict(data)
        if xsrf:
            data["_xsrf"] = self.xsrf
        kwargs.setdefault("timeout", 60)
        return self.session.post(self.url(path), data=data, **kwargs)

    def login(self, username: str, password: str) -> requests.Response:
        self.get("/hub/login")
        return self.post_form(
            "/hub/login", {"username": username, "password": password}, allow_redirects=False
        )

    def first_sign_in(self, username: str, given: str, chosen: str) -> requests.Response:
        """Sign in with the password an administrator set, which opens no session but the
        form to choose one's own (with a one-use ticket), and choose `chosen`: the
        response is the redirect of a signed-in user."""
        r = self.login(username, given)
        assert r.status_code == 200 and first_password_ticket(r.text), r.text[-400:]
        return self.post_form(
            "/hub/change-password",
            {
                "ticket": first_password_ticket(r.text),
                "new_password": chosen,
                "new_password_confirmation": chosen,
            },
            allow_redirects=False,
        )

    # -- API -------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"token {token}"
        else:
            headers["X-XSRFToken"] = self.xsrf
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, self.url("/hub/api" + path), headers=headers, **kwargs)

    def new_token(self, username: str, **body) -> str:
        r = self.api("POST", f"/users/{username}/tokens", json=body or {"note": "tests"})
        r.raise_for_status()
        return r.json()["token"]

    # -- servers ---------------------------------------------------------------------
    def start_server(self, username: str, server: str = "", timeout: float = 90) -> None:
        """Start through the REST API and wait until the hub reports it ready."""
        path = f"/users/{username}/servers/{server}" if server else f"/users/{username}/server"
        r = self.api("POST", path, json={})
        assert r.status_code in (201, 202), (r.status_code, r.text)
        self.wait_ready(username, server, timeout)

    def wait_ready(self, username: str, server: str = "", timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{username}").json()
            spawner = model.get("servers", {}).get(server)
            if spawner and spawner.get("ready"):
                return spawner
            time.sleep(0.25)
        raise TimeoutError(f"server {username}/{server!r} not ready after {timeout}s")

    def stop_server(self, username: str, server: str = "", timeout: float = 60) -> None:
        path = f"/users/{username}/servers/{server}" if server else f"/users/{username}/server"
        r = self.api("DELETE", path)
        assert r.status_code in (202, 204), (r.status_code, r.text)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server not in self.api("GET", f"/users/{username}").json().get("servers", {}):
                return
            time.sleep(0.25)
        raise TimeoutError(f"server {username}/{server!r} still running after {timeout}s")


def page_message(html: str, element_id: str) -> str | None:
    """Text of the element with this id (alerts on our pages), unescaped."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    return unescape(match.group(1).strip()) if match else None


def login_error(html: str) -> str | None:
    match = re.search(r'class="login_error">(.*?)</p>', html, re.S)
    return unescape(match.group(1).strip()) if match else None


def first_password_ticket(html: str) -> str | None:
    """The ticket of the "choose your password" form the login page answers with."""
    found = re.search(r'name="ticket" value="([^"]+)"', html)
    return found.group(1) if found else None
