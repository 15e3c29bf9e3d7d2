"""Pages of `OnyxiaLocalAuthenticator`: sign in, sign up, change password, accounts.

Every change is a POST: JupyterHub checks its XSRF token before the handler runs, so a
page on another site cannot approve, create or reset an account through a logged-in
administrator's browser.
"""

from __future__ import annotations

import os

from jinja2 import ChoiceLoader, FileSystemLoader
from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.login import LoginHandler as HubLoginHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat

from .accounts import password_matches

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates")


class _PagesMixin:
    """Make our templates reachable even when `JupyterHub.template_paths` omits them."""

    def initialize(self, *args, **kwargs):
        env = self.settings["jinja2_env"]
        if not getattr(env, "_onyxia_templates", False):
            env.loader = ChoiceLoader([env.loader, FileSystemLoader([TEMPLATES])])
            env._onyxia_templates = True
        super().initialize(*args, **kwargs)

    def form(self, name: str, limit: int = 256) -> str:
        """A form field, bounded in length (a megabyte of 'username' is not a username)."""
        value = self.get_body_argument(name, default="", strip=False)
        if len(value) > limit:
            raise web.HTTPError(400, f"The field {name!r} is too long (over {limit} characters).")
        return value


class LoginHandler(_PagesMixin, HubLoginHandler):
    """JupyterHub 6's login page, plus a sign-up link and the first-password change."""

    def _render(self, login_error=None, username=None, **kwargs):
        kwargs.setdefault("enable_signup", self.authenticator.enable_signup)
        return super()._render(login_error=login_error, username=username, **kwargs)

    def get_next_url(self, user=None, default=None):
        next_url = super().get_next_url(user, default)
        if (
            user is not None
            and self.request.method == "POST"
            and self.authenticator.must_change_password(user.name)
        ):
            return url_concat(
                url_path_join(self.hub.base_url, "change-password"),
                {"next": next_url, "first": "1"},
            )
        return next_url


class SignUpHandler(_PagesMixin, BaseHandler):
    """Ask for an account; an administrator approves it (unless `open_signup`)."""

    def _check_enabled(self):
        if not self.authenticator.enable_signup:
            raise web.HTTPError(404, "Sign-up is disabled on this hub: ask an administrator.")

    async def get(self):
        self._check_enabled()
        self.finish(await self.render_template("signup.html", username="", message=None))

    async def post(self):
        self._check_enabled()
        auth = self.authenticator
        username = auth.normalize_username(self.form("username", 128).strip())
        password = self.form("password", 1024)
        confirmation = self.form("password_confirmation", 1024)
        if username in auth.admin_users or username in auth.blocked_users:
            problem = f"The username {username!r} is reserved."
        else:
            problem = auth.check_new_name(username)
        problem = problem or auth.check_new_password(password, confirmation)
        if problem:
            self.set_status(400)
            html = await self.render_template(
                "signup.html", username=username, message=problem, alert="danger"
            )
            return self.finish(html)
        await auth.create_account(
            username, password, authorized=auth.open_signup, must_change_password=False
        )
        self.log.info(
            "Account %s signed up (%s)",
            username,
            "open sign-up" if auth.open_signup else "awaiting approval",
        )
        message = (
            "Your account is ready: you can sign in."
            if auth.open_signup
            else "Your request was sent: you can sign in once an administrator approves it."
        )
        html = await self.render_template(
            "signup.html", username="", message=message, alert="success", done=True
        )
        self.finish(html)


class ChangePasswordHandler(_PagesMixin, BaseHandler):
    """A signed-in user changes their own password (required after an admin reset)."""

    async def _render(self, **ns):
        user = self.current_user
        ns.setdefault("first", self.authenticator.must_change_password(user.name))
        ns.setdefault("next_url", self.get_next_url(user, default=self.hub.base_url + "home"))
        return await self.render_template("change-password.html", **ns)

    @web.authenticated
    async def get(self):
        self.finish(await self._render(message=None))

    @web.authenticated
    async def post(self):
        auth = self.authenticator
        user = self.current_user
        current = self.form("current_password", 1024)
        new = self.form("new_password", 1024)
        confirmation = self.form("new_password_confirmation", 1024)
        info = auth.store.info(user.name)
        if info is None:
            raise web.HTTPError(
                404, "Your account's password is not managed by this hub (no local account)."
            )
        problem = None
        if not await password_matches(info.password, current):
            problem = "Your current password is not correct."
        elif new == current:
            problem = "The new password must differ from the current one."
        problem = problem or auth.check_new_password(new, confirmation)
        if problem:
            self.set_status(400)
            return self.finish(await self._render(message=problem, alert="danger"))
        await auth.set_password(user.name, new, must_change=False)
        self.log.info("User %s changed their password", user.name)
        self.finish(
            await self._render(
                message="Your password was changed.", alert="success", done=True, first=False
            )
        )


class AccountsHandler(_PagesMixin, BaseHandler):
    """Administrators create, approve, unlock, reset and discard accounts."""

    def _require_admin(self):
        if "admin:users" not in self.expanded_scopes:
            raise web.HTTPError(403, "Only administrators can manage accounts.")

    async def _render(self, message=None, alert="info"):
        auth = self.authenticator
        accounts = auth.store.list()
        html = await self.render_template(
            "accounts.html",
            accounts=accounts,
            pending=[a for a in accounts if not a.authorized],
            message=message,
            alert=alert,
            admin_users=auth.admin_users,
            minimum_password_length=auth.minimum_password_length,
        )
        self.finish(html)

    @web.authenticated
    async def get(self):
        self._require_admin()
        await self._render()

    @web.authenticated
    async def post(self):
        self._require_admin()
        auth = self.authenticator
        action = self.form("action", 32)
        username = auth.normalize_username(self.form("username", 128).strip())
        actor = self.current_user.name
        if action == "create":
            password = self.form("password", 1024)
            problem = auth.check_new_name(username) or auth.check_new_password(password)
            if problem:
                self.set_status(400)
                return await self._render(problem, "danger")
            await auth.create_account(
                username, password, authorized=True, must_change_password=True
            )
            await self._ensure_hub_user(username)
            self.log.info("%s created account %s", actor, username)
            return await self._render(
                f"Account {username} created. Give them the initial password: they choose "
                "their own at first sign-in.",
                "success",
            )

        if not auth.store.exists(username):
            self.set_status(404)
            return await self._render(f"There is no account named {username!r}.", "danger")
        if action == "approve":
            auth.store.set_authorized(username, True)
            await self._ensure_hub_user(username)
            message = f"{username} can now sign in."
        elif action == "revoke":
            if username == actor:
                self.set_status(400)
                return await self._render("You cannot revoke your own account.", "danger")
            auth.store.set_authorized(username, False)
            message = f"{username} can no longer sign in."
        elif action == "discard":
            if any(a.username == username and a.authorized for a in auth.store.list()):
                self.set_status(400)
                return await self._render(
                    f"{username} is an approved account: revoke it first, or delete the user "
                    "from the Admin page.",
                    "danger",
                )
            auth.store.delete(username)
            message = f"The sign-up request of {username} was discarded."
        elif action == "unlock":
            auth.store.unlock(username)
            message = f"{username} is unlocked."
        elif action == "reset":
            password = self.form("password", 1024)
            problem = auth.check_new_password(password)
            if problem:
                self.set_status(400)
                return await self._render(problem, "danger")
            await auth.set_password(username, password, must_change=True)
            message = (
                f"The password of {username} was reset: they choose a new one at their "
                "next sign-in."
            )
        else:
            self.set_status(400)
            return await self._render(f"Unknown action {action!r}.", "danger")
        self.log.info("%s: %s %s", actor, action, username)
        await self._render(message, "success")

    async def _ensure_hub_user(self, username: str) -> None:
        """Make the hub know the user now, so the Admin page lists them before first sign-in."""
        if self.find_user(username) is None:
            self.user_from_username(username)


def routes():
    return [
        (r"/login", LoginHandler),
        (r"/signup", SignUpHandler),
        (r"/change-password", ChangePasswordHandler),
        (r"/accounts", AccountsHandler),
    ]
