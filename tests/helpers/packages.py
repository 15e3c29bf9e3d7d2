"""Packages a user installs from a local file, made here (no index is reachable): a
Python wheel and an R source tarball, each as small as its format allows."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def wheel(directory: Path, name: str, files: dict[str, str], version: str = "1.0") -> Path:
    """A pure-Python wheel of `name` holding `files` (path in site-packages: text)."""
    dist_info = f"{name}-{version}.dist-info"
    contents = {
        **files,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    path = directory / f"{name}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for filename, text in contents.items():
            data = text.encode()
            z.writestr(filename, data)
            record.append(f"{filename},{_record_hash(data)},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        z.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return path


def r_source_package(directory: Path, name: str, answer: str) -> Path:
    """An R source package `name` exporting `hello()`, which returns `answer`."""
    files = {
        "DESCRIPTION": (
            f"Package: {name}\nVersion: 1.0\nTitle: A test package\n"
            "Description: Says hello.\nLicense: MIT\nAuthor: tests\nMaintainer: tests <t@t>\n"
        ),
        "NAMESPACE": "export(hello)\n",
        "R/hello.R": f'hello <- function() "{answer}"\n',
    }
    path = directory / f"{name}_1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for filename, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{filename}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path
