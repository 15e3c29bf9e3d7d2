"""`GitProvider`: every server starts with the user's git identity, token and repository.

At each launch it reads the user's My account settings from the portal's store (in a
thread: the store is synchronous SQLAlchemy), falls back to the identity provider's
userinfo for the name and e-mail, then to the hub user name and `default_email` (so that
`git commit` always has an identity), takes the launch's own repository and branch when
it names some, and contributes (see `settings`):

- `GIT_USER_NAME`, `GIT_USER_MAIL`, `GIT_REPOSITORY`, `GIT_BRANCH` (Onyxia's names);
- a git configuration (the operator's `git_config`, the identity, a credential helper
  per allowed https host), secret file `git/config`, which extensions/onyxia-git points
  `GIT_CONFIG_SYSTEM` at;
- the token as secret file `git/token` (mode 0600, memory-backed, outside the home),
  read by that helper only; `GIT_PERSONAL_ACCESS_TOKEN` only if the operator opts in;
- the plan's `repository`, which the server clones or updates at start
  (`onyxia-git-pull`, run by the server extension), into the launch's `repository_dir`
  when it gives one (`ONYXIA_GIT_TARGET`), and whose status the server reports to
  `pull_report_url` when the operator sets one (`ONYXIA_GIT_REPORT_URL`).

A store that cannot be read does not stop launches (`required` is False by default): the
server starts with what the other sources give, and the hub logs why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sqlalchemy.exc import SQLAlchemyError
from traitlets import Bool, Dict, Integer, List, TraitError, Unicode, default, validate

from ...db.crypto import CryptoError
from ...db.engine import safe_url
from ...db.portal import SCHEMA as PORTAL_STORE
from ...db.store import Store
from ...db.stores import open_for_hub, service_environment, store_settings
from ...gitvalues import report_url_problem
from ..base import PlanProvider, PlanRequest
from . import settings as git


class GitProvider(PlanProvider):
    """Git identity, token and repository for every launch; see the module docstring."""

    @default("required")
    def _required_default(self):
        return False

    db_url = Unicode(
        None,
        allow_none=True,
        help="""
        The portal's store (My account settings), as an SQLAlchemy URL: the same database
        the portal uses (`PortalApp.db_url`). Read only; the hub migrates it before it starts.

        Default: `ONYXIA_PORTAL_DB_URL` from the environment of the hub's `portal` service
        (`c.JupyterHub.services`), else from the hub's own environment; None when neither
        has it, and then no My account settings are read (the identity provider's name and
        e-mail, and the launch's own repository, still are). Give a password through the
        environment (`PGPASSWORD`), never in the URL.

            c.GitProvider.db_url = "sqlite:////var/lib/onyxia-hub/portal/portal.sqlite"
        """,
    ).tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return store_settings(PORTAL_STORE, self._portal_environment())[0]

    key_file = Unicode(
        None,
        allow_none=True,
        help="""
        The file of the keys that decrypt the stored tokens (`PortalApp.key_file`).
        `ONYXIA_PORTAL_CRYPT_KEY`, in the portal service's environment or the hub's, adds
        keys before the file's, as for the portal. Default: `ONYXIA_PORTAL_KEY_FILE` from
        the portal service's environment, else the hub's. Without any key, tokens are not
        delivered (the hub logs why) and everything else is. Keys are read at the first
        launch after the hub starts: restart the hub after rotating them, as the portal.

            c.GitProvider.key_file = "/var/lib/onyxia-hub/hub/secrets/portal_key"
        """,
    ).tag(config=True)

    @default("key_file")
    def _key_file_default(self):
        return store_settings(PORTAL_STORE, self._portal_environment())[1] or None

    credential_hosts = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help="""
        The https hosts (`host` or `host:port`) the user's token is offered to by the
        credential helper in their servers. No other host, and no other protocol, ever
        gets it.

        None (default): the host of the user's default repository in My account, if any.
        A repository named by the spawn form or a link never adds its host: a link from
        another site must not be able to send the token elsewhere. An empty list offers
        the token to no host.

            c.GitProvider.credential_hosts = ["gitlab.example.org", "github.com"]
        """,
    ).tag(config=True)

    @validate("credential_hosts")
    def _validate_credential_hosts(self, proposal):
        if proposal.value is None:
            return None
        try:
            return [git.check_host(h) for h in proposal.value]
        except ValueError as e:
            raise TraitError(f"GitProvider.credential_hosts: {e}") from None

    allowed_schemes = List(
        Unicode(),
        ["https"],
        help="""
        Repository URL schemes that are cloned at start: `https`, and `ssh` where the
        operator enables it (the images then need keys or an agent: no ssh key is
        delivered). Passed to the puller as its `GIT_ALLOW_PROTOCOL`. Repositories named by
        the form or a link are https only whatever this says; an ssh default repository
        also needs `c.PortalApp.repository_schemes = ["https", "ssh"]`.

            c.GitProvider.allowed_schemes = ["https", "ssh"]
        """,
    ).tag(config=True)

    @validate("allowed_schemes")
    def _validate_allowed_schemes(self, proposal):
        schemes = list(dict.fromkeys(s.lower() for s in proposal.value))
        if "https" not in schemes or not set(schemes) <= {"https", "ssh"}:
            raise TraitError("GitProvider.allowed_schemes: https, and optionally ssh")
        return schemes

    personal_access_token_variable = Bool(
        False,
        help="""
        Also give the token as `GIT_PERSONAL_ACCESS_TOKEN`, as Onyxia does, for scripts
        and images that read it.

        False (default): the token is only a file the credential helper reads. A variable
        is inherited by every process of the server (kernels, terminals, anything they
        start) and shown by `env`, `os.environ`, `Sys.getenv()`; any library or package
        that reports its environment (crash reports, debug dumps) sends it along.
        True: that, in exchange for compatibility (on Kubernetes the value still lives in
        the server's Secret, not in the pod spec).
        """,
    ).tag(config=True)

    credential_username = Unicode(
        "oauth2",
        help="""
        The user name the credential helper gives with the token. Forges check the token,
        not the name, for personal access tokens: GitHub and GitLab accept any non-empty
        name (`oauth2` is GitLab's for OAuth tokens). `{username}` is replaced by the hub
        user's name, for forges that want it (Gitea with its own logins).
        """,
    ).tag(config=True)

    pull_timeout = Integer(
        300,
        help="""
        Seconds the start-time clone or update may take; after that it is stopped, the
        user is told, and the server keeps running without it. Stalled transfers (under
        1 kB/s for 60 s) are stopped sooner.
        """,
    ).tag(config=True)

    pull_report_url = Unicode(
        "",
        help="""
        A URL each server POSTs its start-time pull's status to, as JSON, with its own
        JupyterHub API token (`Authorization: token $JUPYTERHUB_API_TOKEN`): once when
        the pull starts (state `running`), once when it ends (`done`, `failed`,
        `refused` or `skipped`). Made for the courses service, which learns from it
        when a course's material is in place:

            c.GitProvider.pull_report_url = "http://127.0.0.1:8000/services/courses/api/pull-status"

        The body: `{"server": <the server's name, "" for the default>, "id": <the pull's
        id>, "state": ..., "message": <what JupyterLab shows>, "repository_dir": <where
        the clone is, relative to the server's root directory: the launch's
        repository_dir, else the repository's name>}` (docs/git.md, "The pull's report").
        Set only for launches that pull a repository, as `ONYXIA_GIT_REPORT_URL`.

        An http:// or https:// URL with a host, without a user name or password, query or
        fragment (checked as the hub reads its configuration). It must be reachable from
        the servers directly: the report goes through no proxy of their environment and
        follows no redirect (the token goes to this URL and nowhere else); a 5xx answer or
        a connection error is tried again twice, then logged in the server's log; neither
        the server nor the pull waits for it. The receiver checks the token with the hub
        (`GET /hub/api/user` names its owner; the body's `server` is one of theirs). Over
        plain http:// the token crosses the network in clear: use it only to the hub's
        own address on the servers' network.

        Default: "" (no report).
        """,
    ).tag(config=True)

    @validate("pull_report_url")
    def _validate_pull_report_url(self, proposal):
        problem = report_url_problem(proposal.value) if proposal.value else None
        if problem:
            raise TraitError(
                f"GitProvider.pull_report_url: the URL {problem}, as in "
                "https://hub.example.org/services/courses/api/pull-status"
            )
        return proposal.value

    use_oidc_identity = Bool(
        True,
        help="""
        Use the identity provider's `name` and `email` claims (auth_state `oauth_user`,
        as OnyxiaOIDCAuthenticator keeps them, and the embedded default's local accounts
        too) when My account sets no name or e-mail. An e-mail the provider marks
        unverified (`email_verified: false`) is not used.

        True (default). False: the claims are ignored, and the name and e-mail of users
        who set none in My account are the defaults (the hub user name, `default_email`).
        """,
    ).tag(config=True)

    default_email = Unicode(
        git.DEFAULT_EMAIL,
        help="""
        The e-mail address git signs with when neither My account nor the identity
        provider gives one (a local account without an address, an unverified one, or
        `use_oidc_identity = False`): git refuses to commit without an identity, and
        guesses `user@host.(none)` otherwise. The name then is the hub user name, unless
        the identity provider gives one.

        `{username}` is replaced by the hub user name, with the characters an address
        cannot hold (`@`, spaces, `<>(),;:"[]\\`) turned into `-`. Default:
        `{username}@users.noreply.localhost`, an address that reaches no one (`localhost`
        is reserved, RFC 6761) and says so in `git log`; forges show such commits as
        by an unknown author. Use a domain of your own for addresses your forge
        recognises (GitLab and Gitea can add one per user). "" gives no default: git
        then refuses to commit until the user sets an e-mail in My account.

            c.GitProvider.default_email = "{username}@users.noreply.datalab.example.org"
        """,
    ).tag(config=True)

    @validate("default_email")
    def _validate_default_email(self, proposal):
        sample = proposal.value.replace("{username}", "user")
        if proposal.value and git.default_address(proposal.value, "user") != sample:
            raise TraitError(
                f"GitProvider.default_email: {proposal.value!r} does not make an e-mail "
                f"address, such as {git.DEFAULT_EMAIL}"
            )
        return proposal.value

    git_config = Dict(
        help="""
        Git settings for every server: git configuration keys (`section.name`, or
        `section.subsection.name`) and their values, written into the configuration the
        provider delivers (`git/config` in the server's secrets, which git reads through
        `GIT_CONFIG_SYSTEM`: interactive git, JupyterLab's git tools and the start-time
        pull alike). The place for a git server's private CA, a proxy, URL rewrites:
        servers' environments cannot hold `GIT_*` variables (the catalog refuses them).

        A value is a string, a boolean or an integer; a list gives a key several values
        (`http.extraHeader`). Keys are checked as the provider reads its configuration
        (a wrong one fails launches, with the key named in the hub's log): the form (no
        line breaks or control characters anywhere), each key once, and none of the keys
        the provider sets itself or that would run programs or turn off a defence:
        `user.*`, `author.*`, `committer.*` (the identity), `credential.*`,
        `credentialCache.*`, `credentialStore.*` (the token's helper), `include.*`,
        `includeIf.*`, `remote.*`, `branch.*`, `submodule.*`,
        `core.worktree`, `core.bare`, programs and hooks (`core.sshCommand`,
        `core.gitProxy`, `core.askPass`, `core.editor`, `core.pager`, `core.fsmonitor`,
        `core.hooksPath`, `core.alternateRefsCommand`, `init.templateDir`,
        `sequence.editor`, `pager.*`, `interactive.diffFilter`, `diff.external`,
        `diff.*.command`, `diff.*.textconv`, `merge.*.driver`, `filter.*`, `difftool.*`,
        `mergetool.*`, `guitool.*`, `browser.*`, `man.*`, `gpg.program`,
        `gpg.*.program`, `gpg.*.defaultKeyCommand`, `trailer.*.command`,
        `trailer.*.cmd`, `sendemail.*`, `imap.*`, `instaweb.*`, `uploadpack.*`, aliases
        starting with `!`), `protocol.*`, `safe.*`, `core.protectHFS`,
        `core.protectNTFS`, `http[.<url>].sslVerify` and `trace2.*`
        (`settings.REFUSED_CONFIG`, docs/git.md).

        Paths are the servers' (an image's file, a mounted volume), not the hub's; the
        user can read every value (no passwords). System scope is git's lowest: a
        user's ~/.gitconfig wins, and so does `GIT_SSL_CAINFO` in a server's environment
        over `http.sslCAInfo`. `http.sslCAInfo` replaces git's list of CAs: give a bundle
        holding the public CAs too, or scope it to the server's URL, as below.
        Default: {} (nothing).

            c.GitProvider.git_config = {
                "http.https://git.example.org/.sslCAInfo": "/etc/ssl/certs/private-ca.pem",
                "http.proxy": "http://proxy.example.org:3128",
                "http.https://git.example.org/.proxy": "",
            }
        """,
    ).tag(config=True)

    @validate("git_config")
    def _validate_git_config(self, proposal):
        try:
            git.check_config(proposal.value)
        except ValueError as e:
            raise TraitError(f"GitProvider.git_config: {e}") from None
        return proposal.value

    # -- sources -----------------------------------------------------------------------
    def _portal_environment(self) -> dict[str, str]:
        """The hub's environment under the `portal` service's own (where it runs)."""
        return service_environment(self.config, PORTAL_STORE.name)

    def _store(self) -> Store | None:
        if not self.db_url:  # None or "": My account is not read (its default found none)
            return None
        handle = open_for_hub(PORTAL_STORE, self.config, db_url=self.db_url, key_file=self.key_file)
        if handle.key_problem and handle not in _WARNED:
            _WARNED.add(handle)
            self.log.warning("Git tokens will not be delivered: %s", handle.key_problem)
        return Store(handle.engine, handle.crypto)

    def _read_account(self, username: str) -> git.Account:
        store = self._store()
        if store is None:
            return git.Account()
        try:
            account = store.account(username)
            token = None
            if account.token_set:
                try:
                    token = store.git_token(username)
                except CryptoError as e:
                    self.log.warning("The git token of %s cannot be used: %s", username, e)
        except SQLAlchemyError as e:
            self.log.error(
                "Git settings of %s not read from %s: %s",
                username,
                safe_url(self.db_url),
                str(e).splitlines()[0][:200],
            )
            return git.Account()
        return git.Account(
            account.git_name, account.git_email, account.git_repository, account.git_branch, token
        )

    # -- the contribution --------------------------------------------------------------
    async def contribute(self, request: PlanRequest):
        account = await asyncio.to_thread(self._read_account, request.username)
        auth_state = request.auth_state if isinstance(request.auth_state, Mapping) else {}
        oauth_user = auth_state.get("oauth_user") if self.use_oidc_identity else None
        resolved, notes = git.resolve(
            request.choice,
            account,
            oauth_user,
            schemes=tuple(self.allowed_schemes),
            hosts=tuple(self.credential_hosts) if self.credential_hosts is not None else None,
            username=request.username,
            default_email=self.default_email,
        )
        for note in notes:
            self.log.info("Git for %s: %s", request.username, note)
        return git.contribution(
            resolved,
            username=self.credential_username.replace("{username}", request.username),
            protocols=tuple(self.allowed_schemes),
            pull_timeout=self.pull_timeout,
            token_variable=self.personal_access_token_variable,
            operator=git.check_config(self.git_config),
            report_url=self.pull_report_url,
        )


_WARNED: set = set()  # opened stores whose missing key was logged once
