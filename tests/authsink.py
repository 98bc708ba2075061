"""A loopback proxy that answers every request with 401 and keeps the Authorization headers.

Point git at it with `http.proxy` (and `http.sslVerify=false`: it terminates TLS itself with the
fake's certificate, whatever host was asked for): plain-HTTP requests and CONNECT tunnels to any
host land here, each is refused with a Basic challenge, so git asks its credential helpers and
sends whatever they answer. `received` then holds every (host, Authorization) pair that arrived,
which is exactly what a hostile server on that host would have learnt.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
from pathlib import Path

CHALLENGE = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"sink\"\r\n"
             b"Content-Length: 0\r\n\r\n")


class AuthSink:
    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.received: list[tuple[str, str]] = []  # (host, Authorization or "")
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def passwords(self) -> list[str]:
        """The password of every Basic header received (the secret git sent)."""
        found = []
        for _, header in self.received:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "basic":
                decoded = base64.b64decode(value).decode(errors="replace")
                found.append(decoded.partition(":")[2])
            elif header:
                found.append(value)
        return found

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            stream = conn.makefile("rb")
            head = _read_head(stream)
            if head is None:
                return
            method, target = head[0].split()[:2]
            if method.upper() == "CONNECT":
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                tls = self.context.wrap_socket(conn, server_side=True)
                tls_stream = tls.makefile("rb")
                while (inner := _read_head(tls_stream)) is not None:
                    self._refuse(inner, target.rpartition(":")[0], tls, tls_stream)
            else:
                host = target.split("://", 1)[-1].split("/", 1)[0]
                while head is not None:
                    self._refuse(head, host, conn, stream)
                    head = _read_head(stream)
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _refuse(self, head: list[str], host: str, conn: socket.socket, stream: object) -> None:
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head[1:])}
        with self._lock:
            self.received.append((headers.get("host", host), headers.get("authorization", "")))
        length = int(headers.get("content-length") or 0)
        if length:
            stream.read(length)  # type: ignore[attr-defined]
        conn.sendall(CHALLENGE)


def _read_head(stream: object) -> list[str] | None:
    lines: list[str] = []
    while True:
        line = stream.readline(65537)  # type: ignore[attr-defined]
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines or None
        lines.append(line.decode("latin-1").rstrip("\r\n"))
