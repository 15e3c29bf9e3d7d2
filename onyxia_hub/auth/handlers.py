"""Pages of `OnyxiaLocalAuthenticator`: sign in, sign up, change password, accounts.

Every change is a POST: JupyterHub checks its XSRF token before the handler runs, so a
page on another site cannot approve, create or reset an account through a logged-in
administrator's browser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from jinja2 import ChoiceLoader, FileSystemLoader
from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.login import LoginHandler as HubLoginHandler
from jupyterhub.utils import maybe_future
from tornado import web

from . import navigation
from .accounts import Account, password_matches
from .local import FirstPassword

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

    async def post(self):
        try:
            await super().post()
        except FirstPassword as first:
            # the password an administrator set: no session, a ticket to choose one's own
            html = await self.render_template(
                "change-password.html",
                first=True,
                ticket=self.authenticator.issue_ticket(first.username),
                username=first.username,
                next_url=self.get_next_url(default=self.hub.base_url + "home"),
                message=None,
            )
            self.finish(html)


class SignUpHandler(_PagesMixin, BaseHandler):
    """Ask for an account; an administrator approves it (unless `open_signup`)."""

    def _check_enabled(self):
        if not self.authenticator.enable_signup:
            raise web.HTTPError(404, "Sign-up is disabled on this hub: ask an administrator.")

    async def get(self):
        self._check_enabled()
        self.finish(await self.render_template("signup.html", username="", email="", message=None))

    async def post(self):
        self._check_enabled()
        auth = self.authenticator
        username = auth.normalize_username(self.form("username", 128).strip())
        password = self.form("password", 1024)
        confirmation = self.form("password_confirmation", 1024)
        typed_email = self.form("email", 256).strip()
        email, problem = auth.check_new_email(typed_email)
        if username in auth.admin_users or username in auth.blocked_users:
            problem = f"The username {username!r} is reserved."
        else:
            problem = auth.check_new_name(username) or problem
        problem = problem or auth.check_new_password(password, confirmation)
        if problem:
            self.set_status(400)
            html = await self.render_template(
                "signup.html", username=username, email=typed_email, message=problem, alert="danger"
            )
            return self.finish(html)
        await auth.create_account(
            username,
            password,
            authorized=auth.open_signup,
            must_change_password=False,
            email=email,
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
            "signup.html", username="", email="", message=message, alert="success", done=True
        )
        self.finish(html)


class ChangePasswordHandler(_PagesMixin, BaseHandler):
    """A signed-in user changes their own password; or, with the ticket the login page
    gave them, a user signing in with a password an administrator set chooses their own,
    and is signed in then."""

    async def _render(self, **ns):
        user = self.current_user
        ns.setdefault("first", False)
        ns.setdefault("next_url", self.get_next_url(user, default=self.hub.base_url + "home"))
        return await self.render_template("change-password.html", **ns)

    @web.authenticated
    async def get(self):
        self.finish(await self._render(message=None))

    async def post(self):
        if self.get_body_argument("ticket", ""):
            return await self._first_password()
        if self.current_user is None:
            raise web.HTTPError(403, "Sign in to change your password.")
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

    async def _first_password(self):
        auth = self.authenticator
        ticket = self.form("ticket", 64)
        username = auth.ticket_user(ticket)
        next_url = self.get_next_url(default=self.hub.base_url + "home")
        if username is None:
            self.set_status(403)
            html = await self.render_template(
                "change-password.html",
                message="This page has expired: sign in again with the password you were given.",
                alert="danger",
                first=True,
                expired=True,
                next_url=next_url,
            )
            return self.finish(html)
        new = self.form("new_password", 1024)
        confirmation = self.form("new_password_confirmation", 1024)
        info = auth.store.info(username)
        problem = auth.check_new_password(new, confirmation)
        if problem is None and info is not None and await password_matches(info.password, new):
            problem = "Choose a password of your own, not the one you were given."
        if problem:
            self.set_status(400)
            html = await self.render_template(
                "change-password.html",
                message=problem,
                alert="danger",
                first=True,
                ticket=ticket,
                username=username,
                next_url=next_url,
            )
            return self.finish(html)
        await auth.set_password(username, new, must_change=False)
        auth.spend_ticket(ticket)
        self.log.info("User %s chose their first password", username)
        user = await self.login_user({"username": username, "password": new})
        if user is None:  # revoked or locked meanwhile
            raise web.HTTPError(403, "Your account cannot sign in now: ask an administrator.")
        self.redirect(next_url)


@dataclass(frozen=True)
class Person:
    """One row of the People page: a hub user, their account, or both."""

    name: str
    account: Account | None
    admin: bool = False
    in_hub: bool = False
    running: int = 0  # servers active now
    last_activity: datetime | None = None


class AccountsHandler(_PagesMixin, BaseHandler):
    """Administrators manage people: every hub user with their account, in one list.

    Create (with an initial password), set or reset a password, approve, revoke, unlock,
    delete. Each hub user has an account (the authenticator's `add_user`); one added
    through JupyterHub's admin page or REST API has no password until it is set here.
    """

    def _require_admin(self):
        if "admin:users" not in self.expanded_scopes:
            raise web.HTTPError(403, "Only administrators can manage accounts.")

    def _people(self) -> list[Person]:
        accounts = {a.username: a for a in self.authenticator.store.list()}
        people = {}
        for orm_user in self.db.query(orm.User):
            user = self.users[orm_user]
            people[user.name] = Person(
                name=user.name,
                account=accounts.get(user.name),
                admin=bool(user.admin),
                in_hub=True,
                running=sum(1 for spawner in user.spawners.values() if spawner.active),
                last_activity=user.last_activity,
            )
        for name, account in accounts.items():
            people.setdefault(name, Person(name=name, account=account))
        return sorted(people.values(), key=lambda p: p.name)

    async def _render(self, message=None, alert="info", form=None):
        auth = self.authenticator
        people = self._people()
        html = await self.render_template(
            "accounts.html",
            people=people,
            pending=[p for p in people if p.account and not p.account.authorized],
            no_password=[p for p in people if not (p.account and p.account.has_password)],
            message=message,
            alert=alert,
            form=form or {},
            minimum_password_length=auth.minimum_password_length,
            onyxia_nav="admin",
            admin_tab="people",
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
            return await self._create(username, actor)

        hub_user_only = action in ("reset", "delete") and self.find_user(username) is not None
        if not auth.store.exists(username) and not hub_user_only:
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
        elif action == "delete":
            return await self._delete(username, actor)
        elif action == "unlock":
            auth.store.unlock(username)
            message = f"{username} is unlocked."
        elif action == "reset":
            password = self.form("password", 1024)
            problem = auth.check_new_password(password)
            if problem:
                self.set_status(400)
                return await self._render(f"{username}: {problem}", "danger")
            info = auth.store.info(username)
            had_password = bool(info and info.password)
            if info is None:  # a hub user without an account (blocked, or added before)
                await auth.create_account(
                    username, password, authorized=True, must_change_password=True
                )
            else:
                await auth.set_password(username, password, must_change=True)
            message = (
                f"The password of {username} was {'reset' if had_password else 'set'}: give "
                "it to them, they choose their own at their next sign-in."
            )
        else:
            self.set_status(400)
            return await self._render(f"Unknown action {action!r}.", "danger")
        self.log.info("%s: %s %s", actor, action, username)
        await self._render(message, "success")

    async def _create(self, username: str, actor: str):
        auth = self.authenticator
        password = self.form("password", 1024)
        email, problem = auth.check_new_email(self.form("email", 256).strip())
        if self.find_user(username) is not None and not auth.store.exists(username):
            problem = problem or (
                f"{username} is already a user: set their password in the list below."
            )
        problem = problem or auth.check_new_name(username) or auth.check_new_password(password)
        if problem:
            self.set_status(400)
            form = {"username": username, "email": self.form("email", 256).strip()}
            return await self._render(problem, "danger", form=form)
        await auth.create_account(
            username, password, authorized=True, must_change_password=True, email=email
        )
        await self._ensure_hub_user(username)
        self.log.info("%s created account %s", actor, username)
        await self._render(
            f"Account {username} created. Give them the initial password: they choose "
            "their own at first sign-in.",
            "success",
        )

    async def _delete(self, username: str, actor: str):
        """The hub user (servers stopped first) and the account, as JupyterHub's admin
        page deletes a user; or a sign-up request nobody approved."""
        if username == actor:
            self.set_status(400)
            return await self._render("You cannot delete your own account.", "danger")
        user = self.find_user(username)
        if user is None:
            self.authenticator.store.delete(username)
            self.log.info("%s deleted the account %s", actor, username)
            return await self._render(f"The account {username} was deleted.", "success")
        if any(spawner.pending and spawner.pending != "stop" for spawner in user.spawners.values()):
            self.set_status(409)
            return await self._render(
                f"A server of {username} is starting: try again once it has started.", "danger"
            )
        for name, spawner in list(user.spawners.items()):
            if spawner.active and not spawner._stop_pending:
                await self.stop_single_user(user, name)
        if any(spawner._stop_pending for spawner in user.spawners.values()):
            self.set_status(409)
            return await self._render(
                f"A server of {username} is still stopping: try again in a moment.", "danger"
            )
        await maybe_future(self.authenticator.delete_user(user))
        await user.delete_spawners()
        self.users.delete(user)
        self.log.info("%s deleted the user %s and their account", actor, username)
        await self._render(f"{username} was deleted, with their account and servers.", "success")

    async def _ensure_hub_user(self, username: str) -> None:
        """Make the hub know the user now, so the Admin page lists them before first sign-in."""
        if self.find_user(username) is None:
            self.user_from_username(username)


def routes():
    return navigation.routes() + [
        (r"/login", LoginHandler),
        (r"/signup", SignUpHandler),
        (r"/change-password", ChangePasswordHandler),
        (r"/accounts", AccountsHandler),
    ]
