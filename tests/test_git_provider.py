"""The git provider on the hub's side, without servers: sources, precedence, what lands where.

- `settings.resolve`: the launch's repository over My account's (and its
  `repository_dir`, never applied to the default repository), My account's identity
  over the identity provider's, over the defaults (the hub user name, `default_email`),
  and the token offered only to the default repository's host (or the operator's list),
  never to a host a link names;
- `settings.git_config` and `settings.contribution`: the configuration file git reads,
  the operator's own settings in it (`GitProvider.git_config`: form, refused keys,
  quoting), Onyxia's variables and the pull's (`ONYXIA_GIT_TARGET`,
  `ONYXIA_GIT_REPORT_URL` from `pull_report_url`), the token as a secret file only (or
  also as `GIT_PERSONAL_ACCESS_TOKEN` when the operator opts in);
- a real `git commit` in a fresh home with nothing but the provider's configuration;
- `GitProvider` reading a real portal store (SQLite, encrypted token), with its defaults
  taken from the portal service's environment, and launching on when the store cannot be
  read;
- on Kubernetes, the pod and Secret OnyxiaSpawner builds with it: the token in the
  Secret only, never in the pod (the secret scanner over the manifest and the logs).
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
from types import SimpleNamespace

import pytest
from traitlets import TraitError
from traitlets.config import Config

from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.choices import Choice, check
from onyxia_hub.db import make_engine
from onyxia_hub.db.crypto import FieldCrypto, parse_key
from onyxia_hub.db.portal import upgrade
from onyxia_hub.db.store import Store
from onyxia_hub.plan import Repository
from onyxia_hub.providers.base import PlanRequest
from onyxia_hub.providers.git import GitProvider
from onyxia_hub.providers.git.settings import (
    REFUSED_CONFIG,
    Account,
    GitSettings,
    check_config,
    contribution,
    credential_host,
    default_address,
    git_config,
    resolve,
)
from tests.helpers.secrets import SecretScanner

CATALOG = load_catalog([default_catalog_path()])
SERVICE = CATALOG.get("jupyter-python")
TOKEN = "glpat-" + secrets.token_urlsafe(20)
DEFAULT = "https://git.example.org/stats/survey.git"
OTHER = "https://elsewhere.example.net/course/intro.git"
ACCOUNT = Account("Ann O'Neil", "ann@example.org", DEFAULT, "dev", TOKEN)
OIDC = {"name": "Ann from Keycloak", "email": "ann@idp.example.org", "email_verified": True}


def choice(**options):
    return check({"service": "jupyter-python", **options}, CATALOG, [])


# -- precedence -------------------------------------------------------------------------
def test_my_account_gives_identity_repository_branch_and_token():
    settings, notes = resolve(choice(), ACCOUNT, OIDC)
    assert settings == GitSettings(
        "Ann O'Neil", "ann@example.org", DEFAULT, "dev", TOKEN, ("git.example.org",)
    )
    assert notes == []


def test_the_identity_provider_fills_in_name_and_email():
    settings, _ = resolve(choice(), Account(), OIDC)
    assert (settings.name, settings.email) == ("Ann from Keycloak", "ann@idp.example.org")
    unverified = dict(OIDC, email_verified=False)
    assert resolve(choice(), Account(), unverified)[0].email is None
    # values git's configuration could be fooled by are not taken
    hostile = {"name": "Ann\n[core]\n\tsshCommand = x", "email": "not an address"}
    assert resolve(choice(), Account(), hostile)[0] == GitSettings()
    assert resolve(choice(), Account(name="Ann"), OIDC)[0].name == "Ann"


NOREPLY = "{username}@users.noreply.localhost"


# (id, My account, oauth_user, hub user, default_email) -> (name, e-mail)
IDENTITIES = [
    ("00-my-account-wins", Account("Ann", "ann@example.org"), OIDC, "ann", NOREPLY,
     ("Ann", "ann@example.org")),
    ("01-identity-provider", Account(), OIDC, "ann", NOREPLY,
     ("Ann from Keycloak", "ann@idp.example.org")),
    ("02-unverified-email", Account(), dict(OIDC, email_verified=False), "ann", NOREPLY,
     ("Ann from Keycloak", "ann@users.noreply.localhost")),
    ("03-no-verified-flag", Account(), {"name": "Ann", "email": "ann@local.example"}, "ann",
     NOREPLY, ("Ann", "ann@local.example")),
    ("04-nothing-known", Account(), None, "ann", NOREPLY,
     ("ann", "ann@users.noreply.localhost")),
    ("05-email-user-name", Account(), {}, "ann@example.org", NOREPLY,
     ("ann@example.org", "ann-example.org@users.noreply.localhost")),
    ("06-no-default-email", Account(), None, "ann", "", ("ann", None)),
    ("07-operator-domain", Account(name="Ann"), None, "ann o'neil", "{username}@dl.example.org",
     ("Ann", "ann-o'neil@dl.example.org")),
    ("08-hostile-claims", Account(), {"name": "A\n[core]", "email": "x"}, "ann", NOREPLY,
     ("ann", "ann@users.noreply.localhost")),
    ("09-no-user-name", Account(), None, None, NOREPLY, (None, None)),
]  # fmt: skip


@pytest.mark.parametrize(
    "account, oauth_user, username, default_email, identity",
    [i[1:] for i in IDENTITIES],
    ids=[i[0] for i in IDENTITIES],
)
def test_the_identity_falls_back_to_the_hub_user_name_and_a_default_address(
    account, oauth_user, username, default_email, identity
):
    settings, _ = resolve(choice(), account, oauth_user, username=username,
                          default_email=default_email)  # fmt: skip
    assert (settings.name, settings.email) == identity


@pytest.mark.parametrize(
    "template, username, address",
    [
        (NOREPLY, "ann", "ann@users.noreply.localhost"),
        (NOREPLY, "Ann Marie <x>", "Ann-Marie--x-@users.noreply.localhost"),
        (NOREPLY, "a" * 80, "a" * 64 + "@users.noreply.localhost"),
        ("noreply@example.org", "ann", "noreply@example.org"),
        (NOREPLY, "", None),
        ("", "ann", None),
        ("{username}", "ann", None),  # no domain: no address
    ],
)
def test_default_addresses(template, username, address):
    assert default_address(template, username) == address


def test_the_launch_names_its_own_repository_and_branch():
    settings, _ = resolve(choice(repository=OTHER), ACCOUNT, None)
    assert (settings.repository, settings.branch) == (OTHER, None)  # not the default's branch
    settings, _ = resolve(choice(repository=OTHER, branch="week-2"), ACCOUNT, None)
    assert (settings.repository, settings.branch) == (OTHER, "week-2")
    settings, _ = resolve(choice(branch="hotfix"), ACCOUNT, None)
    assert (settings.repository, settings.branch) == (DEFAULT, "hotfix")
    settings, _ = resolve(choice(repository=DEFAULT), ACCOUNT, None)  # named again
    assert (settings.repository, settings.branch) == (DEFAULT, "dev")
    assert resolve(choice(branch="hotfix"), Account(), None)[0].branch is None


def test_the_token_goes_only_to_the_default_repositorys_host_or_the_operators():
    # a link naming another host does not add it: the token stays with the default's host
    settings, _ = resolve(choice(repository=OTHER), ACCOUNT, None)
    assert settings.credential_hosts == ("git.example.org",) and settings.token == TOKEN
    settings, _ = resolve(choice(), ACCOUNT, None, hosts=("gitlab.example.org",))
    assert settings.credential_hosts == ("gitlab.example.org",)
    settings, notes = resolve(choice(), Account(token=TOKEN), None)
    assert settings.token is None and settings.credential_hosts == ()
    assert notes == ["a token is stored but no host may receive it: not delivered"]
    settings, _ = resolve(choice(), ACCOUNT, None, hosts=())
    assert settings.token is None


def test_a_stored_repository_no_longer_allowed_is_left_out():
    ssh = Account(repository="ssh://git@git.example.org/stats/survey.git", branch="dev")
    settings, notes = resolve(choice(), ssh, None)
    assert settings.repository is None and settings.branch is None
    assert notes == ["the default repository of My account is not allowed here: left out"]
    settings, _ = resolve(choice(), ssh, None, schemes=("https", "ssh"))
    assert settings.repository == ssh.repository


@pytest.mark.parametrize(
    "url, host",
    [
        ("https://git.example.org/a.git", "git.example.org"),
        ("https://Git.Example.org:443/a.git", "git.example.org"),
        ("https://git.example.org:8443/a.git", "git.example.org:8443"),
        ("ssh://git@git.example.org/a.git", None),
        ("https://[::1]:8443/a.git", None),
    ],
)
def test_credential_hosts_are_as_git_names_them(url, host):
    assert credential_host(url) == host


# -- what lands where -------------------------------------------------------------------
def test_the_git_configuration_file():
    settings = GitSettings('Ann "the \\ stat"', "ann@example.org", DEFAULT, None, TOKEN,
                           ("git.example.org", "127.0.0.1:8443"))  # fmt: skip
    assert git_config(settings, username="oauth2") == (
        "# Written by Onyxia Hub for this server, read through GIT_CONFIG_SYSTEM (docs/git.md).\n"
        "# Your ~/.gitconfig and each repository's own settings take precedence over it.\n"
        "[include]\n"
        '\tpath = "/etc/gitconfig"\n'
        "[user]\n"
        '\tname = "Ann \\"the \\\\ stat\\""\n'
        '\temail = "ann@example.org"\n'
        '[credential "https://git.example.org"]\n'
        '\thelper = "onyxia --host=git.example.org"\n'
        '\tusername = "oauth2"\n'
        '[credential "https://127.0.0.1:8443"]\n'
        '\thelper = "onyxia --host=127.0.0.1:8443"\n'
        '\tusername = "oauth2"\n'
    )
    assert TOKEN not in git_config(settings)
    assert "credential" not in git_config(GitSettings("Ann", credential_hosts=("h",)))
    with pytest.raises(ValueError, match="control characters"):
        git_config(GitSettings("Ann\n[core]"))


def test_the_contribution_onyxia_variables_and_secret_files():
    settings = GitSettings("Ann", "ann@example.org", DEFAULT, "dev", TOKEN, ("git.example.org",))
    made = contribution(settings, pull_timeout=120)
    assert dict(made.environment) == {
        "GIT_USER_NAME": "Ann",
        "GIT_USER_MAIL": "ann@example.org",
        "GIT_REPOSITORY": DEFAULT,
        "GIT_BRANCH": "dev",
        "ONYXIA_GIT_ALLOW_PROTOCOL": "https",
        "ONYXIA_GIT_PULL_TIMEOUT": "120",
    }
    assert dict(made.secret_environment) == {}
    assert made.repository == Repository(DEFAULT, "dev")
    files = {f.path: f for f in made.files}
    assert set(files) == {"git/config", "git/token"}
    assert all(f.secret and f.mode == 0o600 for f in files.values())
    assert files["git/token"].content == TOKEN
    scanner = SecretScanner({"token": TOKEN})
    scanner.assert_clean(
        scanner.scan_objects("environment", dict(made.environment))
        + scanner.scan_text("git/config", files["git/config"].content)
    )
    compatible = contribution(settings, token_variable=True)
    assert dict(compatible.secret_environment) == {"GIT_PERSONAL_ACCESS_TOKEN": TOKEN}
    assert contribution(GitSettings()) == type(made)()  # nothing known: nothing at all
    identity_only = contribution(GitSettings("Ann"))
    assert [f.path for f in identity_only.files] == ["git/config"]
    assert identity_only.repository is None and "GIT_REPOSITORY" not in identity_only.environment


def test_a_launchs_directory_goes_with_its_own_repository_only():
    settings, _ = resolve(choice(repository=OTHER, repository_dir="courses/intro"), ACCOUNT, None)
    assert (settings.repository, settings.target) == (OTHER, "courses/intro")
    assert resolve(choice(repository=OTHER), ACCOUNT, None)[0].target is None
    # a Choice made without choices.check (which refuses it): the default repository keeps
    # its place all the same
    stray = Choice("jupyter-python", "2026.08", 1.0, 2**30, repository_dir="courses/intro")
    settings, _ = resolve(stray, ACCOUNT, None)
    assert (settings.repository, settings.target) == (DEFAULT, None)


def test_the_contribution_names_the_target_and_the_report_url():
    report = "https://hub.example.org/services/courses/api/pull-status"
    settings = GitSettings("Ann", "ann@example.org", OTHER, "week-2", None, (), "courses/intro")
    made = contribution(settings, pull_timeout=120, report_url=report)
    assert dict(made.environment) == {
        "GIT_USER_NAME": "Ann",
        "GIT_USER_MAIL": "ann@example.org",
        "GIT_REPOSITORY": OTHER,
        "GIT_BRANCH": "week-2",
        "ONYXIA_GIT_ALLOW_PROTOCOL": "https",
        "ONYXIA_GIT_PULL_TIMEOUT": "120",
        "ONYXIA_GIT_TARGET": "courses/intro",
        "ONYXIA_GIT_REPORT_URL": report,
    }
    assert made.repository == Repository(OTHER, "week-2", "courses/intro")
    # no repository, nothing to pull: neither variable
    identity_only = contribution(GitSettings("Ann"), report_url=report)
    assert dict(identity_only.environment) == {"GIT_USER_NAME": "Ann"}
    default_place = contribution(GitSettings("Ann", repository=DEFAULT))
    assert "ONYXIA_GIT_TARGET" not in default_place.environment
    assert "ONYXIA_GIT_REPORT_URL" not in default_place.environment
    assert default_place.repository == Repository(DEFAULT)


# -- the operator's git settings (GitProvider.git_config) --------------------------------
def test_the_operators_settings_come_between_etc_gitconfig_and_the_providers_own():
    operator = check_config(
        {
            "http.sslCAInfo": "/etc/ssl/certs/private-ca.pem",
            "http.https://git.example.org/.proxy": "",
            "HTTP.lowSpeedTime": 30,
            "url.https://mirror.example.org/github/.insteadOf": "https://github.com/",
            "http.https://git.example.org/.extraHeader": ["X-A: 1", 'X-B: "2" \\ 3'],
            "fetch.prune": True,
            "alias.lg": "log --graph --oneline",
        }
    )
    assert git_config(GitSettings("Ann", "ann@example.org"), operator=operator) == (
        "# Written by Onyxia Hub for this server, read through GIT_CONFIG_SYSTEM (docs/git.md).\n"
        "# Your ~/.gitconfig and each repository's own settings take precedence over it.\n"
        "[include]\n"
        '\tpath = "/etc/gitconfig"\n'
        "# The operator's settings (c.GitProvider.git_config).\n"
        "[http]\n"
        '\tsslCAInfo = "/etc/ssl/certs/private-ca.pem"\n'
        '\tlowSpeedTime = "30"\n'
        '[http "https://git.example.org/"]\n'
        '\tproxy = ""\n'
        '\textraHeader = "X-A: 1"\n'
        '\textraHeader = "X-B: \\"2\\" \\\\ 3"\n'
        '[url "https://mirror.example.org/github/"]\n'
        '\tinsteadOf = "https://github.com/"\n'
        "[fetch]\n"
        '\tprune = "true"\n'
        "[alias]\n"
        '\tlg = "log --graph --oneline"\n'
        "[user]\n"
        '\tname = "Ann"\n'
        '\temail = "ann@example.org"\n'
    )
    # git reads them back as written (values, subsections, several values of one key)
    listed = subprocess.run(
        ["git", "config", "--no-includes", "--file", "-", "--list"],
        input=git_config(GitSettings(), operator=operator),
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert listed[1:] == [
        "http.sslcainfo=/etc/ssl/certs/private-ca.pem",
        "http.lowspeedtime=30",
        "http.https://git.example.org/.proxy=",
        "http.https://git.example.org/.extraheader=X-A: 1",
        'http.https://git.example.org/.extraheader=X-B: "2" \\ 3',
        "url.https://mirror.example.org/github/.insteadof=https://github.com/",
        "fetch.prune=true",
        "alias.lg=log --graph --oneline",
    ]
    # settings alone make a configuration file, for users with no identity at all
    made = contribution(GitSettings(), operator=operator)
    assert [f.path for f in made.files] == ["git/config"] and not made.environment


# (id, settings, message): each refused before the hub starts, the key named
REFUSED_SETTINGS = [
    ("00-user", {"user.name": "Someone"}, "user.name may not be set: the provider writes"),
    ("01-user-case", {"User.Email": "x@example.org"}, "User.Email may not be set"),
    ("02-credential", {"credential.helper": "store"}, "token goes to"),
    ("03-credential-url", {"credential.https://git.example.org.helper": "x"},
     "credential.https://git.example.org.helper may not be set"),
    ("04-include", {"include.path": "/tmp/x"}, "files nobody checked"),
    ("05-include-if", {"includeIf.gitdir:/home/.path": "/tmp/x"}, "files nobody checked"),
    ("06-ssh-command", {"core.sshCommand": "ssh -o ProxyCommand=x"}, "a program or hooks"),
    ("07-fsmonitor", {"core.fsmonitor": "/tmp/x"}, "a program or hooks"),
    ("08-hooks", {"core.hooksPath": "/tmp/hooks"}, "a program or hooks"),
    ("09-pager", {"core.pager": "less"}, "a program or hooks"),
    ("10-textconv", {"diff.pdf.textconv": "pdftotext"}, "a program or hooks"),
    ("11-filter", {"filter.lfs.smudge": "git-lfs smudge"}, "a program or hooks"),
    ("12-gpg-ssh", {"gpg.ssh.defaultKeyCommand": "x"}, "a program or hooks"),
    ("13-template", {"init.templateDir": "/tmp/t"}, "a program or hooks"),
    ("14-upload-pack", {"uploadpack.packObjectsHook": "x"}, "a program or hooks"),
    ("15-shell-alias", {"alias.x": " !rm -rf ~"}, "an alias starting with ! runs"),
    ("16-protocol", {"protocol.ext.allow": "always"}, "git's defences"),
    ("17-safe", {"safe.directory": "*"}, "git's defences"),
    ("18-ssl-verify", {"http.sslVerify": False}, "give the server's CA with http.sslCAInfo"),
    ("19-ssl-verify-url", {"http.https://git.example.org/.sslVerify": "false"},
     "certificate checks off"),
    ("20-remote", {"remote.origin.pushurl": "https://elsewhere.example.net/x.git"},
     "each repository's own configuration"),
    ("21-submodule", {"submodule.recurse": True}, "each repository's own configuration"),
    ("22-trace", {"trace2.eventTarget": "/tmp/trace"}, "traces record"),
    ("30-no-name", {"http": "x"}, "'http' is not a git configuration key"),
    ("31-bad-section", {"ht tp.proxy": "x"}, "is not a git configuration key"),
    ("32-bad-name", {"http.1proxy": "x"}, "is not a git configuration key"),
    ("33-empty-subsection", {"http..proxy": "x"}, "is not a git configuration key"),
    ("34-newline-value", {"http.proxy": "x\n[core]\n\tsshCommand = y"}, "control characters"),
    ("35-nul-value", {"http.proxy": "x\0"}, "control characters"),
    ("36-newline-subsection", {"http.https://x\n[core]/.proxy": "y"}, "control characters"),
    ("37-twice", {"http.proxy": "a", "HTTP.Proxy": "b"}, "HTTP.Proxy is given twice"),
    ("38-value-type", {"http.proxy": 1.5}, "a string, a boolean or an integer"),
    ("39-empty-list", {"http.extraHeader": []}, "an empty list sets nothing"),
]  # fmt: skip


@pytest.mark.parametrize(
    "settings, message", [r[1:] for r in REFUSED_SETTINGS], ids=[r[0] for r in REFUSED_SETTINGS]
)
def test_refused_git_settings(settings, message):
    with pytest.raises(ValueError, match=None) as refused:
        check_config(settings)
    assert message in str(refused.value)
    with pytest.raises(TraitError, match="GitProvider.git_config: "):
        GitProvider(git_config=settings)


def test_every_refused_pattern_is_refused_and_documented():
    """Each pattern of REFUSED_CONFIG refuses a key of its form, and docs/git.md lists it."""
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "git.md").read_text().lower()
    for _, patterns in REFUSED_CONFIG:
        for pattern in patterns:
            key = pattern.replace("<sub>", "https://x/").replace("*", "x")
            with pytest.raises(ValueError, match="may not be set"):
                check_config({key: "v"})
            assert f"`{pattern.replace('<sub>', '*')}`" in docs, pattern


# -- a real commit with nothing but what the provider delivers --------------------------------
def test_git_commit_works_with_the_delivered_identity_alone(tmp_path):
    """No My account settings, no auth_state: `git commit` signs with the defaults."""
    import asyncio

    made = asyncio.run(provider(db_url="").contribute(request("ann.o", None)))
    config = tmp_path / "secrets" / "git" / "config"
    config.parent.mkdir(parents=True)
    config.write_text({f.path: f.content for f in made.files}["git/config"])
    (tmp_path / "home").mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),  # empty: no ~/.gitconfig
        "LANG": "C",
        "GIT_CONFIG_SYSTEM": str(config),  # as onyxia_git.server sets it; no NOSYSTEM
        # no guessing from the account and host names: the identity must be configured
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "user.useConfigOnly",
        "GIT_CONFIG_VALUE_0": "true",
    }
    work = tmp_path / "work"

    def git(*args, **changes):
        return subprocess.run(["git", *args], cwd=work, env={**env, **changes},
                              capture_output=True, text=True, timeout=30)  # fmt: skip

    work.mkdir()
    assert git("init", "--quiet").returncode == 0
    (work / "notes.md").write_text("notes\n")
    git("add", "notes.md")
    refused = git("commit", "--quiet", "-m", "Notes", GIT_CONFIG_NOSYSTEM="1")
    assert refused.returncode != 0 and "auto-detection is disabled" in refused.stderr
    committed = git("commit", "--quiet", "-m", "Notes")
    assert committed.returncode == 0, committed.stderr
    signed = git("log", "-1", "--format=%an <%ae>|%cn <%ce>").stdout.strip()
    assert signed == "ann.o <ann.o@users.noreply.localhost>|ann.o <ann.o@users.noreply.localhost>"


# -- the provider, with a real store -------------------------------------------------------
@pytest.fixture
def portal_store(tmp_path):
    """A portal store as the portal makes it: migrated SQLite, a key file (0600)."""
    key = secrets.token_hex(32)
    key_file = tmp_path / "portal_key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    db_url = f"sqlite:///{tmp_path / 'portal.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    store = Store(engine, FieldCrypto([parse_key(key)]))
    return SimpleNamespace(db_url=db_url, key_file=str(key_file), store=store)


def request(username="ann", auth_state=None, **options):
    return PlanRequest(username, "", frozenset(), SERVICE, choice(**options), auth_state)


def provider(portal_store=None, **settings) -> GitProvider:
    """A GitProvider reading portal_store (None: the defaults), with settings."""
    config = Config()
    if portal_store is not None:
        config.GitProvider.db_url = portal_store.db_url
        config.GitProvider.key_file = portal_store.key_file
    for key, value in settings.items():
        config.GitProvider[key] = value
    return GitProvider(config=config)


async def test_the_provider_reads_my_account_and_decrypts_the_token(portal_store):
    portal_store.store.save_account(
        "ann", git_name="Ann", git_email="ann@example.org", git_repository=DEFAULT,
        git_branch="dev", git_token=TOKEN,
    )  # fmt: skip
    made = await provider(portal_store).contribute(request(auth_state={"oauth_user": OIDC}))
    assert made.environment["GIT_USER_NAME"] == "Ann"
    assert made.environment["GIT_REPOSITORY"] == DEFAULT
    assert {f.path: f.content for f in made.files}["git/token"] == TOKEN
    other = await provider(portal_store).contribute(request("bob", {"oauth_user": OIDC}))
    assert other.environment["GIT_USER_NAME"] == "Ann from Keycloak"  # bob has no settings
    assert "git/token" not in [f.path for f in other.files]


async def test_the_store_defaults_to_the_portal_services(portal_store, monkeypatch):
    portal_store.store.save_account("ann", git_name="Ann", git_token=TOKEN,
                                    git_repository=DEFAULT)  # fmt: skip
    config = Config()
    config.JupyterHub.services = [
        {"name": "other", "environment": {"ONYXIA_PORTAL_DB_URL": "sqlite:////nonexistent"}},
        {
            "name": "portal",
            "environment": {
                "ONYXIA_PORTAL_DB_URL": portal_store.db_url,
                "ONYXIA_PORTAL_KEY_FILE": portal_store.key_file,
            },
        },
    ]
    monkeypatch.delenv("ONYXIA_PORTAL_DB_URL", raising=False)
    monkeypatch.delenv("ONYXIA_PORTAL_CRYPT_KEY", raising=False)
    git = GitProvider(config=config)
    assert (git.db_url, git.key_file) == (portal_store.db_url, portal_store.key_file)
    made = await git.contribute(request())
    assert {f.path: f.content for f in made.files}["git/token"] == TOKEN
    assert GitProvider(config=Config()).db_url is None  # no portal, no variable: no store


async def test_launches_go_on_when_the_store_cannot_be_read(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    broken = provider(SimpleNamespace(db_url=f"sqlite:///{tmp_path}/empty.sqlite",
                                      key_file=None))  # fmt: skip
    made = await broken.contribute(request(auth_state={"oauth_user": OIDC}))
    assert made.environment["GIT_USER_MAIL"] == "ann@idp.example.org"
    assert "Git settings of ann not read" in caplog.text
    assert "Git tokens will not be delivered" in caplog.text  # and no key: said once


async def test_without_a_key_the_token_stays_in_the_store(portal_store, caplog):
    portal_store.store.save_account("ann", git_name="Ann", git_token=TOKEN,
                                    git_repository=DEFAULT)  # fmt: skip
    keyless = provider(SimpleNamespace(db_url=portal_store.db_url, key_file=None))
    made = await keyless.contribute(request())
    assert made.environment["GIT_USER_NAME"] == "Ann"
    assert "git/token" not in [f.path for f in made.files]
    assert "The git token of ann cannot be used" in caplog.text


async def test_options_change_what_is_given(portal_store):
    portal_store.store.save_account("ann", git_token=TOKEN, git_repository=DEFAULT)
    made = await provider(
        portal_store,
        personal_access_token_variable=True,
        credential_hosts=["GitLab.example.org:443", "127.0.0.1:8443"],
        credential_username="{username}",
        allowed_schemes=["https", "ssh"],
        pull_timeout=30,
    ).contribute(request())
    assert made.secret_environment == {"GIT_PERSONAL_ACCESS_TOKEN": TOKEN}
    config = {f.path: f.content for f in made.files}["git/config"]
    assert '[credential "https://gitlab.example.org"]' in config
    assert '[credential "https://127.0.0.1:8443"]' in config
    assert '[credential "https://git.example.org"]' not in config
    assert 'username = "ann"' in config
    assert made.environment["ONYXIA_GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert made.environment["ONYXIA_GIT_PULL_TIMEOUT"] == "30"
    # without the identity provider's claims, the defaults: the hub user name, default_email
    defaults = await provider(portal_store, use_oidc_identity=False).contribute(
        request("nobody", {"oauth_user": OIDC})
    )
    assert dict(defaults.environment) == {
        "GIT_USER_NAME": "nobody",
        "GIT_USER_MAIL": "nobody@users.noreply.localhost",
    }
    own_domain = await provider(
        portal_store, default_email="{username}@users.noreply.dl.example.org"
    ).contribute(request("nobody"))
    assert own_domain.environment["GIT_USER_MAIL"] == "nobody@users.noreply.dl.example.org"
    operator = await provider(
        portal_store, git_config={"http.sslCAInfo": "/etc/ssl/certs/private-ca.pem"}
    ).contribute(request("nobody"))
    config = {f.path: f.content for f in operator.files}["git/config"]
    assert '[http]\n\tsslCAInfo = "/etc/ssl/certs/private-ca.pem"\n[user]\n' in config


async def test_a_course_launch_gets_its_directory_and_the_report_url(portal_store):
    portal_store.store.save_account("ann", git_repository=DEFAULT)
    report = "http://127.0.0.1:8000/services/courses/api/pull-status"
    git = provider(portal_store, pull_report_url=report)
    course = await git.contribute(request(repository=OTHER, repository_dir="courses/intro"))
    assert course.environment["GIT_REPOSITORY"] == OTHER
    assert course.environment["ONYXIA_GIT_TARGET"] == "courses/intro"
    assert course.environment["ONYXIA_GIT_REPORT_URL"] == report
    assert course.repository == Repository(OTHER, None, "courses/intro")
    default = await git.contribute(request())  # the default repository, in its usual place
    assert default.environment["GIT_REPOSITORY"] == DEFAULT
    assert "ONYXIA_GIT_TARGET" not in default.environment
    assert default.environment["ONYXIA_GIT_REPORT_URL"] == report
    assert GitProvider().pull_report_url == ""
    unset = await provider(portal_store).contribute(request())
    assert "ONYXIA_GIT_REPORT_URL" not in unset.environment


@pytest.mark.parametrize(
    "option, value",
    [
        ("credential_hosts", ["https://git.example.org"]),
        ("credential_hosts", ["git.example.org/path"]),
        ("credential_hosts", ["h:70000"]),
        ("allowed_schemes", ["ssh"]),
        ("allowed_schemes", ["https", "file"]),
        ("default_email", "{username}"),
        ("default_email", "{username}@localhost"),  # one label: not an address here
        ("default_email", "{username}@example.org\n"),
        ("git_config", {"user.name": "x"}),
        ("git_config", {"http.sslVerify": False}),
        ("pull_report_url", "ftp://hub.example.org/services/courses/api/pull-status"),
        ("pull_report_url", "hub.example.org/services/courses/api/pull-status"),
        ("pull_report_url", "https://ann:s3cr3t@hub.example.org/pull-status"),
        ("pull_report_url", "https://hub.example.org/pull-status?token=x"),
        ("pull_report_url", "https://hub.example.org/pull-status#x"),
        ("pull_report_url", "https://hub.example.org/pull status"),
    ],
)
def test_bad_options_are_refused_at_start(option, value):
    with pytest.raises(TraitError, match=option):
        setattr(GitProvider(), option, value)


def test_a_refused_report_url_says_why_without_repeating_it():
    with pytest.raises(TraitError) as error:
        GitProvider(pull_report_url="https://ann:s3cr3t@hub.example.org/pull-status")
    assert str(error.value) == (
        "GitProvider.pull_report_url: the URL must not contain a user name or password: "
        "servers send their own token, as in "
        "https://hub.example.org/services/courses/api/pull-status"
    )
    report = "https://hub.example.org/services/courses/api/pull-status"
    assert GitProvider(pull_report_url=report).pull_report_url == report


def test_the_provider_is_not_required_by_default():
    assert GitProvider().required is False


# -- on Kubernetes: the pod and its Secret ----------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr("kubespawner.spawner.load_config", lambda **kwargs: None)
    monkeypatch.setattr("kubespawner.spawner.shared_client", lambda *args, **kwargs: None)


async def test_in_a_pod_the_token_is_in_the_secret_only(offline, portal_store, caplog):
    from tests.helpers.k8s_double import make_spawner
    from tests.test_kube_objects import as_json, assert_valid

    caplog.set_level(logging.DEBUG)
    portal_store.store.save_account("alice", git_name="Alice", git_token=TOKEN,
                                    git_repository=DEFAULT)  # fmt: skip
    config = Config()
    config.GitProvider.db_url = portal_store.db_url
    config.GitProvider.key_file = portal_store.key_file
    config.GitProvider.personal_access_token_variable = True
    spawner = make_spawner("alice", namespace="onyxia", provider_classes=[GitProvider],
                           config=config)  # fmt: skip
    spawner.user_options = {"service": "jupyter-python"}
    try:
        await spawner.load_user_options()
        pod = as_json(await spawner.get_pod_manifest())
        secret = as_json(spawner.get_server_secret_manifest("9d1f7e2a-0000-4000-8000-00000000c0de"))
    finally:
        spawner.release_plan()
    assert_valid(pod)
    assert_valid(secret)
    scanner = SecretScanner({"git token": TOKEN})
    scanner.assert_clean(scanner.scan_objects("pod", pod) + scanner.scan_text("log", caplog.text))
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["GIT_REPOSITORY"] == {"name": "GIT_REPOSITORY", "value": DEFAULT}
    assert env["GIT_PERSONAL_ACCESS_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == (
        "GIT_PERSONAL_ACCESS_TOKEN"
    )
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    token_file = "/var/run/onyxia-hub/secrets/git/token"
    stored = secret["stringData"]
    assert stored[mounts[token_file]["subPath"]] == TOKEN
    assert stored["GIT_PERSONAL_ACCESS_TOKEN"] == TOKEN
    assert "/var/run/onyxia-hub/secrets/git/config" in mounts
