"""The one place where text is made safe to show: secrets masked, control characters escaped.

Every secret the helper handles is registered here the moment it is read or received, and every
line of trace, error or command output passes through `redact` or `show`, which also mask
anything shaped like a token, so a secret that was never registered is still unlikely to get
through. Text from outside (a server, a remote URL, the store) may carry terminal escapes
(CVE-2024-50349 is git's own case), so `show` escapes control characters as git does.
"""

from __future__ import annotations

_secrets: set[str] = set()
_TOKEN_SHAPES = (
    r"eyJ[\w-]{8,}\.[\w-]+\.[\w-]*"  # JWTs: Entra access and id tokens
    r"|(?i:bearer|basic)\s+[\w.~+/=-]{8,}"  # Authorization header values
    r"|\b[a-zA-Z0-9]{52}\b|\b[a-zA-Z0-9]{84}\b"  # Azure DevOps PATs
    r"|(?i:(?:access|refresh|id)_token|password|token|code)[\"']?\s*[:=]\s*[\"']?"
    r"(?!<redacted>(?:[\s\"'&,}]|$))[^\s\"'&,}]+"  # one already masked keeps its name
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


def printable(text: object) -> str:
    """Control characters escaped (`\\x1b`, `\\n`), so that text cannot move the cursor, clear
    the screen or start a new line of its own."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def printable_lines(text: object) -> str:
    """`printable`, line by line: text that is meant to span lines keeps its line breaks, and
    nothing else of its control characters."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def show(text: object) -> str:
    """Outside text made safe for a terminal: control characters escaped, secrets masked."""
    return redact(printable(text))
