"""Onyxia's launcher links read as onyxia-web reads them, and what each becomes here.

Three sources of cases: onyxia-web's own tests of its query serializer
(InseeFrLab/onyxia `web/src/ui/pages/launcher/route.test.ts`, 9bb952bb, 2026-07-03); the
cases its parser's code implies (keys never decoded, `[N]` indexes, `-`, `null`...); and
real links of SSP Cloud's training material (tests/data/onyxia-links.yaml, with their
sources), translated offline against the shipped catalog. Hostile queries are a
`LinkError` naming the parameter (a 400 page), never an exception of another kind.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.courses.launcher import free_name, slug
from onyxia_hub.courses.onyxia_links import (
    DEFAULT_CHARTS,
    UNSET,
    LinkError,
    parse_query,
    path_text,
    translate,
)
from onyxia_hub.providers.initscripts import allowed

CATALOG = load_catalog(default_catalog_path())
LINKS = yaml.safe_load((Path(__file__).parent / "data" / "onyxia-links.yaml").read_text())
PATTERNS = ["https://raw.githubusercontent.com/InseeFrLab/"]


def values(query: str) -> list:
    return [(list(path), value) for path, value in parse_query(query).values]


# -- onyxia-web's own cases (route.test.ts) --------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "spark.userConfig.spark%5C.driver%5C.memory=%C2%AB5g%C2%BB",  # T2a
        "spark.userConfig.spark%5c.driver%5c.memory=%C2%AB5g%C2%BB",  # T2b, lowercase
        "spark.userConfig.spark\\.driver\\.memory=%C2%AB5g%C2%BB",  # T3, the raw backslash
    ],
)
def test_onyxia_webs_own_cases(query):
    assert values(query) == [(["spark", "userConfig", "spark.driver.memory"], "5g")]
    # T1: the path written back as a link writes it, escaped
    assert path_text(("spark", "userConfig", "spark.driver.memory")) == (
        "spark.userConfig.spark\\.driver\\.memory"
    )


# -- what the parser's code implies ------------------------------------------------------------
# query, expected (path, value) list
CASES = [
    ("git.repository=%C2%ABhttps%3A%2F%2Fgithub.com%2Fa%2Fb.git%C2%BB",
     [(["git", "repository"], "https://github.com/a/b.git")]),
    ("resources.limits.memory=«2Gi»", [(["resources", "limits", "memory"], "2Gi")]),
    ("a.b=1e3&a.c=-5&a.d=0.5", [(["a", "b"], 1000.0), (["a", "c"], -5), (["a", "d"], 0.5)]),
    ("a.b=null&a.c=true&a.d=false", [(["a", "b"], None), (["a", "c"], True), (["a", "d"], False)]),
    ("a.b=-", [(["a", "b"], UNSET)]),
    ("a.b=«»", [(["a", "b"], "")]),
    ("a.b=%C2%ABx%3Dy%C2%BB", [(["a", "b"], "x=y")]),
    ("a.b=«a+b»", [(["a", "b"], "a+b")]),  # '+' is no space
    ("a[0].b=1", [(["a", 0, "b"], 1)]),
    ("a.b[2]=«x»", [(["a", "b", 2], "x")]),
    ("a.b[0][1]=1", [(["a", "b", 0, 1], 1)]),
    ("a..b=1&a.b.=2", [(["a", "", "b"], 1), (["a", "b"], 2)]),
    ("[0].a=1", [(["", 0, "a"], 1)]),
    ("resources.limits.nvidia.com/gpu=«4»", [(["resources", "limits", "nvidia", "com/gpu"], "4")]),
    ("resources.limits.nvidia\\.com/gpu=«4»", [(["resources", "limits", "nvidia.com/gpu"], "4")]),
    ("resources.limits.nvidia.com%2Fgpu=1", [(["resources", "limits", "nvidia", "com%2Fgpu"], 1)]),
    ("oidc-spa.state=abc&name=x&replicaCount=2&a%2Eb=1", []),  # no dot, or oidc-spa: no value
    ("a.b=1&a.b=2", [(["a", "b"], 1), (["a", "b"], 2)]),
    ("a.b=1&&name=x&", [(["a", "b"], 1)]),
    ("init.personalInit=«%C2%ABhttps%3A%2F%2Fx%C2%BB", [(["init", "personalInit"], "«https://x")]),
]  # fmt: skip


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_the_format_as_onyxia_web_reads_it(query, expected):
    assert values(query) == expected


def test_reserved_parameters():
    query = parse_query(
        "name=a&name=rstudio%20utilitr&shared=yes&autoLaunch=true&s3=default&version=2.4.7"
    )
    assert query.name == "rstudio utilitr"  # the last one, decoded
    assert query.shared is None  # neither true nor false: as if absent
    assert (query.auto_launch, query.s3, query.version) == (True, "default", "2.4.7")
    assert parse_query("name=%C2%AB03_embedding%C2%BB").name == "«03_embedding»"  # not unwrapped
    assert parse_query("replicaCount=2").ignored == ("replicaCount",)


# query, the parameter named
HOSTILE = [
    ("a.b=True", "a.b"),
    ("a.b=", "a.b"),
    ("a.b", "a.b"),
    ("a.b=%7B%7D", "a.b"),
    ("a.b=«a»b»", "a.b"),
    ("x.y=Spellbook-Chap1»", "x.y"),
    ("a.b=«x=y»", "a.b"),
    ("a.b=%E0%A4%A", "a.b"),
    ("a.b=%ZZ", "a.b"),
    ("a.b=«unbalanced", "a.b"),
    ("resources.limits.memory=2Gi", "resources.limits.memory"),  # Onyxia reads 2: refused
    ("resources.limits.cpu=1500m", "resources.limits.cpu"),
    ("a.b=Infinity", "a.b"),
    ("a.b=«tab%09»", "a.b"),
    ("a.b=«nul%00»", "query"),
    ("a.b=«x»&" + "c.d=1&" * 70, "query"),
    ("a.b=«" + "x" * 9000 + "»", "query"),
    ("a" + ".b" * 20 + "=1", "a.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b"[:60]),
    ("k" * 300 + ".b=1", "k" * 59 + "…"),
    ("name=%E0%A4%A", "name"),
    ("name=a%0Ab", "name"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "parameter"), HOSTILE, ids=[h[0][:30] for h in HOSTILE])
def test_a_link_onyxia_could_not_read_is_refused_by_name(query, parameter):
    with pytest.raises(LinkError) as caught:
        parse_query(query)
    assert caught.value.parameter == parameter, caught.value
    assert caught.value.message


def test_a_prefix_number_says_what_onyxia_would_read_and_how_to_write_it():
    with pytest.raises(LinkError, match=r"Onyxia would read 2\): write «2Gi»"):
        parse_query("resources.limits.memory=2Gi")


def test_unicode_is_text():
    assert values("a.b=%C2%AB%C3%A9t%C3%A9%20%E2%82%AC%C2%BB") == [(["a", "b"], "été €")]


# -- real links, translated ----------------------------------------------------------------------
@pytest.mark.parametrize("link", LINKS, ids=[entry["source"].split(" ")[1][:50] for entry in LINKS])
def test_real_ssp_cloud_links(link):
    url = urlsplit(link["link"])
    _, _, catalog_id, chart = url.path.split("/")
    if "error" in link:
        with pytest.raises(LinkError) as caught:
            parse_query(url.query)
        assert caught.value.parameter == link["error"]
        return
    result = translate(
        parse_query(url.query), chart, CATALOG, DEFAULT_CHARTS, lambda u: allowed(u, PATTERNS)
    )
    assert dict(result.options) == link["options"]
    assert sorted(k for k, _ in result.not_applied) == sorted(link["not_applied"])
    assert all(why for _, why in result.not_applied), "a parameter dropped without a reason"
    assert result.name == link.get("name")


def test_a_versions_image_or_name_selects_a_catalog_version():
    service = CATALOG.get("jupyter-python")
    old = service.versions[1]
    for given in (old.name, old.image):
        query = parse_query(f"service.image.version=«{given}»")
        assert translate(query, "jupyter-python", CATALOG, DEFAULT_CHARTS).options["version"] == (
            old.name
        )
    other = translate(
        parse_query("service.image.version=«inseefrlab/onyxia-jupyter-python:py3.13.13»"),
        "jupyter-python", CATALOG, DEFAULT_CHARTS,
    )  # fmt: skip
    assert (
        "version" not in other.options
        and "has no image" in dict(other.not_applied)["service.image.version"]
    )


def test_requests_and_limits_the_limit_wins_and_unset_keeps_the_default():
    query = parse_query(
        "resources.limits.cpu=«2»&resources.requests.cpu=«1»&resources.requests.memory=«1Gi»&git.branch=-"
    )
    result = translate(query, "jupyter-python", CATALOG, DEFAULT_CHARTS)
    assert result.options == {"service": "jupyter-python", "cpu": "2", "memory": "1Gi"}
    assert dict(result.not_applied)["resources.requests.cpu"] == "the limit sets cpu"
    assert "git.branch" in dict(result.not_applied)


def test_an_unknown_chart_has_no_service():
    result = translate(parse_query("a.b=1"), "grimoire", CATALOG, DEFAULT_CHARTS)
    assert result.service is None


def test_server_names_from_free_text():
    assert slug("RF classification") == "rf-classification"
    assert slug("2b_vault-s3-sseC") == "s-2b-vault-s3-ssec"
    assert slug("«03_embedding»") == "s-03-embedding"
    assert slug("Transcription Whisper ") == "transcription-whisper"
    assert slug("!!!") == "server"
    assert free_name("jupyter-python", {"jupyter-python", "jupyter-python-2"}) == "jupyter-python-3"
    assert len(free_name("x" * 80, set())) <= 30
