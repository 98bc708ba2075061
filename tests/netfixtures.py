"""Shared fixtures for the network-edge tests: the fake Azure, and the helper wired to it.

The helper reaches the fake the way it reaches Microsoft behind a corporate proxy: git's
`http.proxy` (the fake's CONNECT proxy) and `http.sslCAInfo` (the fake's CA), passed in
`Settings` exactly as `settings.with_http` would read them from git config. tests/conftest.py
makes the fixtures available everywhere; each is registered under its name without `_fixture`,
so that a test parameter does not shadow the function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from git_credential_pat.core.settings import Settings
from git_credential_pat.edges import http
from tests.fakeazure import FakeAzure

ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"
ORG = "contoso"
ORG_URL = f"https://dev.azure.com/{ORG}"
FOR_WHAT = f"Azure DevOps organization {ORG}"
REPO = Path(__file__).resolve().parent.parent
# Runs a command with a new pseudo-terminal as its controlling terminal, the way a person's
# shell runs git, and copies what the command writes there to stdout.
PTY_RUN = """
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@dataclass
class Contoso:
    """One Entra tenant with Alice and Bob, and the organization `contoso` it backs."""

    tenant: str
    org_id: str


@dataclass
class Lines:
    """A `Prompt` that keeps what a person would have been shown."""

    said: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.said.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.said)


@dataclass
class MemoryCache:
    """A `TokenCacheStorage` standing in for the keyring; counts the writes."""

    text: str | None = None
    saves: int = 0

    def load(self) -> str | None:
        return self.text

    def save(self, text: str) -> None:
        self.text = text
        self.saves += 1

    def refresh_tokens(self) -> list[str]:
        """The refresh tokens msal keeps in the cache."""
        entries = json.loads(self.text or "{}").get("RefreshToken", {}).values()
        return [entry["secret"] for entry in entries]


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAzure]:
    with FakeAzure(tmp_path_factory.mktemp("fakeazure")) as fake:
        yield fake


@pytest.fixture(name="azure")
def azure_fixture(azure_server: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> FakeAzure:
    """The fake, emptied; the environment's own proxies cannot reach around it."""
    azure_server.reset()
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return azure_server


@pytest.fixture(name="contoso")
def contoso_fixture(azure: FakeAzure) -> Contoso:
    tenant = azure.add_tenant()
    azure.add_user(ALICE, tenant, name="Alice Example")
    azure.add_user(BOB, tenant)
    org = azure.add_org(ORG, tenant)
    return Contoso(tenant, org.id)


def settings_for(azure: FakeAzure, **values: object) -> Settings:
    """Settings as `with_http` leaves them for a machine whose git config points at the fake."""
    defaults: dict[str, object] = {"proxy": azure.proxy_url, "ca_file": str(azure.ca_path),
                                   "timeout": 10.0, "signin_timeout": 20.0}
    return Settings(**{**defaults, **values})


@pytest.fixture(name="settings")
def settings_fixture(azure: FakeAzure) -> Settings:
    return settings_for(azure)


@pytest.fixture(name="session")
def session_fixture(settings: Settings) -> Iterator[requests.Session]:
    with http.new_session(settings) as made:
        yield made


@pytest.fixture(name="browser")
def browser_fixture(azure: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A desktop whose browser is the fake's; returns the environment to hand to `SignIn`.

    The fake browser runs as a child of this process and reaches the fake through the proxy
    and CA named in this process's environment. `webbrowser` caches its choice of browser, so
    that cache is cleared for the test.
    """
    env = azure.with_client_env(os.environ, browser=True)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    return env


def headless_env(**extra: str) -> dict[str, str]:
    """An environment with no display and no browser: a server, a container, CI (and not
    logged in over SSH, whatever the test runner is)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "GIT_TERMINAL_PROMPT",
                        "SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT")}
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str], *, tty: bool, timeout: float = 60
               ) -> subprocess.CompletedProcess[str]:
    """Run Python code as its own process, at a terminal or (tty=False) with no controlling
    terminal at all, as under an IDE or a CI runner."""
    command = [sys.executable, "-c", code]
    if tty:
        command = [sys.executable, "-c", PTY_RUN, *command]
    return subprocess.run(command, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=timeout, start_new_session=True, check=False,
                          stdin=subprocess.DEVNULL)
