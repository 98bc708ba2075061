"""Git's credential wire format (git-credential(1)).

Input is read as bytes and split on LF only: a bare CR is a line end to some readers
(CVE-2024-52006), so a value holding CR or NUL is refused rather than reinterpreted, and a value
about to be written with LF, CR or NUL is refused too, so nothing can smuggle an extra
`host=` line past git (CVE-2020-5260).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

MAX_LINE = 65535
MAX_LINES = 4096
_URL_FIELDS = ("protocol", "host", "path", "username", "password")


class ProtocolError(ValueError):
    """The input is not a credential git would send; the helper answers nothing."""


def read_request(stream: BinaryIO) -> bytes:
    """Read up to the blank line that ends git's message, bounded in line length and count."""
    lines = []
    for _ in range(MAX_LINES):
        line = stream.readline(MAX_LINE + 2)
        if len(line) > MAX_LINE + 1 or (len(line) == MAX_LINE + 1 and not line.endswith(b"\n")):
            raise ProtocolError("a line is longer than 65535 bytes")
        if line in (b"", b"\n"):
            break
        lines.append(line)
    else:
        raise ProtocolError(f"more than {MAX_LINES} lines")
    return b"".join(lines)


class Message:
    """One credential description: single-valued attributes plus git's repeated `key[]` lists."""

    __slots__ = ("attrs", "lists")

    def __init__(self, attrs: dict[str, str] | None = None,
                 lists: dict[str, list[str]] | None = None) -> None:
        self.attrs = attrs if attrs is not None else {}
        self.lists = lists if lists is not None else {}

    def __repr__(self) -> str:
        return f"Message(attrs={self.attrs!r}, lists={self.lists!r})"

    def get(self, key: str) -> str | None:
        return self.attrs.get(key)

    def values(self, key: str) -> list[str]:
        return self.lists.get(key, [])


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _apply_url(message: Message, url: str) -> None:
    """Expand `url=` the way git does: it replaces every URL-borne attribute."""
    from urllib.parse import unquote, urlsplit  # only `git credential`-style input needs it

    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced IPv6 bracket, say
        raise ProtocolError("url= is not a URL") from None
    if not parts.scheme or "://" not in url:
        raise ProtocolError("url= is not a URL")
    for key in _URL_FIELDS:
        message.attrs.pop(key, None)
    message.attrs["protocol"] = parts.scheme
    netloc = parts.netloc.rpartition("@")[2]
    message.attrs["host"] = unquote(netloc)
    if parts.username is not None:
        message.attrs["username"] = unquote(parts.username)
    if parts.password is not None:
        message.attrs["password"] = unquote(parts.password)
    if parts.path.lstrip("/"):
        message.attrs["path"] = unquote(parts.path.lstrip("/"))
    if any(_unsafe(v) for v in message.attrs.values()):
        raise ProtocolError("url= decodes to a control character")


def _unsafe(value: str) -> bool:
    return "\n" in value or "\r" in value or "\0" in value


def parse(data: bytes) -> Message:
    """Parse one message; a blank line or the end of input ends it."""
    message = Message()
    for raw in data.split(b"\n"):
        if not raw:
            break
        if len(raw) > MAX_LINE:
            raise ProtocolError("a line is longer than 65535 bytes")
        if b"\r" in raw or b"\0" in raw:
            raise ProtocolError("a value contains CR or NUL")
        key, sep, value = _decode(raw).partition("=")
        if not sep or not key:
            raise ProtocolError("a line is not key=value")
        if key == "url":
            _apply_url(message, value)
        elif key.endswith("[]"):
            if value:
                message.lists.setdefault(key, []).append(value)
            else:
                message.lists.pop(key, None)
        else:
            message.attrs[key] = value
    if not message.attrs.get("protocol") or not message.attrs.get("host"):
        raise ProtocolError("protocol and host are required")
    return message


def format(pairs: list[tuple[str, str]]) -> bytes:
    """Serialise an answer; refuses a value that could break a line."""
    out = []
    for key, value in pairs:
        if _unsafe(key) or "=" in key or _unsafe(value):
            raise ProtocolError(f"refusing to emit {key} with a control character")
        out.append(f"{key}={value}\n")
    return "".join(out).encode("utf-8", "surrogateescape")
