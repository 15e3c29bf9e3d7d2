"""Checking and picking TCP ports on the address the embedded hub binds to."""

from __future__ import annotations

import errno
import socket


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(host: str, port: int) -> bool:
    """True when a listening socket could be bound to host:port right now."""
    return bind_error(host, port) is None


def bind_error(host: str, port: int) -> str | None:
    """None if host:port can be bound, else a short reason ("in use", "cannot assign")."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return "already in use"
            if e.errno == errno.EACCES:
                return "needs privileges to bind (ports below 1024)"
            if e.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine"
            return e.strerror or str(e)
    return None


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free on host (it may be taken again before it is used)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
