"""An HTTP CONNECT proxy on loopback that lets clients reach only the fake's host names.

Every client under test (git/curl, requests, msal, the fake browser) is pointed at this proxy
with HTTPS_PROXY, so they resolve nothing themselves and use the real Microsoft host names.
The proxy tunnels CONNECTs for those names to the fake's TLS port and refuses every other
target with 403, recording it: a test can then assert that no request, and so no secret,
ever went to a host it should not reach (a lookalike host, a redirect target, a typo).

Each connection has one thread that pumps both directions with `select`, waking up regularly
to notice `close()`; `close()` shuts every socket and joins every thread, so nothing leaks.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

KNOWN_HOSTS: tuple[str, ...] = (
    "dev.azure.com",
    "vssps.dev.azure.com",
    "login.microsoftonline.com",
    "app.vssps.visualstudio.com",
    "*.vssps.visualstudio.com",
    "*.visualstudio.com",
    "*.actions.githubusercontent.com",
)
HEADER_LIMIT = 65536
POLL = 0.2


def host_allowed(host: str, patterns: tuple[str, ...] = KNOWN_HOSTS) -> bool:
    """Exact names, or one DNS label in place of `*` (what the certificate also covers)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if not pattern.startswith("*."):
            if host == pattern:
                return True
            continue
        suffix = pattern[1:]
        label = host[: -len(suffix)] if host.endswith(suffix) else ""
        if label and "." not in label:
            return True
    return False


def _quick_ack(sock: socket.socket) -> None:
    """Acknowledge at once. urllib3 does not set TCP_NODELAY on tunnelled connections, so
    requests sends a body only after the headers are acknowledged; Linux's delayed ACK would
    add ~40 ms to every POST. (Linux clears the flag again, hence after every read.)"""
    if hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class ConnectProxy:
    """`ConnectProxy(target_port)`; `.port` to point clients at; `.connects` lists every
    CONNECT target ("host:port") in order, `.refused` those it answered with 403."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.connects: list[str] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL)
        self.port = int(self._listener.getsockname()[1])
        self._acceptor = threading.Thread(target=self._accept_loop, name="fakeazure-proxy",
                                          daemon=True)
        self._acceptor.start()

    def reset(self) -> None:
        with self._lock:
            self.connects.clear()
            self.refused.clear()

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)

    @property
    def active_threads(self) -> int:
        with self._lock:
            return sum(1 for t in self._threads if t.is_alive())

    # -- internals ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:  # TimeoutError's alias only from Python 3.10
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True,
                                      name="fakeazure-proxy-conn")
            with self._lock:
                self._threads.add(thread)
                self._sockets.add(client)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head = self._read_head(client)
            if head is None:
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            if len(parts) != 3:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            method, target, _ = parts
            if method.upper() != "CONNECT":
                # A plain-HTTP proxy request (http://host/...): never forwarded.
                host = target.split("://", 1)[-1].split("/", 1)[0]
                self._refuse(client, host)
                return
            host, _, port = target.rpartition(":")
            with self._lock:
                self.connects.append(target)
            if port != "443" or not host_allowed(host):
                self._refuse(client, target)
                return
            upstream = socket.create_connection(self.target, timeout=10)
            for sock in (client, upstream):  # relay small TLS records without Nagle delays
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.add(upstream)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._pump(client, upstream)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
                    with self._lock:
                        self._sockets.discard(sock)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _refuse(self, client: socket.socket, target: str) -> None:
        with self._lock:
            self.refused.append(target)
        body = b"fakeazure proxy: host not allowed\n"
        client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                       b"Connection: close\r\nContent-Length: " + str(len(body)).encode() +
                       b"\r\n\r\n" + body)

    def _read_head(self, client: socket.socket) -> bytes | None:
        client.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            if self._stop.is_set() or len(data) > HEADER_LIMIT:
                return None
            chunk = client.recv(4096)
            if not chunk:
                return None
            data += chunk
        return data

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes (a half-close ends the tunnel: TLS
        has its own close_notify, and neither curl nor urllib3 half-closes a tunnel)."""
        client.setblocking(False)
        upstream.setblocking(False)
        peers = {client: upstream, upstream: client}
        while not self._stop.is_set():
            readable, _, broken = select.select(list(peers), [], list(peers), POLL)
            if broken:
                return
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    return
                _quick_ack(sock)
                out = peers[sock]
                out.setblocking(True)
                out.settimeout(30)
                try:
                    out.sendall(data)
                finally:
                    out.setblocking(False)
