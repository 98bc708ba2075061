"""`git clone` and `git push` against a Basic-auth smart-HTTP server: one prompt, then the keyring
answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.basicgit import BasicGitServer
from tests.gitenv import GitEnv


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BasicGitServer]:
    with BasicGitServer(tmp_path / "srv", "alice", "first-password") as srv:
        srv.add_repo("project")
        yield srv


@pytest.fixture
def user(kenv: GitEnv, tmp_path: Path) -> GitEnv:
    """A person whose git uses the helper and who answers prompts from `answers`."""
    prompts = tmp_path / "prompts.log"
    askpass = tmp_path / "askpass"
    askpass.write_text(
        "#!/bin/sh\n"
        f'echo "$1" >> {prompts}\n'
        'case "$1" in Username*) echo alice;; *) cat "$ANSWER_FILE";; esac\n'
    )
    askpass.chmod(0o755)
    (tmp_path / "answer").write_text("first-password\n")
    kenv.env.update(GIT_ASKPASS=str(askpass), ANSWER_FILE=str(tmp_path / "answer"))
    kenv.config("credential.helper", "pat")
    kenv.prompts = prompts  # type: ignore[attr-defined]
    return kenv


def prompt_count(env: GitEnv) -> int:
    log: Path = env.prompts  # type: ignore[attr-defined]
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_clone_prompts_once_then_clones_and_pushes_from_the_keyring(
        user: GitEnv, server: BasicGitServer) -> None:
    url = f"{server.url}/project.git"
    user.git("clone", url, "one")
    assert prompt_count(user) == 2  # user name and password, once
    user.git("clone", url, "two")
    work = user.home / "two"
    (work / "change.txt").write_text("hello\n")
    user.git("add", "change.txt", cwd=work)
    user.git("commit", "-m", "change", cwd=work)
    user.git("push", "origin", "HEAD:main", cwd=work)
    assert prompt_count(user) == 2
    user.git("pull", cwd=user.home / "one")
    assert (user.home / "one" / "change.txt").read_text() == "hello\n"
    assert prompt_count(user) == 2


def test_a_changed_server_password_is_erased_and_asked_for_again(
        user: GitEnv, server: BasicGitServer, tmp_path: Path) -> None:
    url = f"{server.url}/project.git"
    user.git("clone", url, "one")
    server.password = "second-password"
    failed = user.git("fetch", cwd=user.home / "one", check=False)
    assert failed.returncode != 0
    assert server.auth_failures >= 1
    assert user.helper("get", "protocol=http\nhost=" + url.split("/")[2] + "\n\n").stdout == b""
    (tmp_path / "answer").write_text("second-password\n")
    user.git("fetch", cwd=user.home / "one")
    user.git("fetch", cwd=user.home / "one")
    assert prompt_count(user) == 4
