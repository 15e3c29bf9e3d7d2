"""The service skeleton (onyxia_hub/service), through its smallest service.

tests/services/whoami.py runs in the session hub at /services/whoami/ with a store and a
key of its own: the hub's login round trip, XSRF on a change, errors without tracebacks,
and what each service is handed (its own store's settings, never another's).
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import text

from onyxia_hub.db import make_engine
from tests.helpers import procs
from tests.helpers.client import HubClient

PREFIX = "/services/whoami/"


@pytest.fixture(scope="module")
def ann(make_user) -> HubClient:
    client = make_user("whoami-ann")
    r = client.get(PREFIX)  # the OAuth round trip: hub login cookie -> service cookie
    assert r.status_code == 200, r.text
    return client


def note_of(client: HubClient) -> str:
    page = client.get(PREFIX)
    assert page.status_code == 200, page.text
    return unescape(re.search(r'<p id="whoami-note">Your note: (.*?)</p>', page.text).group(1))


def service_xsrf(client: HubClient) -> str:
    return client.session.cookies.get("_xsrf", path=PREFIX)


def test_signing_in_goes_through_the_hub_and_back(hub, ann):
    anonymous = HubClient(hub.url)
    r = anonymous.get(PREFIX)
    assert r.url.startswith(hub.url + "/hub/login"), r.url  # never the page itself
    page = ann.get(PREFIX)
    assert page.url == hub.url + PREFIX
    assert "<h1" in page.text and "Hello whoami-ann" in page.text
    # in the hub's layout, with Onyxia Hub's nav bar
    assert 'href="/services/portal/services">My services</a>' in page.text


def test_a_change_needs_the_services_xsrf_token(ann, hub):
    r = ann.session.post(ann.url(PREFIX), data={"note": "forged"}, allow_redirects=False)
    assert r.status_code == 403
    r = ann.session.post(
        ann.url(PREFIX), data={"note": "forged", "_xsrf": "not-the-token"}, allow_redirects=False
    )
    assert r.status_code == 403
    assert note_of(ann) != "forged"
    r = ann.session.post(
        ann.url(PREFIX),
        data={"note": "buy milk", "_xsrf": service_xsrf(ann)},
        allow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert note_of(ann) == "buy milk"


def test_the_note_is_sealed_in_the_services_own_store(ann, make_user, test_catalog):
    r = ann.session.post(ann.url(PREFIX), data={"note": "sealed note", "_xsrf": service_xsrf(ann)})
    assert r.status_code == 200
    engine = make_engine(f"sqlite:///{test_catalog.parent / 'whoami' / 'whoami.sqlite'}")
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT note FROM whoami_notes WHERE username = 'whoami-ann'")
        ).scalar_one()
        revision = connection.execute(
            text("SELECT version_num FROM onyxia_whoami_alembic_version")
        ).scalar_one()
    engine.dispose()
    assert stored.startswith("gAAAA") and "sealed note" not in stored
    assert revision == "0001"
    ben = make_user("whoami-ben")
    assert note_of(ben) == ""  # another user never sees it


def test_errors_are_pages_without_tracebacks(ann, hub):
    r = ann.get(PREFIX + "fail")
    assert r.status_code == 500
    assert "Traceback" not in r.text and "internal detail" not in r.text
    assert "Error 500" in r.text and 'id="whoami-error-message"' in r.text
    assert "an internal detail that must stay in the log" in hub.output()  # for the operator
    long = ann.session.post(ann.url(PREFIX), data={"note": "x" * 101, "_xsrf": service_xsrf(ann)})
    assert long.status_code == 400 and "note: at most 100 characters" in long.text
    missing = ann.get(PREFIX + "no/such/page")
    assert missing.status_code == 404 and "There is no such page in the whoami." in missing.text


def test_each_service_is_handed_its_own_store_and_key_only(hub, ann):
    """A service reads ONYXIA_<ITS NAME>_* only (onyxia_hub.envnames); the hub hands each
    only its own: the example service never sees the portal's store or key, nor the portal
    the example's."""

    def started_by_hub(match) -> procs.Proc:
        [found] = [
            p
            for p in procs.processes()
            if match(p.cmdline)
            and open(f"/proc/{p.pid}/stat").read().split()[3] == str(hub.proc.pid)
        ]
        return found

    portal = started_by_hub(lambda argv: argv[1:3] == ["-m", "onyxia_hub.portal"])
    whoami = started_by_hub(lambda argv: argv[-1:] and argv[-1].endswith("services/whoami.py"))
    own = {k for k in whoami.environ if k.startswith("ONYXIA_")}
    assert own == {"ONYXIA_WHOAMI_DB_URL", "ONYXIA_WHOAMI_KEY_FILE"}
    assert not any(k.startswith("ONYXIA_WHOAMI_") for k in portal.environ)
    assert {"ONYXIA_PORTAL_DB_URL", "ONYXIA_PORTAL_KEY_FILE"} <= set(portal.environ)
