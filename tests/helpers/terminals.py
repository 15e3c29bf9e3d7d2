"""A JupyterLab terminal, as a user opens one: the server's terminals API and websocket."""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import quote

import requests
import websocket


def run_in_terminal(base_url: str, user: str, token: str, command: str, timeout=30) -> str:
    """What `command` prints in a new terminal of user's default server (then closed)."""
    api = f"{base_url.rstrip('/')}/user/{quote(user, safe='')}/api"
    headers = {"Authorization": f"token {token}"}
    r = requests.post(f"{api}/terminals", headers=headers, timeout=30)
    r.raise_for_status()
    name = r.json()["name"]
    ws_url = "ws" + base_url.rstrip("/").removeprefix("http")
    ws_url += f"/user/{quote(user, safe='')}/terminals/websocket/{name}"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: {headers['Authorization']}"])
    end = "END-" + secrets.token_hex(4)
    try:
        # the marker is split so that only its output, not the echoed command, matches
        ws.send(json.dumps(["stdin", f"{command}; echo END-''{end[4:]}\r"]))
        out = ""
        deadline = time.monotonic() + timeout
        while end not in out:
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(ws.recv())
            if message[0] == "stdout":
                out += message[1]
        return out.split(end)[0]
    finally:
        ws.close()
        requests.delete(f"{api}/terminals/{name}", headers=headers, timeout=30)
