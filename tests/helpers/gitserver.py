"""A real git server over HTTPS for tests: git's own `http-backend` behind a small web server.

    ca = CertificateAuthority(directory)         # a CA, and certificates for 127.0.0.1
    server = GitServer(directory / "a", ca, token="s3cret-token")
    server.create_repo("survey", {"README.md": "# Survey\\n"}, private=True)
    server.url("survey")                         # https://127.0.0.1:<port>/survey.git
    ...
    server.requests                              # every request: method, path, credentials
    server.stop()

Git clients trust the server with `GIT_SSL_CAINFO=<ca.path>` (the CA's PEM file, readable
by every account, so that user servers can use it too).

A private repository answers 401 to any request without HTTP Basic credentials whose
password is the server's token (any user name, as GitHub and GitLab do with personal
access tokens), and accepts pushes from those who give it; a public one serves anyone
and refuses pushes. Every request is recorded, with the `Authorization` header decoded,
so that a test can prove a server received no credentials at all.

Repositories live on disk as bare repositories under the server's root; `commit` adds
an upstream commit directly (as a colleague's push would), `log` reads one's history.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

UPSTREAM = {
    "GIT_AUTHOR_NAME": "Upstream Author",
    "GIT_AUTHOR_EMAIL": "upstream@example.org",
    "GIT_COMMITTER_NAME": "Upstream Author",
    "GIT_COMMITTER_EMAIL": "upstream@example.org",
}


def git(*args: str, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    """git as the test process (root), isolated from any user or system configuration."""
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "LANG": "C",
        **UPSTREAM,
        **(env or {}),
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result


class CertificateAuthority:
    """A certificate authority for 127.0.0.1, its certificate in `path` (mode 0644)."""

    def __init__(self, directory: Path, path: Path | None = None):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Onyxia Hub test CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.path = Path(path or self.directory / "ca.pem")
        self.path.write_bytes(ca_cert.public_bytes(pem))
        self.path.chmod(0o644)
        self.cert_file = self.directory / "server.pem"
        self.key_file = self.directory / "server.key"
        self.cert_file.write_bytes(cert.public_bytes(pem))
        self.key_file.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self.key_file.chmod(0o600)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    repository: str
    authorization: str | None  # the raw header, None when absent
    username: str | None
    password: str | None


class GitServer:
    """git http-backend over HTTPS on 127.0.0.1; see the module docstring."""

    def __init__(self, root: Path, ca: CertificateAuthority, *, token: str | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.private: set[str] = set()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ca.server_context().wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"https://{self.host}/{name}.git"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- repositories ---------------------------------------------------------------------
    def bare(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def create_repo(self, name: str, files: dict[str, str], *, private: bool, branch="main"):
        git("init", "--quiet", "--bare", "-b", branch, str(self.bare(name)))
        git("config", "http.receivepack", "true", cwd=self.bare(name))
        if private:
            self.private.add(name)
        self.commit(name, files, "First version", branch=branch)

    def commit(self, name: str, files: dict[str, str], message: str, branch="main") -> str:
        """Commit files on branch upstream (as a colleague's push); the new commit's id."""
        with tempfile.TemporaryDirectory() as work:
            if git("ls-remote", "--heads", str(self.bare(name)), branch).stdout.strip():
                git("clone", "--quiet", "-b", branch, str(self.bare(name)), work)
            else:
                git("init", "--quiet", "-b", branch, work)
            for path, content in files.items():
                target = Path(work) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
            git("add", "-A", cwd=work)
            git("commit", "--quiet", "-m", message, cwd=work)
            git("push", "--quiet", str(self.bare(name)), f"HEAD:{branch}", cwd=work)
            return git("rev-parse", "HEAD", cwd=work).stdout.strip()

    def log(self, name: str, fmt: str = "%an <%ae>|%cn <%ce>|%s", branch="main") -> list[str]:
        out = git("--git-dir", str(self.bare(name)), "log", f"--format={fmt}", branch).stdout
        return out.splitlines()

    # -- what the server saw --------------------------------------------------------------
    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def credentials_seen(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.authorization is not None]


class _Handler(BaseHTTPRequestHandler):
    server_state: GitServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: tests read `requests` instead
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _credentials(self) -> tuple[str | None, str | None, str | None]:
        header = self.headers.get("Authorization")
        if not header or not header.lower().startswith("basic "):
            return header, None, None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return header, None, None
        return header, user, password

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self):
        state = self.server_state
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        repository = path.lstrip("/").split(".git/", 1)[0] if ".git/" in path else ""
        header, user, password = self._credentials()
        body = self._body() if self.command == "POST" else b""
        state.record(Request(self.command, path, repository, header, user, password))
        authorised = state.token is not None and password == state.token
        if repository in state.private and not authorised:
            return self._reply(401, b"authentication required\n", auth=True)
        if "git-receive-pack" in self.path and not authorised:
            return self._reply(401, b"pushes need credentials\n", auth=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(state.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": "/nonexistent",
            "PATH_INFO": path,
            "QUERY_STRING": parts.query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if authorised:
            env["REMOTE_USER"] = user or "user"
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key.strip(), value.strip()))
        self._reply(status, payload, headers=headers)

    def _reply(self, status: int, payload: bytes, *, headers=(), auth=False):
        self.send_response(status)
        for key, value in headers:
            if key.lower() != "content-length":
                self.send_header(key, value)
        if auth:
            self.send_header("WWW-Authenticate", 'Basic realm="test git server"')
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
