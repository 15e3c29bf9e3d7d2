"""The portal's parts without a hub: field checks, encryption of secret fields, the store.

Field checks are tables: each row a value and the field-naming message (or none). Branch
names are also checked against git itself (`git check-ref-format --branch`), so that our
validator and git never disagree on a name. The store runs on a real SQLite file.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess

import pytest

from onyxia_hub import fields as validate
from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.db import make_engine
from onyxia_hub.db.crypto import CryptoError, FieldCrypto, keys_from, parse_key, read_key_file
from onyxia_hub.db.portal import upgrade
from onyxia_hub.db.store import MAX_CONFIGURATIONS, UNCHANGED, Store, StoreError
from onyxia_hub.fields import FieldError
from onyxia_hub.portal import views

CATALOG = load_catalog(default_catalog_path())


def refusal(check, value, *args) -> FieldError | None:
    try:
        check(value, *args)
    except FieldError as e:
        return e
    return None


# -- fields ----------------------------------------------------------------------------
# id, checker, value, expected message part (None: accepted)
FIELDS = [
    ("name-ok", validate.check_git_name, "Ann O'Neil", None),
    ("name-empty-unsets", validate.check_git_name, "  ", None),
    ("name-100", validate.check_git_name, "a" * 100, None),
    ("name-101", validate.check_git_name, "a" * 101, "at most 100 characters"),
    ("name-control", validate.check_git_name, "Ann\nEvil: x", "control characters"),
    ("name-angle", validate.check_git_name, "Ann <a@b.org>", "'<' or '>'"),
    ("name-not-text", validate.check_git_name, 42, "must be a string"),
    ("email-ok", validate.check_email, "ann.o+lab@stats.example.fr", None),
    ("email-no-domain", validate.check_email, "ann@localhost", "e-mail address"),
    ("email-space", validate.check_email, "ann o@example.org", "e-mail address"),
    ("email-two-at", validate.check_email, "a@b@example.org", "e-mail address"),
    ("email-255", validate.check_email, "a" * 60 + "@" + "b" * 190 + ".org", "at most 254"),
    ("token-ok", validate.check_token, "ghp_" + "A1b2" * 9, None),
    ("token-space", validate.check_token, "abc def", "without spaces"),
    ("token-newline", validate.check_token, "abc\ndef", "without spaces"),
    ("token-non-ascii", validate.check_token, "abcdé", "printable ASCII"),
    ("token-256", validate.check_token, "a" * 256, "at most 255"),
    ("repo-ok", validate.check_repository, "https://git.example.org/team/repo.git", None),
    ("repo-ipv6", validate.check_repository, "https://[::1]:8443/x.git", None),
    ("repo-http", validate.check_repository, "http://git.example.org/x.git", "https://"),
    ("repo-ssh", validate.check_repository, "git@github.com:a/b.git", "https://"),
    ("repo-creds", validate.check_repository, "https://ann:pw@git.example.org/x", "password"),
    ("repo-user", validate.check_repository, "https://ann@git.example.org/x", "user name"),
    ("repo-no-host", validate.check_repository, "https:///x", "must name a host"),
    ("repo-bad-port", validate.check_repository, "https://h:99999/x", "not a valid URL"),
    ("repo-space", validate.check_repository, "https://h/a b", "spaces"),
    ("repo-fragment", validate.check_repository, "https://h/x#frag", "fragment"),
    ("repo-2049", validate.check_repository, "https://h/" + "x" * 2039, "at most 2048"),
    ("config-ok", validate.check_config_name, "Big PySpark (course)", None),
    ("config-empty", validate.check_config_name, " ", "is required"),
    ("config-65", validate.check_config_name, "x" * 65, "at most 64"),
    ("config-control", validate.check_config_name, "a\tb", "control characters"),
    ("server-default", validate.check_server_name, "", None),
    ("server-ok", validate.check_server_name, "spark-2", None),
    ("server-upper", validate.check_server_name, "Lab", "lowercase"),
    ("server-dashes", validate.check_server_name, "a--b", "without '--'"),
    ("server-31", validate.check_server_name, "a" * 31, "1 to 30"),
    ("server-slash", validate.check_server_name, "a/b", "1 to 30"),
]


@pytest.mark.parametrize(
    "check,value,expected", [f[1:] for f in FIELDS], ids=[f[0] for f in FIELDS]
)
def test_each_field_is_checked_and_named(check, value, expected):
    error = refusal(check, value)
    if expected is None:
        assert error is None, error
    else:
        assert error is not None, f"{value!r} was accepted"
        assert expected in error.message
        assert str(error).startswith(f"{error.field}: ")


def test_a_refused_token_is_never_repeated_in_the_message():
    token = "secret-" + secrets.token_hex(8) + " tail"
    error = refusal(validate.check_token, token)
    assert error.field == "git_token"
    assert token not in str(error) and token.split()[0] not in str(error)


BRANCHES = [
    "main",
    "feature/x",
    "release-1.2",
    "a.b",
    "x@y",
    "ünicode",
    "-bad",
    "a..b",
    "a.lock",
    "a/b.lock/c",
    "a/.hidden",
    ".hidden",
    "a b",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
    "a/",
    "/a",
    "a//b",
    "a.",
    "a@{1}",
    "@",
    "HEAD",
    "a\x7fb",
]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("name", BRANCHES)
def test_branch_names_are_checked_as_git_checks_them(name):
    git = subprocess.run(
        ["git", "check-ref-format", "--branch", name], capture_output=True, cwd="/"
    )
    ours = validate.branch_problem(name)
    assert (git.returncode == 0) == (ours is None), (name, git.stderr, ours)


@pytest.mark.parametrize(
    "options,expected",
    [
        ({"service": "jupyter-python", "cpu": "2"}, None),
        ({"service": "jupyter-python", "cpu": "999"}, "cpu: 999 cores is outside"),
        ({"service": "jupyter-python", "image": "evil:latest"}, "Unknown option 'image'"),
        ({"service": "no-such-service"}, "There is no service"),
        ({"service": "pytorch-gpu", "gpus": 1}, "There is no service"),  # gpu-users only
        ("not an object", "must be an object"),
    ],
)
def test_launch_options_are_checked_against_the_catalog_and_groups(options, expected):
    error = refusal(validate.check_options, options, CATALOG, frozenset())
    if expected is None:
        assert error is None
    else:
        assert error.field == "user_options" and expected in error.message


def test_group_members_may_save_what_their_groups_allow():
    choice = validate.check_options({"service": "pytorch-gpu"}, CATALOG, {"gpu-users"})
    assert choice.service == "pytorch-gpu" and choice.gpus >= 1


# -- encryption -----------------------------------------------------------------------
def test_keys_hex_or_fernet_from_file_and_environment(tmp_path):
    hex_key = secrets.token_hex(32)
    fernet_key = parse_key(hex_key).decode()
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-05\n{hex_key}\n\n{fernet_key}\n")
    path.chmod(0o600)
    assert len(read_key_file(path)) == 2
    env = {"ONYXIA_PORTAL_CRYPT_KEY": secrets.token_hex(32)}
    assert len(keys_from(str(path), env)) == 3
    path.chmod(0o644)
    with pytest.raises(CryptoError, match="readable by other accounts"):
        read_key_file(path)
    with pytest.raises(CryptoError, match="32 bytes"):
        parse_key("too-short")
    with pytest.raises(CryptoError, match="no encryption key"):
        keys_from(None, {})


def test_ciphertext_is_bound_to_its_user_and_rotates():
    old, new = parse_key(secrets.token_hex(32)), parse_key(secrets.token_hex(32))
    crypto = FieldCrypto([old])
    sealed = crypto.encrypt("ann", "ghp_token_value")
    assert "ghp_token_value" not in sealed
    assert crypto.decrypt("ann", sealed) == "ghp_token_value"
    with pytest.raises(CryptoError, match="another user"):
        crypto.decrypt("ben", sealed)  # copied onto ben's row: refused
    rotating = FieldCrypto([new, old])
    assert rotating.needs_rotation(sealed)
    rotated = rotating.rotate(sealed)
    assert not rotating.needs_rotation(rotated)
    assert FieldCrypto([new]).decrypt("ann", rotated) == "ghp_token_value"
    with pytest.raises(CryptoError, match="cannot be decrypted"):
        FieldCrypto([new]).decrypt("ann", sealed)


# -- the store -------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'portal.sqlite'}")
    upgrade(engine)
    key = parse_key(secrets.token_hex(32))
    store = Store(engine, FieldCrypto([key]))
    store.key = key
    yield store
    engine.dispose()


def test_account_settings_and_a_write_only_token(store, tmp_path):
    token = "glpat-" + secrets.token_urlsafe(20)
    store.save_account("ann", git_name="Ann", git_email="ann@example.org", git_token=token)
    account = store.account("ann")
    assert (account.git_name, account.token_set, account.token_hint) == (
        "Ann",
        True,
        "…" + token[-4:],
    )
    assert token not in repr(account)
    assert store.git_token("ann") == token
    assert token.encode() not in (tmp_path / "portal.sqlite").read_bytes()
    # other fields change, the token stays; None clears
    store.save_account("ann", git_branch="main")
    assert store.git_token("ann") == token and store.account("ann").git_branch == "main"
    store.save_account("ann", git_token=None)
    assert not store.account("ann").token_set and store.git_token("ann") is None
    assert store.account("ben") == type(account)()  # nothing for ben
    assert UNCHANGED is not None


def test_unreadable_token_is_reported_not_fatal(store):
    store.save_account("ann", git_token="ghp_abcdefgh")
    other = Store(store.engine, FieldCrypto([parse_key(secrets.token_hex(32))]))
    account = other.account("ann")
    assert account.token_set and account.token_unreadable and account.token_hint is None


def test_configurations_belong_to_their_owner(store):
    options = {"service": "jupyter-python", "cpu": "1", "memory": "2Gi"}
    saved = store.add_configuration("ann", "small", options, "lab")
    assert store.configuration("ann", saved.id).user_options == options
    # ben can neither read, rename nor delete ann's configuration, even knowing its id
    assert store.configuration("ben", saved.id) is None
    assert store.update_configuration("ben", saved.id, name="mine") is None
    assert store.delete_configuration("ben", saved.id) is False
    assert store.configurations("ben") == []
    with pytest.raises(StoreError, match="already have a configuration named 'small'"):
        store.add_configuration("ann", "small", options)
    store.add_configuration("ben", "small", options)  # the same name for someone else
    store.add_configuration("ann", "big", options)
    with pytest.raises(StoreError) as refused:
        store.update_configuration("ann", saved.id, name="big")
    assert refused.value.field == "name"
    renamed = store.update_configuration("ann", saved.id, name="tiny", server_name="")
    assert (renamed.name, renamed.server_name) == ("tiny", "")
    assert [c.name for c in store.configurations("ann")] == ["big", "tiny"]
    assert store.delete_configuration("ann", saved.id) is True


def test_at_most_so_many_configurations(store):
    for i in range(MAX_CONFIGURATIONS):
        store.add_configuration("ann", f"c{i}", {"service": "jupyter-python"})
    with pytest.raises(StoreError, match="the most there may be"):
        store.add_configuration("ann", "one more", {"service": "jupyter-python"})


def test_reencrypt_moves_every_token_to_the_first_key(store):
    store.save_account("ann", git_token="ghp_first_user_token")
    new = parse_key(secrets.token_hex(32))
    rotating = Store(store.engine, FieldCrypto([new, store.key]))
    assert rotating.reencrypt() == 1
    assert rotating.reencrypt() == 0
    assert Store(store.engine, FieldCrypto([new])).git_token("ann") == "ghp_first_user_token"


# -- what pages show ------------------------------------------------------------------
def test_share_links_only_prefill_the_form():
    options = {
        "profile": "jupyter-r",
        "service": "jupyter-r",
        "version": "4.4",
        "cpu": "2",
        "memory": "4Gi",
        "gpus": 0,
    }
    assert views.share_path("/hub/", options) == (
        "/hub/spawn?opt-service=jupyter-r&opt-version=4.4&opt-cpu=2&opt-memory=4Gi&opt-gpus=0"
    )
    assert views.share_path("/hub/", options, "ann b", "lab").startswith(
        "/hub/spawn/ann%20b/lab?opt-service=jupyter-r"
    )


def test_server_models_become_rows_and_quota_usage():
    servers = {
        "": {
            "name": "",
            "ready": True,
            "pending": None,
            "stopped": False,
            "url": "/user/ann/",
            "started": "2026-05-20T10:00:00.000000Z",
            "last_activity": None,
            "user_options": {"service": "jupyter-python", "cpu": "2", "memory": "4Gi", "gpus": 0},
        },
        "gpu": {
            "name": "gpu",
            "ready": False,
            "pending": "spawn",
            "stopped": False,
            "url": "/user/ann/gpu/",
            "user_options": {
                "service": "pytorch-gpu",
                "cpu": "4",
                "memory": "16Gi",
                "gpus": 1,
                "gpu_type": "a100",
            },
        },
        "old": {
            "name": "old",
            "ready": False,
            "pending": None,
            "stopped": True,
            "url": "",
            "user_options": {"service": "jupyter-r", "cpu": "8", "memory": "8Gi"},
        },
        "never": {
            "name": "never",
            "ready": False,
            "pending": None,
            "stopped": True,
            "user_options": {},
        },
    }
    rows = views.server_views("ann", servers, CATALOG)
    assert [(r.name, r.status) for r in rows] == [
        ("", "ready"),
        ("gpu", "starting"),
        ("old", "stopped"),
    ]
    assert (rows[0].service_name, rows[0].cpu, rows[0].memory) == ("Jupyter Python", "2", "4 GiB")
    assert (rows[1].gpus, rows[1].gpu_type) == (1, "a100")
    assert views.when(rows[0].started) == "2026-05-20 10:00 UTC"
    used = views.usage(rows)  # stopped servers hold nothing
    assert (used.servers, used.cpu, used.memory, used.gpus) == (2, 6.0, 20 * 2**30, 1)
    gauges = {g["label"]: g for g in views.quota(rows, CATALOG, frozenset())}
    assert gauges["CPU"]["text"] == "6 of 8 cores" and gauges["CPU"]["level"] == "warning"
    assert gauges["Memory"]["level"] == "alert"  # 20 GiB of 16 GiB
    assert [r.user for r in views.admin_filter(rows, gpus="yes")] == ["ann"]
    assert views.admin_filter(rows, user="BE") == []
    assert [r.name for r in views.admin_filter(rows, service="jupyter-python")] == [""]
