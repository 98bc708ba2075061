"""One TLS server for every fake Microsoft host, routing on the Host header.

The same server without TLS (`certs=None`) plays the plain-HTTP endpoints Azure offers on
local addresses (managed identity), with the same faults and ledger.

Clients reach it through `ConnectProxy`, so they resolve and verify the real names; TLS is
real (the test CA). HTTP/1.1 with exact Content-Length on every answer, because git/curl and
requests keep connections alive and a wrong length would corrupt the next response.

Faults are applied here, before the handler runs, so every step can be made slow, failing,
redirected or silently dropped the same way. The ledger entry for each request is written here
too, with the Authorization scheme but never its value.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from tests.fakeazure.ca import CertFiles
from tests.fakeazure.state import Fault, RequestRecord, State
from tests.fakeazure.web import Request, Response, text_response

Route = tuple[str, Callable[[Request], Response]]
Router = Callable[[Request], Optional[Route]]
IDLE_TIMEOUT = 30


class FakeServer(ThreadingHTTPServer):
    """Threading HTTPS server; handshakes happen on the connection's own thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, certs: CertFiles | None, state: State, router: Router) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = certs is not None
        if certs is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certs.cert, certs.key)
            self.socket = context.wrap_socket(self.socket, server_side=True,
                                              do_handshake_on_connect=False)
        self.state = state
        self.router = router
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fakeazure-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)
        if self._thread:
            self._thread.join(timeout=5)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # SSLError, ConnectionError, timeouts...
            return  # a client that went away or gave up: not the fake's problem
        traceback.print_exc()


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: FakeServer

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm and the client's delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)
        if not self.server.tls:
            return
        try:
            self.connection.do_handshake()  # type: ignore[attr-defined]
        except BaseException:
            self.server.track(self.connection, False)
            raise

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def version_string(self) -> str:
        return "fakeazure"

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header on the fake clock, like the rest of the fake's notion of time."""
        return email.utils.formatdate(timestamp or self.server.state.now(), usegmt=True)

    def do_GET(self) -> None:
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # -- body --------------------------------------------------------------------------------

    def body_chunks(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed mid-body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from self._read_exactly(size)
                self.rfile.readline(3)
        else:
            yield from self._read_exactly(int(self.headers.get("Content-Length") or 0))

    def _read_exactly(self, length: int) -> Iterator[bytes]:
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                raise ConnectionError("client closed mid-body")
            length -= len(chunk)
            yield chunk

    # -- dispatch ----------------------------------------------------------------------------

    def dispatch(self) -> None:
        state = self.server.state
        host = (self.headers.get("Host") or "").lower()
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        path, _, query = self.path.partition("?")
        body = self.body_chunks()
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        req = Request(self.command, host, path, query, headers, body)
        try:
            routed = self.server.router(req)
        except Exception:  # noqa: BLE001 - a routing bug must show up as a 500, not a hang
            traceback.print_exc()
            routed = None
        step = routed[0] if routed else "unknown"
        delay, fault = state.take_faults(step) if routed else (0.0, None)
        if delay:
            self.server.stopping.wait(delay)
        if fault is not None and fault.kind == "drop":
            self.record(req, step, 0, None)
            self.close_connection = True
            _shutdown(self.connection)
            return
        if fault is not None and fault.kind != "drip":
            response = fault_response(fault)
        elif routed is None:
            response = text_response("Not found", 404)
        else:
            try:
                response = routed[1](req)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                response = text_response("fakeazure: handler crashed", 500)
        try:
            for _ in body:  # whatever the handler left unread, so the next request parses
                pass
        except (ConnectionError, ValueError, OSError):
            self.close_connection = True
        self.record(req, step, response.status, response)
        if fault is not None and fault.kind == "drip":
            self.send_dripping(response, fault.seconds)
        else:
            self.send(response)

    def record(self, req: Request, step: str, status: int, response: Response | None) -> None:
        self.server.state.log(RequestRecord(
            time=self.server.state.now(), method=req.method, host=req.host, path=req.path,
            query=req.query, step=step, status=status, auth=_scheme(req),
            credential=response.credential if response else None,
            user=response.user if response else None,
        ))

    def send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for key, value in response.headers:
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            if response.status not in (204, 304):
                self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            if self.command != "HEAD" and response.status not in (204, 304):
                # One write for head and body: one TLS record sequence, no small-packet wait.
                self._headers_buffer.append(b"\r\n" + response.body)
                self.flush_headers()
            else:
                self.end_headers()
            self.wfile.flush()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True


    def send_dripping(self, response: Response, seconds_per_byte: float) -> None:
        """The head at once, then the body a byte at a time until it is sent, the client has
        gone, or the fake stops."""
        self.close_connection = True
        try:
            self.send_response(response.status)
            for key, value in response.headers:
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            for n in range(len(response.body)):
                if self.server.stopping.wait(seconds_per_byte):
                    return
                self.wfile.write(response.body[n:n + 1])
                self.wfile.flush()
        except (ConnectionError, ssl.SSLError, OSError):
            pass


def _scheme(req: Request) -> str:
    scheme = req.authorization()[0]
    return scheme if scheme in ("none", "basic", "bearer") else "other"


def fault_response(fault: Fault) -> Response:
    if fault.kind == "redirect":
        return Response(302, [("Location", fault.location)], b"")
    reason = HTTPStatus(fault.status).phrase if fault.status in HTTPStatus._value2member_map_ \
        else "Error"
    body = fault.body if fault.body is not None else f"{fault.status} {reason}".encode()
    headers = [("Content-Type", fault.content_type or "text/plain; charset=utf-8")]
    if fault.retry_after is not None:
        headers.append(("Retry-After", str(fault.retry_after)))
    return Response(fault.status, headers, body)
