"""Diagnostics that can be switched on without ever showing a secret.

Every secret the helper handles is registered here the moment it is read or received, and every
line of trace or error output passes through `redact`, which also masks anything shaped like a
token, so a secret that was never registered is still unlikely to get through.
"""

from __future__ import annotations

import os
import sys
import time

_secrets: set[str] = set()
_target = ""
_TOKEN_SHAPES = (
    r"eyJ[\w-]{8,}\.[\w-]+\.[\w-]*"  # JWTs: Entra access and id tokens
    r"|(?i:bearer|basic)\s+[\w.~+/=-]{8,}"  # Authorization header values
    r"|\b[a-zA-Z0-9]{52}\b|\b[a-zA-Z0-9]{84}\b"  # Azure DevOps PATs
    r"|(?i:(?:access|refresh|id)_token|password|token|code)[\"']?\s*[:=]\s*[\"']?[^\s\"'&,}]+"
)


def secret(value: str | None) -> None:
    """Remember a value that must never be shown."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    import re  # only diagnostics pay for regular expressions

    for value in sorted(_secrets, key=len, reverse=True):
        text = text.replace(value, "<redacted>")
    return re.sub(_TOKEN_SHAPES, "<redacted>", text)


def configure(target: str) -> None:
    """`1`/`true`/`stderr` traces to stderr; an absolute path appends to that file."""
    global _target
    target = target.strip()
    _target = "" if target.lower() in ("", "0", "false", "no", "off") else target


def enabled() -> bool:
    return bool(_target)


def log(message: str) -> None:
    if not _target:
        return
    line = f"{time.strftime('%H:%M:%S')} git-credential-pat[{os.getpid()}] {redact(message)}\n"
    if _target.lower() in ("1", "true", "yes", "on", "stderr", "2"):
        sys.stderr.write(line)
        return
    if os.path.isabs(_target):
        fd = os.open(_target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as stream:
            stream.write(line)
