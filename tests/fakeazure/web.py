"""The small request/response vocabulary the fake's handlers speak.

Handlers are plain functions from a `Request` to a `Response`, so Entra, Azure DevOps and git
share one server, one fault mechanism and one ledger. The request body is an iterator so that
git pushes stream into `git http-backend`; other handlers read it whole with `body()`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

MAX_BODY = 64 * 1024 * 1024


@dataclass
class Request:
    method: str
    host: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body_iter: Iterator[bytes]
    _body: bytes | None = None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def body(self) -> bytes:
        """The whole body, read once (bounded, so a runaway client cannot exhaust memory)."""
        if self._body is None:
            chunks, size = [], 0
            for chunk in self.body_iter:
                size += len(chunk)
                if size > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    def params(self) -> dict[str, str]:
        """Query parameters, first value of each (what Microsoft's services do too)."""
        return {k: v[0] for k, v in parse_qs(self.query, keep_blank_values=True).items()}

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body().decode("utf-8", "replace"),
                                              keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body().decode("utf-8"))

    def authorization(self) -> tuple[str, str]:
        """(scheme in lower case, credential) of the Authorization header, or ("none", "")."""
        value = self.header("authorization").strip()
        if not value:
            return "none", ""
        scheme, _, rest = value.partition(" ")
        return scheme.lower(), rest.strip()

    def basic_credentials(self) -> tuple[str, str] | None:
        scheme, value = self.authorization()
        if scheme != "basic":
            return None
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None


@dataclass
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # What the ledger notes about the caller; filled in by handlers that authenticate.
    credential: str | None = None
    user: str | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(data: Any, status: int = 200,
                  headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, [("Content-Type", "application/json; charset=utf-8"),
                             *(headers or [])], body)


def text_response(text: str, status: int, content_type: str = "text/plain; charset=utf-8",
                  headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, [("Content-Type", content_type), *(headers or [])], text.encode())
