"""The smallest service on Onyxia Hub's skeleton, as jupyterhub's examples/service-whoami.

`GET /services/whoami/` greets the signed-in user and shows their note; `POST` saves it
(encrypted, in the service's own store: table `whoami_notes`, key `ONYXIA_WHOAMI_KEY_FILE`);
`GET .../fail` breaks on purpose. Sign-in, XSRF, error pages, the store at head and the
exit with the hub are the skeleton's. tests/test_service_skeleton.py runs it in the
session hub.
"""

from pathlib import Path

from sqlalchemy import text
from tornado import web

from onyxia_hub.db import Schema
from onyxia_hub.db.engine import writing
from onyxia_hub.fields import FieldError
from onyxia_hub.service.app import ServiceApp
from onyxia_hub.service.handlers import PageHandler

SCHEMA = Schema("whoami", Path(__file__).parent / "whoami_revisions")


class HomePage(PageHandler):
    @web.authenticated
    def get(self):
        with self.app.db.engine.connect() as db:
            row = db.execute(text("SELECT note FROM whoami_notes WHERE username = :u"),
                             {"u": self.user}).first()  # fmt: skip
        note = self.app.db.crypto.decrypt(self.user, row[0]) if row else ""
        self.render_page("whoami.html", page_title=f"Hello {self.user}", note=note)

    @web.authenticated
    def post(self):
        note = self.get_body_argument("note", "")
        if len(note) > 100:
            raise FieldError("note", "at most 100 characters")
        sealed = self.app.db.crypto.encrypt(self.user, note)
        with writing(self.app.db.engine).begin() as db:  # a writer locks first
            db.execute(text("DELETE FROM whoami_notes WHERE username = :u"), {"u": self.user})
            db.execute(
                text("INSERT INTO whoami_notes VALUES (:u, :n)"), {"u": self.user, "n": sealed}
            )
        self.redirect(self.app.base_url, status=303)


class FailingPage(PageHandler):
    def get(self):
        raise RuntimeError("an internal detail that must stay in the log")


class WhoamiApp(ServiceApp):
    service_name = display_name = "whoami"
    schema = SCHEMA
    templates = Path(__file__).parent

    def routes(self):
        return [("", HomePage), ("fail", FailingPage)]


if __name__ == "__main__":
    WhoamiApp.launch_instance()
