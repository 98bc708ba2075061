"""Diagnostics that can be switched on without ever showing a secret: every line passes through
`redact`, and tracing off costs nothing but a string test."""

from __future__ import annotations

import os
import sys
import time

from git_credential_pat.core.redact import show

_target = ""


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
    text = "\n    ".join(show(part) for part in message.splitlines())  # a traceback stays legible
    line = f"{time.strftime('%H:%M:%S')} git-credential-pat[{os.getpid()}] {text}\n"
    if _target.lower() in ("1", "true", "yes", "on", "stderr", "2"):
        sys.stderr.write(line)
        return
    if os.path.isabs(_target):
        fd = os.open(_target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as stream:
            stream.write(line)
