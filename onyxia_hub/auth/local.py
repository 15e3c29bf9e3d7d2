"""`OnyxiaLocalAuthenticator`: passwords kept by the hub, for one machine and small classes.

It is NativeAuthenticator (same `users_info` table, same bcrypt hashes, same password
strength rules and common-password list) with the gaps it has on JupyterHub 6 closed:

1. Approving, revoking and discarding accounts were GET links (`/hub/authorize/<name>`),
   so any web page could make a logged-in administrator approve an account. Here every
   change is a POST carrying the XSRF token.
2. Failed sign-ins were counted in memory (reset by a restart, lock measured with
   `timedelta.seconds`, which wraps every day) and a locked user got no explanation.
   Here they are stored, each failure is slowed down, and a lock-out says so and for how long.
3. It used the deprecated shared `Authenticator.db` session (a warning at every start);
   here the account store has its own connection.
4. Its login page replaced JupyterHub 6's (losing the 403 status, the XSRF-expiry
   message and the username kept after a failure); here JupyterHub's handler is extended.
5. Its Bootstrap 3 templates did not match JupyterHub 6 pages; here they extend them.
6. An administrator could not create an account with an initial password, and
   `create_user` silently did nothing when sign-up was disabled. Here Admin > People
   creates accounts whose first sign-in asks for a new password, and opens no session
   until one is chosen: the password an administrator gave never reaches the datalab.
7. The first visitor to sign up under an administrator's name became that administrator.
   Here administrator names cannot be signed up for; `onyxia-hub up` creates the
   `admin` account itself.
8. A user added through JupyterHub's admin page or REST API had no account: not listed,
   no way to give them a password, no way in. Here `add_user` gives every hub user an
   account with no password (nobody can sign in as them, and nobody can sign up under
   their name) until an administrator sets one on Admin > People; deleting the user
   deletes the account.
9. Since JupyterHub 5 an authenticator allows nobody unless told otherwise
   (`allow_all` is False); NativeAuthenticator 1.3 does not say, so approved accounts
   were refused. Here an approved account is allowed, unless `allowed_users` or
   `allowed_groups` narrow it further.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from datetime import timedelta

from nativeauthenticator import NativeAuthenticator
from tornado import web
from traitlets import Float, Unicode, default

from ..fields import FieldError, check_email
from .accounts import (
    ACCOUNT_EMAIL,
    NAME_RULE,
    AccountStore,
    hash_password_async,
    name_problem,
    open_session,
    password_matches,
    utcnow,
)


class FirstPassword(Exception):
    """The right password, set by an administrator: the user chooses their own before any
    session opens (`LoginHandler` shows the form, with a ticket in place of a session)."""

    def __init__(self, username: str):
        super().__init__(username)
        self.username = username


TICKET_SECONDS = 600  # to choose a first password after signing in with the given one


class OnyxiaLocalAuthenticator(NativeAuthenticator):
    """Accounts with passwords stored (hashed) by the hub; see the module docstring."""

    db_url = Unicode(
        "sqlite:///accounts.sqlite",
        help="""
        SQLAlchemy URL of the database holding accounts and sign-in failures.

        It may be the hub's own database (`c.JupyterHub.db_url`), which then holds the
        `users_info` table NativeAuthenticator uses; the embedded default keeps a separate
        `accounts.sqlite` in its state directory. Example::

            c.OnyxiaLocalAuthenticator.db_url = "sqlite:////var/lib/onyxia-hub/hub/accounts.sqlite"
        """,
    ).tag(config=True)

    failed_login_delay = Float(
        1.0,
        help="""
        Seconds every failed sign-in waits before the login form is shown again.

        Slows down password guessing without locking anybody out; the lock-out after
        `allowed_failed_logins` failures in a row comes on top of it. 0 disables the delay.
        """,
    ).tag(config=True)

    @default("allow_all")
    def _allow_all_default(self):
        # Approval by an administrator is this authenticator's allow-list.
        return not (self.allowed_users or getattr(self, "allowed_groups", None))

    @default("allowed_failed_logins")
    def _allowed_failed_logins_default(self):
        # NativeAuthenticator's default is 0 (never lock); 5 failures in a row lock an
        # account name for `seconds_before_next_try`.
        return 5

    @default("seconds_before_next_try")
    def _seconds_before_next_try_default(self):
        return 300

    @default("minimum_password_length")
    def _minimum_password_length_default(self):
        return 8

    @default("check_common_password")
    def _check_common_password_default(self):
        return True

    @default("db")
    def _db_default(self):
        # NativeAuthenticator's methods read `self.db`: give them our own session instead
        # of JupyterHub's deprecated shared one.
        return open_session(self.db_url)

    def __init__(self, **kwargs):
        # add_new_table=False: our session creates the tables (see accounts.open_session).
        super().__init__(add_new_table=False, **kwargs)
        self.store = AccountStore(self.db)
        self.store.forget_stale_failures(older_than=timedelta(days=1))

    # -- policy ------------------------------------------------------------------------
    def check_new_name(self, username: str) -> str | None:
        """Why a new account cannot have this name, or None."""
        problem = name_problem(username)
        if problem:
            return problem
        if self.store.exists(username):
            return f"The username {username!r} is already taken."
        return None

    def check_new_password(self, password: str, confirmation: str | None = None) -> str | None:
        """Why a password cannot be used, or None."""
        if confirmation is not None and password != confirmation:
            return "The password and its confirmation differ."
        if len(password) < self.minimum_password_length:
            return f"Passwords need at least {self.minimum_password_length} characters."
        if len(password.encode()) > 72:
            return "Passwords can have at most 72 bytes."
        if self.check_common_password and self.is_password_common(password):
            return "This password is too common; choose another one."
        return None

    def check_new_email(self, email: str) -> tuple[str | None, str | None]:
        """(the e-mail address, None) or (None, why it cannot be used); empty is allowed."""
        try:
            email = check_email(email)
        except FieldError as e:
            return None, f"E-mail: {e.message}."
        if email and len(email) > 128:
            return None, "E-mail: at most 128 characters."
        if email and not ACCOUNT_EMAIL.fullmatch(email):
            return None, (
                "E-mail: accounts take addresses of letters, digits and . + _ - only "
                "(such as name@example.org)."
            )
        return email, None

    def validate_username(self, username: str) -> bool:
        return name_problem(username) is None and super().validate_username(username)

    # -- sign-in -----------------------------------------------------------------------
    async def authenticate(self, handler, data):
        username = self.normalize_username((data or {}).get("username", "") or "")
        password = (data or {}).get("password", "") or ""
        if not username or len(username) > 128:
            await asyncio.sleep(self.failed_login_delay)
            return None

        security = self.store.security(username)
        if security.locked_until and security.locked_until > utcnow():
            minutes = math.ceil((security.locked_until - utcnow()).total_seconds() / 60)
            raise web.HTTPError(
                429,
                f"Too many failed sign-ins for this account. Try again in {minutes} "
                f"minute{'s' if minutes != 1 else ''}, or ask an administrator to unlock it.",
            )

        info = self.store.info(username)
        if not await password_matches(info.password if info else None, password):
            self.store.record_failure(
                username,
                limit=self.allowed_failed_logins,
                lock_for=timedelta(seconds=self.seconds_before_next_try),
            )
            self.log.warning("Failed sign-in for %s", username[:32])
            await asyncio.sleep(self.failed_login_delay)
            return None
        if not info.is_authorized:
            raise web.HTTPError(403, "Your account is waiting for an administrator's approval.")
        self.store.record_success(username)
        if self.must_change_password(username):
            raise FirstPassword(username)
        # the user's identity, in the shape identity providers give it (OAuth userinfo),
        # for whoever reads auth_state (the git provider's default identity); JupyterHub
        # keeps it only with enable_auth_state
        identity = {"name": username, "preferred_username": username}
        if info.email:
            identity["email"] = info.email
        return {"name": username, "auth_state": {"oauth_user": identity}}

    def must_change_password(self, username: str) -> bool:
        return self.store.security(username).must_change_password

    # -- first passwords: a ticket instead of a session --------------------------------
    def issue_ticket(self, username: str) -> str:
        """A one-use ticket to choose a first password, for TICKET_SECONDS."""
        now = time.monotonic()
        tickets = getattr(self, "_tickets", {})
        self._tickets = {t: v for t, v in tickets.items() if v[1] > now}  # drop expired
        ticket = secrets.token_urlsafe(32)
        self._tickets[ticket] = (username, now + TICKET_SECONDS)
        return ticket

    def ticket_user(self, ticket: str) -> str | None:
        """Whose first-password ticket this is, while it is valid."""
        username, until = getattr(self, "_tickets", {}).get(ticket, (None, 0.0))
        return username if until > time.monotonic() else None

    def spend_ticket(self, ticket: str) -> None:
        getattr(self, "_tickets", {}).pop(ticket, None)

    # -- accounts ----------------------------------------------------------------------
    async def create_account(
        self,
        username: str,
        password: str,
        *,
        authorized: bool,
        must_change_password: bool,
        email: str | None = None,
    ) -> None:
        """Create an account (names, passwords and e-mails must have been checked by the
        caller)."""
        self.store.create(
            username,
            await hash_password_async(password),
            authorized=authorized,
            must_change=must_change_password,
            email=email,
        )

    async def set_password(self, username: str, password: str, *, must_change: bool) -> bool:
        return self.store.set_password(
            username, await hash_password_async(password), must_change=must_change
        )

    def add_user(self, user):
        # Called for every hub user at each start, and whenever JupyterHub adds one (admin
        # page, REST API, allowed_users): each gets an account, without a password until
        # an administrator sets one on Admin > People (/hub/accounts).
        if not self.validate_username(user.name):
            raise ValueError(f"Invalid username {user.name!r}: usernames are {NAME_RULE}.")
        if not self.store.exists(user.name):
            self.store.create(user.name, None, authorized=True, must_change=True)
            self.log.info("User %s has an account now, without a password yet", user.name)
        return super().add_user(user)

    def delete_user(self, user):
        # Called when an admin deletes a hub user: the account goes with it.
        self.store.delete(user.name)
        return super(NativeAuthenticator, self).delete_user(user)

    def get_handlers(self, app):
        from . import handlers

        return handlers.routes()
