"""The embedded store's TLS: a private CA under the state directory, and what trusts it.

`onyxia-hub up` serves its moto store over HTTPS so that code written for a real datalab
(`'https://' + os.environ['AWS_S3_ENDPOINT']`) runs unchanged. At the first start it makes,
under `<state>/storage/tls/`:

| file            | mode | what                                                        |
|-----------------|------|-------------------------------------------------------------|
| `ca.pem`        | 0644 | the CA's certificate ("Onyxia Hub local CA", 10 years,      |
|                 |      | name-constrained to 127.0.0.0/8 and `localhost`)            |
| `ca-key.pem`    | 0600 | its key: it signs the store's certificate, nothing else     |
| `store.pem`     | 0644 | the store's certificate: `127.0.0.1` and `localhost`, 1 year |
| `store-key.pem` | 0600 | its key                                                     |
| `ca-bundle.pem` | 0644 | certifi's public CAs followed by `ca.pem`                   |

The CA is kept across restarts (users' tools that pinned it keep working); the store's
certificate is renewed when it has less than 30 days left or no longer matches the CA.
Servers get `ca-bundle.pem` as `AWS_CA_BUNDLE`, `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE` and
`CURL_CA_BUNDLE`: a bundle rather than the CA alone, since those variables replace the
system's CAs and `pip install` or `curl https://...` in a terminal must keep working.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from .secrets import write_private

CA_NAME = "Onyxia Hub local CA"
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class StoreTLS:
    """Where the embedded store's TLS files are (see the module docstring)."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.directory / "store.pem"

    @property
    def key(self) -> Path:
        return self.directory / "store-key.pem"

    @property
    def bundle(self) -> Path:
        return self.directory / "ca-bundle.pem"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _pem_cert(cert) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _write_public(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _make_ca(tls: StoreTLS) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        # servers trust it for every host (SSL_CERT_FILE): it may sign for loopback only
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[
                    x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
                    x509.DNSName("localhost"),
                ],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_private(tls.ca_key, _pem_key(key))
    _write_public(tls.ca, _pem_cert(cert))


def _store_cert_current(tls: StoreTLS) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
        ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
        tls.key.stat()
    except (OSError, ValueError):
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # InvalidSignature included
        return False
    return cert.not_valid_after_utc - _now() > RENEW_BEFORE


def _make_store_cert(tls: StoreTLS) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key(tls.ca_key.read_bytes(), None)
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    key = _key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(tls.key, _pem_key(key))
    _write_public(tls.cert, _pem_cert(cert))


def _public_cas() -> str:
    import certifi

    return Path(certifi.where()).read_text()


def ensure(directory: Path) -> StoreTLS:
    """The CA, the store's certificate and the bundle in directory, made or renewed as
    needed (module docstring). The directory is readable by every account: servers
    run as their users and read the bundle."""
    tls = StoreTLS(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    if not (tls.ca.exists() and tls.ca_key.exists()):
        _make_ca(tls)
    for key in (tls.ca_key, tls.key):  # modes that drifted (a copy, a restore) are fixed
        if key.exists() and key.stat().st_mode & 0o077:
            key.chmod(0o600)
    if not _store_cert_current(tls):
        _make_store_cert(tls)
    _write_public(tls.bundle, _public_cas().rstrip("\n") + "\n\n" + tls.ca.read_text())
    return tls
