"""Azure Repos over git's smart HTTP protocol, served by the real `git http-backend` (CGI).

Only the authentication is Azure DevOps': HTTP Basic with any non-empty user name and either a
live PAT of the organization whose scope covers the operation, or a live Entra access token
for Azure DevOps from the organization's tenant (Bearer works too, as for git 2.46+). Anything
else gets 401 with Azure DevOps' challenge headers, so git asks its credential helpers and
sends `erase` for a rejected credential. A PAT that is valid but lacks the scope for a push
gets 403, so git does not erase it.

The request body is streamed into http-backend; git's `Content-Encoding: gzip` is passed on as
HTTP_CONTENT_ENCODING, which http-backend inflates itself, exactly as under Apache.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from tests.fakeazure.devops import (
    GIT_READ_SCOPES,
    GIT_WRITE_SCOPES,
    Caller,
    caller_for_org,
    challenge_headers,
    presented,
)
from tests.fakeazure.state import Org, State
from tests.fakeazure.web import Request, Response, text_response

Handler = Callable[[Request], Response]
CGI_TIMEOUT = 60


def _git(args: list[str], env: dict[str, str], cwd: Path | None = None,
         data: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], input=data, capture_output=True, env=env, cwd=cwd,
                          timeout=30, check=True)
    return done.stdout.decode().strip()


def git_env(home: Path) -> dict[str, str]:
    """An environment for server-side git that ignores the test runner's own git settings."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Fake Azure", "GIT_AUTHOR_EMAIL": "fake@example.invalid",
        "GIT_COMMITTER_NAME": "Fake Azure", "GIT_COMMITTER_EMAIL": "fake@example.invalid",
        "LC_ALL": "C",
    }


def create_repo(path: Path, home: Path) -> Path:
    """A bare repository with one commit on `main`, built with plumbing (fast, no work tree)."""
    env = git_env(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    _git(["init", "--quiet", "--bare", "-b", "main", str(path)], env)
    env["GIT_DIR"] = str(path)
    blob = _git(["hash-object", "-w", "--stdin"], env, data=f"# {path.stem}\n".encode())
    tree = _git(["mktree"], env, data=f"100644 blob {blob}\tREADME.md\n".encode())
    commit = _git(["commit-tree", tree, "-m", "Initial commit"], env)
    _git(["update-ref", "refs/heads/main", commit], env)
    _git(["config", "http.receivepack", "true"], env)
    return path


class GitHttp:
    """Maps Azure Repos URLs to repositories under `root` and runs http-backend for them."""

    def __init__(self, state: State, root: Path, home: Path, log: Path) -> None:
        self.state, self.root, self.home, self.log = state, root, home, log

    def repo_dir(self, org: str, project: str, repo: str) -> Path:
        return self.root / org / project / f"{repo}.git"

    def route(self, req: Request, org: Org, rest: list[str]) -> tuple[str, Handler] | None:
        """`rest` is the path after the organization: `{project}/_git/{repo}/...` or
        `_git/{repo}/...` (a repository named like its project)."""
        at = rest.index("_git")
        if at > 1 or at + 1 >= len(rest):
            return "git", lambda r: text_response("Not found", 404)
        repo_name = rest[at + 1]
        project = rest[0] if at == 1 else repo_name
        with self.state.lock:
            found = self.state.repos.get((org.name, project.lower(), repo_name.lower()))
        if found is None:
            return "git", lambda r: text_response(
                f"TF401019: The Git repository with name or identifier {repo_name} does not "
                "exist or you do not have permissions for the operation you are attempting.",
                404)
        tail = "/".join(rest[at + 2:])
        return "git", lambda r: self.serve(r, org, found, tail)

    def serve(self, req: Request, org: Org, repo: tuple[str, str, str], tail: str) -> Response:
        service = req.params().get("service", "") if tail == "info/refs" else tail
        write = service == "git-receive-pack"
        seen = presented(self.state, req)
        caller = caller_for_org(self.state, seen, org)
        if caller is None:
            response = _unauthorized(org)
            response.credential = seen.kind
            return response
        if not self.scope_allows(caller, write) and self.state.scope_refusal_status == 401:
            response = _unauthorized(org)
        elif not self.scope_allows(caller, write):
            response = text_response(
                "TF401027: You need the Git 'GenericContribute' permission to perform this "
                "action (the personal access token's scope does not allow it).", 403)
        else:
            response = self.run_backend(req, repo, tail, caller)
        response.credential, response.user = caller.kind, caller.user
        return response

    @staticmethod
    def scope_allows(caller: Caller, write: bool) -> bool:
        if caller.pat is None:
            return True  # an Entra token acts with the user's own permissions
        needed = GIT_WRITE_SCOPES if write else GIT_READ_SCOPES
        return bool(needed & set(caller.pat.scope.split()))

    def run_backend(self, req: Request, repo: tuple[str, str, str], tail: str,
                    caller: Caller) -> Response:
        org, project, name = repo
        env = git_env(self.home)
        env.update({
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{org}/{project}/{name}.git/{tail}",
            "QUERY_STRING": req.query,
            "REQUEST_METHOD": req.method,
            "CONTENT_TYPE": req.header("content-type"),
            "REMOTE_USER": caller.user,
            "REMOTE_ADDR": "127.0.0.1",
            "AUTH_TYPE": "Basic",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": req.host,
            "SERVER_PORT": "443",
        })
        if req.header("content-length") and "chunked" not in req.header(
                "transfer-encoding").lower():
            env["CONTENT_LENGTH"] = req.header("content-length")
        for header, variable in (("content-encoding", "HTTP_CONTENT_ENCODING"),
                                 ("git-protocol", "HTTP_GIT_PROTOCOL")):
            if req.header(header):
                env[variable] = req.header(header)
        with open(self.log, "ab") as errors:
            proc = subprocess.Popen(["git", "http-backend"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=errors, env=env)
            assert proc.stdin is not None and proc.stdout is not None
            stdin = proc.stdin
            feeder = threading.Thread(target=_feed, args=(req, stdin), daemon=True)
            feeder.start()
            try:
                output = proc.stdout.read()
                proc.wait(timeout=CGI_TIMEOUT)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                feeder.join(timeout=CGI_TIMEOUT)
        return parse_cgi(output)


def _unauthorized(org: Org) -> Response:
    return Response(401, [("Content-Type", "text/plain; charset=utf-8"), *challenge_headers(org)],
                    b"TF400813: The user is not authorized to access this resource.")


def _feed(req: Request, stdin: object) -> None:
    """Stream the request body into the CGI; if it exits early, discard the rest."""
    pipe = stdin  # typed loosely: a BufferedWriter
    try:
        for chunk in req.body_iter:
            pipe.write(chunk)  # type: ignore[attr-defined]
    except (BrokenPipeError, OSError):
        for _ in req.body_iter:
            pass
    finally:
        with contextlib.suppress(OSError):
            pipe.close()  # type: ignore[attr-defined]


def parse_cgi(output: bytes) -> Response:
    """CGI output: header lines, a blank line, the body; `Status:` sets the HTTP status."""
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = output.partition(b"\n\n")
    if not sep:
        return text_response("git http-backend gave no headers", 502)
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        elif key:
            headers.append((key.strip(), value.strip()))
    return Response(status, headers, body)
