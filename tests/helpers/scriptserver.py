"""A plain HTTP server on loopback serving a directory: init scripts for tests.

The embedded hub's servers fetch their init scripts from inside the server as their user
(extensions/onyxia-git/onyxia_git/init.py); tests serve those scripts from here. Plain HTTP
on loopback, which `InitScriptProvider.allowed_personal_scripts` allows only when a pattern
names it (`http://127.0.0.1:<port>/allowed/`). Each request is recorded (path only). A
file named `*.redirect` answers 302 to the URL it holds.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class ScriptServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.requests: list[str] = []
        served = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                served.append(self.path)
                target = Path(self.translate_path(self.path))
                if target.name.endswith(".redirect") and target.is_file():
                    self.send_response(302)
                    self.send_header("Location", target.read_text().strip())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
        )
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def put(self, path: str, text: str) -> str:
        """Serve text at path; its URL."""
        file = self.directory / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        return f"{self.url}/{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
