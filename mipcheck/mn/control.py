"""Talking to a running reference mobile node: where its control socket is and one request to it.

Why apart from the runner: ``mipcheck mn ctl`` runs once per move of an MN
suite run, so it must start fast; this module needs only the standard library.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from mipcheck.errors import MipcheckError

CONTROL_TIMEOUT = 10.0


def default_socket_path() -> str:
    """``$XDG_RUNTIME_DIR/mipcheck-mn.sock``, else ``/tmp/mipcheck-mn-$UID.sock``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return str(Path(runtime) / "mipcheck-mn.sock")
    return f"/tmp/mipcheck-mn-{os.getuid()}.sock"


def ask(path: str, request: dict[str, Any], *, timeout: float = CONTROL_TIMEOUT) -> dict[str, Any]:
    """One request to the runner at ``path``; MipcheckError when nothing listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            raise MipcheckError(f"no reference mobile node at {path}") from None
        try:
            sock.sendall((json.dumps(request) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise MipcheckError(f"reference mobile node at {path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise MipcheckError(f"reference mobile node at {path}: no answer") from None
    if not isinstance(answer, dict):
        raise MipcheckError(f"reference mobile node at {path}: unexpected answer")
    return answer
