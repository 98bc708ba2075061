"""Shared fixtures: an isolated HOME and git config per test, the real Secret Service, and
(imported from their modules) the local fake Azure and machines wired to it.

`tests/run` starts the suite inside a private D-Bus session with an unlocked gnome-keyring, so
the keyring tests use the real Secret Service; each test starts from an empty keyring.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.azurefixtures import azure_git_fixture  # noqa: F401 - fixtures for every test
from tests.gitenv import GitEnv
from tests.hardening import hardened_fixture  # noqa: F401
from tests.netfixtures import (  # noqa: F401
    azure_fixture,
    azure_server,
    browser_fixture,
    contoso_fixture,
    session_fixture,
    settings_fixture,
)

BIN = Path(sys.executable).parent


def _secret_service_up() -> bool:
    bus = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    return bool(bus) and shutil.which("secret-tool") is not None


@pytest.fixture
def keyring_clean() -> Iterator[None]:
    """An empty Secret Service for this test, and empty again after it."""
    if not _secret_service_up():
        pytest.skip("needs the Secret Service that tests/run starts")
    clear = ["secret-tool", "clear", "service", "git-credential-pat"]
    subprocess.run(clear, check=False, timeout=20)
    yield
    subprocess.run(clear, check=False, timeout=20)


@pytest.fixture
def genv(tmp_path: Path) -> Iterator[GitEnv]:
    """A person's machine in miniature: HOME, global git config, the helper on PATH. git's
    credential-cache daemon, if git started one under this HOME, leaves with the test."""
    env = GitEnv.create(tmp_path, BIN)
    yield env
    env.run("git", "credential-cache", "exit", check=False)


@pytest.fixture
def kenv(genv: GitEnv, keyring_clean: None) -> GitEnv:
    """The same, with the OS keyring (Secret Service) as the store."""
    return genv.with_keyring()
