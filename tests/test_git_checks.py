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
check that they agree, as they do for the two other values the server gets from the hub:
a launch's `repository_dir` (where the clone goes: accepted and refused directories,
refused without a repository, the same from every path, the puller refusing bad targets
without a process) and the URL servers report their pull to (`pull_report_url`).
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


# -- where the clone goes (a launch's repository_dir) -----------------------------------------
COURSE = GOOD_REPOSITORIES[0]
DIR_200 = "/".join(["a" * 64, "b" * 64, "c" * 64, "d" * 5])
GOOD_DIRECTORIES = ["courses/intro", "intro", "a/b/c/d", "x" * 64, "A1/b_2/c-3/d.4", DIR_200,
                    "courses/2026.stats", "-x"]  # fmt: skip
BAD_DIRECTORIES = [  # (value, words of the refusal)
    ("..", "no part between slashes may start with '.'"),
    ("courses/../../etc", "no part between slashes may start with '.'"),
    (".", "may start with '.'"),
    ("a/.hidden", "may start with '.'"),
    (".git", "may start with '.'"),
    ("/abs", "not start with '/'"),
    ("/", "not start with '/'"),
    ("a//b", "nor contain '//'"),
    ("a/", "must not end with '/'"),
    ("a\x00b", "control characters"),
    ("a\nb", "control characters"),
    ("a\x7fb", "control characters"),
    ("a\\b", "must not contain '\\'"),
    ("a/b/c/d/e", "at most 4 parts"),
    ("x" * 65, "longer than 64 characters"),
    (DIR_200 + "d", "at most 200 characters"),
    ("a b", "only letters, digits"),
    ("~/x", "only letters, digits"),
    ("a:b", "only letters, digits"),
    ("cours/é", "only letters, digits"),
    ("$HOME", "only letters, digits"),
]
BAD_DIRECTORY_IDS = [f"{i:02}" for i in range(len(BAD_DIRECTORIES))]


def test_the_200_character_directory_is_200_characters():
    assert len(DIR_200) == 200


@pytest.mark.parametrize("value", GOOD_DIRECTORIES)
def test_a_launch_may_say_where_its_repository_is_cloned(value):
    assert gitvalues.directory_problem(value) is None
    assert checks.directory_problem(value) is None
    choice = check({"repository": COURSE, "repository_dir": value}, CATALOG, [])
    assert (choice.repository, choice.repository_dir) == (COURSE, value)
    options = choice.as_user_options()
    assert options["repository_dir"] == value
    assert check(options, CATALOG, []) == choice  # what the next start reuses


@pytest.mark.parametrize("value, words", BAD_DIRECTORIES, ids=BAD_DIRECTORY_IDS)
def test_directories_outside_the_rule_are_refused_on_both_sides(value, words):
    problem = gitvalues.directory_problem(value)
    assert problem is not None and words in problem, problem
    assert checks.directory_problem(value) == problem  # the server's copy of the rule
    with pytest.raises(ChoiceError) as error:
        check({"repository": COURSE, "repository_dir": value}, CATALOG, [])
    assert error.value.field == "repository_dir" and error.value.status_code == 400
    assert error.value.message.startswith("repository_dir: ") and words in error.value.message


def test_a_directory_needs_a_repository_named_by_the_same_launch():
    with pytest.raises(ChoiceError) as error:
        check({"repository_dir": "courses/intro", "branch": "main"}, CATALOG, [])
    assert error.value.message == "repository_dir: only with a repository named by this launch."
    assert error.value.field == "repository_dir"
    with pytest.raises(ChoiceError, match="^repository_dir: a directory is a relative path"):
        check({"repository": COURSE, "repository_dir": 42}, CATALOG, [])
    assert check({"repository": COURSE}, CATALOG, []).repository_dir is None
    assert "repository_dir" not in check({"repository": COURSE}, CATALOG, []).as_user_options()


def test_a_directory_arrives_the_same_from_every_path():
    api = {"repository": COURSE, "repository_dir": "courses/intro"}
    query = {k: [v] for k, v in api.items()}
    form = choices.from_form({"service": ["jupyter-python"], "_xsrf": ["t"], **query})
    expected = check(api, CATALOG, [])
    assert check(query, CATALOG, []) == check(form, CATALOG, []) == expected
    assert expected.repository_dir == "courses/intro"
    assert choices.entered(form, form=True)["repository_dir"] == "courses/intro"
    # the form's hidden directory goes with its repository: emptied, the repository takes
    # the default place (and the default repository, if any), rather than a refusal
    emptied = choices.from_form({"service": ["jupyter-python"], "repository": [" "],
                                 "repository_dir": ["courses/intro"]})  # fmt: skip
    assert "repository_dir" not in emptied
    assert check(emptied, CATALOG, []).repository_dir is None
    # the API has no such leniency: a directory alone is refused
    with pytest.raises(ChoiceError, match="only with a repository"):
        check({"repository": "", "repository_dir": "courses/intro"}, CATALOG, [])


def test_the_puller_refuses_a_bad_target_without_running_anything(no_process, tmp_path):
    for value, words in BAD_DIRECTORIES:
        out = io.StringIO()
        work = tmp_path / "work"
        status = pull(COURSE, "", work, target=value, report=Reporter(False, out))
        assert status == REFUSED and no_process == [], value
        assert out.getvalue().startswith("Refused the target directory "), out.getvalue()
        assert words in out.getvalue()
        assert not work.exists()


# -- where servers report their pull (GitProvider.pull_report_url) --------------------------
GOOD_REPORT_URLS = [
    "https://hub.example.org/services/courses/api/pull-status",
    "http://127.0.0.1:8000/services/courses/api/pull-status",
    "http://hub:8081/services/courses/api/pull-status",
    "https://[::1]:8443/pull-status",
]
BAD_REPORT_URLS = [  # (value, words of the refusal)
    ("ftp://hub.example.org/pull-status", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("hub.example.org/pull-status", "http:// or https://"),
    ("https:///pull-status", "with a host"),
    ("https://user:s3cr3t@hub.example.org/pull-status", "user name or password"),
    ("https://user@hub.example.org/pull-status", "user name or password"),
    ("https://hub.example.org/pull-status?token=x", "?query"),
    ("https://hub.example.org/pull-status?", "?query"),
    ("https://hub.example.org/pull-status#x", "#fragment"),
    ("https://hub.example.org/pull status", "spaces or control characters"),
    ("https://hub.example.org/\nx", "spaces or control characters"),
    ("https://hub.example.org:port/x", "not a valid URL"),
    ("https://hub.example.org/" + "x" * 2048, "at most 2048"),
]


@pytest.mark.parametrize("url", GOOD_REPORT_URLS)
def test_report_urls_the_hub_and_the_server_take(url):
    assert gitvalues.report_url_problem(url) is None
    assert checks.report_url_problem(url) is None


@pytest.mark.parametrize("url, words", BAD_REPORT_URLS,
                         ids=[f"{i:02}" for i in range(len(BAD_REPORT_URLS))])  # fmt: skip
def test_report_urls_refused_on_both_sides(url, words):
    problem = gitvalues.report_url_problem(url)
    assert problem is not None and words in problem, problem
    assert checks.report_url_problem(url) == problem
    assert url not in problem and "s3cr3t" not in problem and "token=x" not in problem
