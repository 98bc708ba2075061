"""A plain smart-HTTP git server on loopback that demands HTTP Basic auth: any HTTPS host that
is not Azure DevOps, from the helper's point of view (an Azure DevOps Server, a Gitea, ...)."""

from __future__ import annotations

import base64
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.fakeazure.githttp import create_repo, git_env, parse_cgi


class BasicGitServer:
    """Serves `root/{name}.git`; `password` can be changed to make git's stored one stale."""

    def __init__(self, root: Path, username: str, password: str) -> None:
        self.root, self.username, self.password = root, username, password
        self.auth_failures = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add_repo(self, name: str) -> Path:
        return create_repo(self.root / f"{name}.git", self.root)

    def __enter__(self) -> BasicGitServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def authorized(self, header: str) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if not self.authorized(request.headers.get("Authorization", "")):
            self.auth_failures += bool(request.headers.get("Authorization"))
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="git"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        path, _, query = request.path.partition("?")
        env = git_env(self.root)
        env.update(GIT_PROJECT_ROOT=str(self.root), GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=request.command, REMOTE_USER=self.username,
                   CONTENT_TYPE=request.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)),
                   HTTP_CONTENT_ENCODING=request.headers.get("Content-Encoding", ""))
        output = subprocess.run(["git", "http-backend"], input=body, capture_output=True,
                                env=env, timeout=60, check=False).stdout
        response = parse_cgi(output)
        request.send_response(response.status)
        for name, value in response.headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(response.body)))
        request.end_headers()
        request.wfile.write(response.body)
