"""Writing the launch plan's files into a user's home, safely, as root.

The home belongs to the user, who may have put a symbolic link where a file is about to
be written, hoping root follows it onto /etc/shadow. Every path component is therefore
opened relative to its parent with `O_NOFOLLOW`, directories are created with the user's
ownership, and a file that exists with another owner or several hard links is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import PurePosixPath


class UnsafeHomePath(Exception):
    """The path cannot be written safely; the message says why."""


def _parts(relative: str) -> list[str]:
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts or any(p in ("..", ".", "") for p in path.parts):
        raise UnsafeHomePath(f"{relative!r} is not a plain path inside the home")
    return list(path.parts)


def write_home_file(
    home: str, relative: str, content: str | bytes, *, mode: int, uid: int | None, gid: int | None
) -> None:
    """Write content to home/relative, owned by uid:gid (None: leave as is), with mode."""
    parts = _parts(relative)
    data = content.encode() if isinstance(content, str) else content
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(home, flags_dir)
    try:
        for name in parts[:-1]:
            try:
                next_fd = os.open(name, flags_dir, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(name, 0o700, dir_fd=fd)
                next_fd = os.open(name, flags_dir, dir_fd=fd)
                if uid is not None:
                    os.fchown(next_fd, uid, gid)
            except OSError as e:
                raise UnsafeHomePath(
                    f"{relative!r}: {name!r} is not a directory ({e.strerror})"
                ) from None
            os.close(fd)
            fd = next_fd
        try:
            file_fd = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                0o600,
                dir_fd=fd,
            )
        except OSError as e:
            raise UnsafeHomePath(f"{relative!r} cannot be written ({e.strerror})") from None
        try:
            info = os.fstat(file_fd)
            if (
                not stat.S_ISREG(info.st_mode)
                or info.st_nlink != 1
                or (uid is not None and info.st_uid not in (uid, 0))
            ):
                raise UnsafeHomePath(f"{relative!r} exists and is not a plain file of this user")
            if uid is not None:
                os.fchown(file_fd, uid, gid)
            os.fchmod(file_fd, mode)
            os.ftruncate(file_fd, 0)
            os.write(file_fd, data)
        finally:
            os.close(file_fd)
    finally:
        os.close(fd)
