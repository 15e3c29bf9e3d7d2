"""Hostile launch options, as a table every launch path is tested with.

Each `Hostile` case is what a user (or an attacker) could send as options, with the HTTP
status and the words the refusal must carry. `as_form`, `as_query` and the REST body
helpers turn one case into what each path sends, so that one table covers the spawn
form, links, the REST API (both body shapes) and options stored by PUT/PATCH.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass(frozen=True)
class Hostile:
    id: str
    options: dict = field(hash=False)
    status: int
    message: str  # a part of the refusal message shown to the user


def _many_keys() -> dict:
    return {f"key{i}": "x" for i in range(20)}


HOSTILE = [
    Hostile("unknown-image", {"image": "evil.example/miner:latest"}, 400, "Unknown option 'image'"),
    Hostile(
        "unknown-privileged",
        {"service": "jupyter-python", "privileged": "true"},
        400,
        "Unknown option 'privileged'",
    ),
    Hostile("gpu-resource-as-key", {"nvidia.com/gpu": "4"}, 400, "Unknown option"),
    Hostile("node-selector", {"node_selector": "gpu=a100"}, 400, "Unknown option 'node_selector'"),
    Hostile("tolerations", {"tolerations": "all"}, 400, "Unknown option 'tolerations'"),
    Hostile("command", {"cmd": "/bin/sh -c id"}, 400, "Unknown option 'cmd'"),
    Hostile("environment", {"environment": "LD_PRELOAD=/tmp/x.so"}, 400, "Unknown option"),
    Hostile("unknown-service", {"service": "does-not-exist"}, 400, "There is no service"),
    Hostile("service-path", {"service": "../../etc/passwd"}, 400, "There is no service"),
    Hostile("service-lookalike", {"service": "jupyter\u2010python"}, 400, "There is no service"),
    Hostile("service-nul", {"service": "jupyter\x00python"}, 400, "There is no service"),
    Hostile("service-huge", {"service": "a" * 5000}, 400, "is too long"),
    Hostile("service-number", {"service": 42}, 400, "There is no service"),
    Hostile("version-unknown", {"version": "latest"}, 400, "has no version 'latest'"),
    Hostile("version-shell", {"version": "1; rm -rf /"}, 400, "has no version"),
    Hostile("version-image", {"version": "docker.io/evil/image:1"}, 400, "has no version"),
    Hostile("cpu-negative", {"cpu": "-1"}, 400, "is not a CPU amount"),
    Hostile("cpu-zero", {"cpu": 0}, 400, "is not a CPU amount"),
    Hostile("cpu-huge-float", {"cpu": 1e308}, 400, "is not a CPU amount"),
    Hostile("cpu-nan", {"cpu": "NaN"}, 400, "is not a CPU amount"),
    Hostile("cpu-inf", {"cpu": "inf"}, 400, "is not a CPU amount"),
    Hostile("cpu-exponent", {"cpu": "1e3"}, 400, "is not a CPU amount"),
    Hostile("cpu-over-bound", {"cpu": 64}, 400, "cpu: 64 cores is outside what"),
    Hostile("cpu-millicores-over", {"cpu": "999999m"}, 400, "cpu: 999.999 cores is outside"),
    Hostile("cpu-text", {"cpu": "lots"}, 400, "is not a CPU amount"),
    Hostile("memory-negative", {"memory": "-1Gi"}, 400, "is not a memory size"),
    Hostile("memory-overflow", {"memory": "9" * 30 + "Gi"}, 400, "memory"),
    Hostile("memory-over-bound", {"memory": "1Ti"}, 400, "memory: 1 TiB is outside what"),
    Hostile("memory-under-bound", {"memory": "1Mi"}, 400, "memory: 1 MiB is outside what"),
    Hostile("memory-unit", {"memory": "4GB"}, 400, "is not a memory size"),
    Hostile("memory-garbage", {"memory": "4.5.6Gi"}, 400, "is not a memory size"),
    Hostile(
        "gpus-on-cpu-service", {"service": "jupyter-python", "gpus": 1}, 400, "has no GPU option"
    ),
    Hostile(
        "gpu-type-on-cpu-service",
        {"service": "jupyter-python", "gpu_type": "a100"},
        400,
        "has no GPU option",
    ),
    Hostile("gpus-negative", {"service": "pytorch-gpu", "gpus": -1}, 400, "gpus:"),
    Hostile("gpus-too-many", {"service": "pytorch-gpu", "gpus": 99}, 400, "not 99"),
    Hostile("gpus-fraction", {"service": "pytorch-gpu", "gpus": "1.5"}, 400, "gpus:"),
    Hostile(
        "gpu-type-unknown",
        {"service": "pytorch-gpu", "gpu_type": "h100-fake"},
        400,
        "has no GPU type 'h100-fake'",
    ),
    Hostile(
        "gpu-type-resource-name",
        {"service": "pytorch-gpu", "gpu_type": "nvidia.com/gpu"},
        400,
        "has no GPU type",
    ),
    Hostile("too-many-options", _many_keys(), 400, "Too many options"),
    Hostile("huge-key", {"k" * 1000: "v"}, 400, "Unknown option"),
    Hostile(
        "alias-conflict",
        {"profile": "jupyter-python", "service": "jupyter-r"},
        400,
        "given twice with different values",
    ),
]


def as_query(case: Hostile) -> str:
    """The link a hostile page would point at: /hub/spawn?opt-..."""
    return urlencode({f"opt-{k}": v for k, v in case.options.items()})


def as_form(case: Hostile) -> dict:
    """Form fields as the spawn form's POST would carry them (values as strings)."""
    return {k: v if isinstance(v, str) else str(v) for k, v in case.options.items()}


# -- git repository and branch (issue: git identity, tokens and repositories) -------------
# Through every launch path with the other cases above; the long table of hostile URLs
# below (HOSTILE_REPOSITORIES) goes through each layer in tests/test_git_checks.py.
HOSTILE.extend(
    [
        Hostile("repo-ext", {"repository": "ext::sh -c touch% /tmp/pwned"}, 400, "repository:"),
        Hostile("repo-file", {"repository": "file:///etc"}, 400, "must start with https://"),
        Hostile("repo-option", {"repository": "--upload-pack=touch /tmp/x"}, 400, "repository:"),
        Hostile(
            "repo-credentials",
            {"repository": "https://ann:hunter2x@git.example.org/x.git"},
            400,
            "user name or password",
        ),
        Hostile("repo-scp", {"repository": "git@github.com:o/r.git"}, 400, "https://"),
        Hostile("repo-huge", {"repository": "https://h/" + "r" * 3000}, 400, "is too long"),
        Hostile("repo-number", {"repository": 42}, 400, "repository:"),
        Hostile("branch-option", {"branch": "--orphan"}, 400, "must not start with '-'"),
        Hostile("branch-dotdot", {"branch": "a..b"}, 400, "must not contain '..'"),
    ]
)


@dataclass(frozen=True)
class HostileURL:
    id: str
    url: str
    message: str  # a part of the hub's refusal (choices.check)
    ssh: bool = False  # accepted where an operator allows ssh (refused by default)


HOSTILE_REPOSITORIES = [
    # other transports: remote helpers, local files, plain or unknown protocols
    HostileURL("ext-sh", "ext::sh -c touch% /tmp/pwned", "spaces"),
    HostileURL("ext-encoded", "ext::ssh%20-oProxyCommand=touch%20/tmp/x%20h", "https://"),
    HostileURL("fd-helper", "fd::17", "https://"),
    HostileURL("helper-prefix", "https::https://git.example.org/x.git", "https://"),
    HostileURL("file-url", "file:///etc/passwd", "https://"),
    HostileURL("file-path", "/srv/repositories/x.git", "https://"),
    HostileURL("file-relative", "../../other-user/project", "https://"),
    HostileURL("git-protocol", "git://git.example.org/x.git", "https://"),
    HostileURL("http-plain", "http://git.example.org/x.git", "https://"),
    HostileURL("ftp", "ftp://git.example.org/x.git", "https://"),
    HostileURL("javascript", "javascript:alert(1)", "https://"),
    # options in disguise (CVE-2021-39160 and ssh's -o)
    HostileURL("upload-pack", "--upload-pack=touch /tmp/pwned", "spaces"),
    HostileURL("upload-pack-nospace", "--upload-pack=touch", "https://"),
    HostileURL("config-option", "-cprotocol.ext.allow=always", "https://"),
    HostileURL("dash-url", "-https://git.example.org/x.git", "https://"),
    HostileURL("option-after", "https://git.example.org/x.git --upload-pack=x", "spaces"),
    HostileURL("ssh-proxycommand", "ssh://-oProxyCommand=touch%20x/y", "https://"),
    HostileURL("ssh-dash-user", "ssh://-oProxyCommand=x@git.example.org/x.git", "https://"),
    HostileURL("scp-dash-host", "git@-oProxyCommand=touch:x", "https://"),
    HostileURL("dash-path", "https://git.example.org/-x/repo.git", "starting with '-'"),
    # credentials in the URL
    HostileURL("user-token", "https://alice:ghp_s3cr3t@git.example.org/x.git", "password"),
    HostileURL("token-only", "https://ghp_s3cr3t@git.example.org/x.git", "password"),
    HostileURL("encoded-colon", "https://alice%3Atok@git.example.org/x.git", "password"),
    HostileURL("ssh-password", "ssh://git:s3cr3t@github.com/o/r.git", "https://"),
    # control characters, injections into git's credential protocol (CVE-2020-5260)
    HostileURL("newline", "https://git.example.org/x.git\n--upload-pack=x", "control"),
    HostileURL("encoded-newline", "https://git.example.org/x.git%0ahost=evil.example", "URL"),
    HostileURL("encoded-nul", "https://git.example.org/x%00.git", "characters of a URL"),
    HostileURL("nul", "https://git.example.org/x\x00.git", "control"),
    HostileURL("tab", "https://git.example.org/\tx.git", "control"),
    HostileURL("space", "https://git.example.org/a b.git", "spaces"),
    HostileURL("quote", 'https://git.example.org/x".git', "characters of a URL"),
    HostileURL("backslash", "https://git.example.org/x\\..\\y.git", "characters of a URL"),
    HostileURL("unicode-host", "https://gìt.example.org/x.git", "characters of a URL"),
    # malformed
    HostileURL("fragment", "https://git.example.org/x.git#--upload-pack=x", "#fragment"),
    HostileURL("query", "https://git.example.org/x.git?--upload-pack=x", "?query"),
    HostileURL("no-host", "https:///x.git", "must name a host"),
    HostileURL("bad-port", "https://git.example.org:99999/x.git", "not a valid URL"),
    HostileURL("no-repository", "https://forge.example.net", "must name a repository"),
    HostileURL("dot-dot", "https://git.example.org/../etc/x.git", "'..'"),
    HostileURL("huge", "https://git.example.org/" + "x" * 3000, "is too long"),
    # ssh and scp-style: refused unless an operator enables ssh
    HostileURL("scp", "git@github.com:org/repo.git", "https://", ssh=True),
    HostileURL("ssh", "ssh://git@github.com/org/repo.git", "https://", ssh=True),
]

GOOD_REPOSITORIES = [
    "https://git.example.org/team/project.git",
    "https://github.com/InseeFrLab/onyxia",
    "https://git.example.org:8443/a/b/c.git",
    "https://[::1]:8443/x.git",
    "https://127.0.0.1:4443/survey.git",
    "https://gitlab.example.org/group/sub-group/repo_name.v2.git",
]
