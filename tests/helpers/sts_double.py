"""An STS endpoint speaking MinIO's `AssumeRoleWithWebIdentity` format, for provider (a).

MinIO cannot run here, so this double answers as MinIO's documentation describes: a POST
whose query (or form body) holds `Action=AssumeRoleWithWebIdentity`, `Version=2011-06-15`,
`WebIdentityToken` and `DurationSeconds` (900 s at least), answered with
`AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials`
(`AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`), or an `ErrorResponse`
with HTTP 400.

The token is checked against a real OpenID Connect provider, as MinIO does: a JWT by its
signature (the provider's JWKS) and `exp`; an opaque access token through the
provider's userinfo endpoint (MinIO's `claim_userinfo` mode). The session's expiry is
capped at the token's `exp`. `mode` injects faults: "down" is not used (close the server),
"slow" sleeps, "garbage" answers non-XML, "incomplete" drops the secret key.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import requests

NS = "https://sts.amazonaws.com/doc/2011-06-15/"


class StsDouble:
    def __init__(self, issuer: str, userinfo: str, jwks_uri: str):
        self.issuer, self.userinfo, self.jwks = issuer, userinfo, jwt.PyJWKClient(jwks_uri)
        self.requests: list[dict] = []  # each request's parameters (tests check the format)
        self.issued: dict[str, str] = {}  # access key -> subject
        self.mode = "normal"
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the token is in the URL
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                params.update({k: v[0] for k, v in parse_qs(body).items()})
                status, text = double.answer(params)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def error(code: str, message: str) -> tuple[int, str]:
        return 400, (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{NS}"><Error>'
            f"<Type></Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{secrets.token_hex(8)}</RequestId></ErrorResponse>"
        )

    def subject(self, token: str) -> tuple[str, float | None]:
        """(preferred_username, exp) of a valid token; ValueError otherwise."""
        if token.count(".") == 2:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = self.jwks.get_signing_keys()
            key = next((k for k in keys if k.key_id == kid), keys[0])
            claims = jwt.decode(
                token, key.key, algorithms=["RS256"], issuer=self.issuer,
                options={"verify_aud": False},
            )  # fmt: skip
            return claims["preferred_username"], float(claims["exp"])
        r = requests.get(self.userinfo, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if r.status_code != 200:
            raise ValueError("userinfo refused the token")
        return r.json()["preferred_username"], None

    def answer(self, params: dict) -> tuple[int, str]:
        self.requests.append(params)
        if self.mode == "slow":
            time.sleep(30)
        if self.mode == "garbage":
            return 200, "<html>not STS</html"
        if (
            params.get("Action") != "AssumeRoleWithWebIdentity"
            or params.get("Version") != "2011-06-15"
        ):
            return self.error("InvalidParameterValue", "unsupported action or version")
        duration = int(params.get("DurationSeconds") or 3600)
        if duration < 900:
            return self.error("InvalidParameterValue", "DurationSeconds below 900")
        try:
            subject, exp = self.subject(params.get("WebIdentityToken", ""))
        except Exception:
            return self.error("InvalidIdentityToken", "the token is not valid")
        expires = time.time() + duration
        if exp is not None:
            expires = min(expires, exp)
        access = "STS" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        self.issued[access] = subject
        moment = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        secret_xml = (
            "" if self.mode == "incomplete" else f"<SecretAccessKey>{secret}</SecretAccessKey>"
        )
        return 200, (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<AssumeRoleWithWebIdentityResponse xmlns="{NS}"><AssumeRoleWithWebIdentityResult>'
            "<AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser>"
            f"<Credentials><AccessKeyId>{access}</AccessKeyId>{secret_xml}"
            f"<Expiration>{moment}</Expiration>"
            f"<SessionToken>session-{secrets.token_urlsafe(40)}</SessionToken></Credentials>"
            f"<SubjectFromWebIdentityToken>{subject}</SubjectFromWebIdentityToken>"
            "</AssumeRoleWithWebIdentityResult>"
            f"<ResponseMetadata><RequestId>{secrets.token_hex(8)}</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>"
        )
