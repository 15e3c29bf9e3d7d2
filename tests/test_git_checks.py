"""Repository URLs and branches: refused with a clear message before any git command runs.

One table of hostile URLs (tests/helpers/hostile.py, `HOSTILE_REPOSITORIES`: other
transports, options in disguise, credentials, control characters, malformed URLs)
through every layer that meets one:

- the hub (`choices.check`, which every launch path goes through: form, link, REST API,
  stored options; tests/test_launch.py sends a sample of it through each path);
- My account (`portal.validate.check_repository`);
- the server (`onyxia_git.checks`, and `onyxia-git-pull` itself, which must refuse them
  without starting a single process: checked in-process with subprocess patched, and once
  as a real command with a `git` on PATH that records being run).

ssh and scp-style URLs are refused unless an operator allows ssh; those that smuggle an
option through ssh (`-oProxyCommand`) are refused even then. The hub's and the server's
rules are two copies (the server package depends on nothing of the hub's): the tables
check that they agree.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from onyxia_git import checks
from onyxia_git.pull import REFUSED, Reporter, pull

from onyxia_hub import choices, gitvalues
from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.choices import ChoiceError, check
from onyxia_hub.fields import FieldError, check_repository
from tests.helpers.hostile import GOOD_REPOSITORIES, HOSTILE_REPOSITORIES

CATALOG = load_catalog([default_catalog_path()])
SECRETS = ("s3cr3t", "hunter", "ghp_", ":tok@")
HOSTILE_IDS = [c.id for c in HOSTILE_REPOSITORIES]


def test_the_table_is_long_and_its_ids_unique():
    assert len(HOSTILE_REPOSITORIES) >= 30
    assert len(set(HOSTILE_IDS)) == len(HOSTILE_IDS)


# -- the hub ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", HOSTILE_REPOSITORIES, ids=HOSTILE_IDS)
def test_the_hub_refuses_hostile_repositories(case):
    with pytest.raises(ChoiceError) as error:
        check({"repository": case.url}, CATALOG, [])
    message = error.value.message
    assert error.value.status_code == 400
    assert case.message in message, message
    assert message.startswith(("repository:", "The option 'repository'")), message
    # the value is never repeated: it may hold a password, and refusals are logged
    assert not any(s in message for s in SECRETS) and case.url not in message


@pytest.mark.parametrize("url", GOOD_REPOSITORIES)
def test_the_hub_keeps_good_repositories_in_the_canonical_options(url):
    choice = check({"repository": url, "branch": "feature/x"}, CATALOG, [])
    assert (choice.repository, choice.branch) == (url, "feature/x")
    options = choice.as_user_options()
    assert options["repository"] == url and options["branch"] == "feature/x"
    assert check(options, CATALOG, []) == choice  # what the next start reuses
    assert "repository" not in check({}, CATALOG, []).as_user_options()


def test_a_repository_arrives_the_same_from_every_path():
    url = GOOD_REPOSITORIES[0]
    api = {"service": "jupyter-python", "repository": url, "branch": "main"}
    query = {k: [v] for k, v in api.items()}
    form = choices.from_form(
        {"service": ["jupyter-python"], "repository": [url], "branch": ["main"], "_xsrf": ["t"]}
    )
    expected = check(api, CATALOG, [])
    assert check(query, CATALOG, []) == check(form, CATALOG, []) == expected
    empty = choices.from_form({"service": ["jupyter-python"], "repository": [""], "branch": [""]})
    assert check(empty, CATALOG, []).repository is None  # the form's empty fields: none


@pytest.mark.parametrize(
    "branch, words",
    [
        ("--orphan", "must not start with '-'"),
        ("a..b", "must not contain '..'"),
        ("HEAD", "'HEAD' is not a branch name"),
        ("a b", "spaces"),
        ("x\n--upload-pack=y", "control characters"),
        ("@{-1}", "'@{'"),
        ("topic.lock", ".lock"),
        ("refs/../x", "'..'"),
        ("b" * 256, "at most 255"),
        ("b" * 300, "is too long"),
    ],
)
def test_the_hub_refuses_invalid_branches(branch, words):
    with pytest.raises(ChoiceError) as error:
        check({"branch": branch}, CATALOG, [])
    assert words in error.value.message and error.value.status_code == 400


def test_a_branch_or_repository_must_be_text():
    for option in ("repository", "branch"):
        with pytest.raises(ChoiceError, match=f"^{option}:"):
            check({option: 42}, CATALOG, [])


# -- My account -------------------------------------------------------------------------
@pytest.mark.parametrize("case", HOSTILE_REPOSITORIES, ids=HOSTILE_IDS)
def test_my_account_refuses_them(case):
    with pytest.raises(FieldError) as error:
        check_repository(case.url)
    assert error.value.field == "git_repository"
    assert not any(s in error.value.message for s in SECRETS)


def test_my_account_takes_ssh_urls_only_where_allowed():
    url = "ssh://git@github.com/org/repo.git"
    with pytest.raises(FieldError, match="https://"):
        check_repository(url)
    assert check_repository(url, ("https", "ssh")) == url
    for bad in ("ssh://git:pw@github.com/o/r.git", "ssh://-oProxyCommand=x@h/r.git"):
        with pytest.raises(FieldError):
            check_repository(bad, ("https", "ssh"))


# -- the server ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", HOSTILE_REPOSITORIES, ids=HOSTILE_IDS)
def test_the_server_refuses_them_and_ssh_only_where_allowed(case):
    assert checks.repository_problem(case.url) is not None
    with_ssh = checks.repository_problem(case.url, ("https", "ssh"))
    assert (with_ssh is None) == case.ssh, with_ssh


@pytest.mark.parametrize("url", GOOD_REPOSITORIES)
def test_the_server_and_the_hub_agree_on_good_urls(url):
    assert checks.repository_problem(url) is None
    assert gitvalues.repository_problem(url) is None
    assert checks.directory_name(url)


@pytest.fixture
def no_process(monkeypatch):
    """subprocess patched: any attempt to start a process is recorded and fails."""
    started = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise AssertionError("a process was started")

    for name in ("Popen", "run", "check_output", "check_call", "call"):
        monkeypatch.setattr(subprocess, name, refuse)
    monkeypatch.setattr(os, "execvp", refuse)
    return started


@pytest.mark.parametrize("case", HOSTILE_REPOSITORIES, ids=HOSTILE_IDS)
def test_the_puller_refuses_them_without_running_anything(case, no_process, tmp_path):
    out = io.StringIO()
    work = tmp_path / "work"
    status = pull(case.url, "", work, report=Reporter(True, out))
    assert status == REFUSED and no_process == []
    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert event["event"] == "result" and event["state"] == "refused"
    assert event["message"].startswith("Refused the repository: the URL ")
    assert not any(s in event["message"] for s in SECRETS)
    assert not work.exists()  # not even the work directory was made


def test_the_puller_refuses_a_bad_branch_without_running_anything(no_process, tmp_path):
    out = io.StringIO()
    status = pull(GOOD_REPOSITORIES[0], "--orphan", tmp_path, report=Reporter(False, out))
    assert status == REFUSED and no_process == []
    assert out.getvalue() == "Refused the branch '--orphan': it must not start with '-'.\n"


def test_the_command_runs_no_git_for_a_hostile_url(tmp_path):
    """The real entry point, with a `git` first on PATH that records being run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "git-was-run"
    fake = bin_dir / "git"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {record}\nexit 1\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    for case in HOSTILE_REPOSITORIES[:12]:
        env["GIT_REPOSITORY"] = case.url.replace("\x00", "")
        done = subprocess.run(
            [sys.executable, "-m", "onyxia_git.pull", "--work-dir", str(tmp_path / "w")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == REFUSED, (case.id, done.stdout, done.stderr)
        assert done.stdout.startswith("Refused the repository"), case.id
    assert not record.exists()
    assert shutil.which("git", path=env["PATH"]) == str(fake)  # it would have been run


# -- branches and directory names ------------------------------------------------------------
BRANCHES = ["main", "feature/x", "v1.2", "a..b", "-x", "a b", "x.lock", "a/.b", "@{x}", "a/", "."]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("name", BRANCHES)
def test_branch_rules_are_gits_on_both_sides(name):
    git = subprocess.run(
        ["git", "check-ref-format", "--branch", name], capture_output=True, cwd="/"
    )
    assert (git.returncode == 0) == (checks.branch_problem(name) is None)
    assert checks.branch_problem(name) == gitvalues.branch_problem(name)


@pytest.mark.parametrize(
    "url, name",
    [
        ("https://git.example.org/team/survey.git", "survey"),
        ("https://git.example.org/team/survey", "survey"),
        ("https://git.example.org/team/survey.git/", "survey"),
        ("git@github.com:org/maps.git", "maps"),
        ("ssh://git@github.com/org/maps", "maps"),
        ("https://git.example.org/team/.hidden.git", None),
        ("https://git.example.org/team/%2e%2e", None),
        ("https://git.example.org/team/a%2Fb.git", None),
    ],
)
def test_the_clone_goes_to_a_plain_directory_named_after_the_repository(url, name):
    assert checks.directory_name(url) == name
