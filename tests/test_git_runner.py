"""The one way the helper runs git: its answer, its complaint in one line, and a bound on the
wait, whatever git does (missing, failing, hanging, reading its input slowly)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import git


@pytest.fixture(autouse=True)
def default_timeout() -> Iterator[None]:
    yield
    git.set_timeout(git.DEFAULT_TIMEOUT)


def fake_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A `git` first on PATH that runs `script` instead."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "git"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_git_s_output_and_input_pass_through_unchanged() -> None:
    text = "line one\nünïcödé\n" + "x" * 200_000  # more than a pipe holds at once
    digest = git.run("hash-object", "--stdin", stdin=text).strip()
    assert digest == git.run("hash-object", "--stdin", stdin=text).strip()
    assert len(digest) == 40
    assert git.run("--version").startswith("git version ")


def test_a_failure_is_git_s_own_first_line() -> None:
    with pytest.raises(HelperError) as caught:
        git.run("no-such-command")
    assert str(caught.value) == ("git: 'no-such-command' is not a git command. "
                                 "See 'git --help'.")


def test_an_exit_status_the_caller_expects_is_no_failure(tmp_path: Path) -> None:
    assert git.run("config", "--file", str(tmp_path / "none"), "--get", "x.y", ok=(0, 1)) == ""


def test_a_failure_without_words_names_the_command_and_status(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_git(tmp_path, monkeypatch, "exit 3")
    with pytest.raises(HelperError, match=r"^`git config` failed \(exit status 3\)$"):
        git.run("config", "--list")


def test_control_characters_in_git_s_complaint_are_escaped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_git(tmp_path, monkeypatch, r"printf 'fatal: \033]0;title\007 bad\n' >&2; exit 128")
    with pytest.raises(HelperError) as caught:
        git.run("config", "--list")
    assert str(caught.value) == r"fatal: \x1b]0;title\x07 bad"


def test_no_git_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HelperError, match=r"^git is not installed or not on PATH$"):
        git.run("--version")


@pytest.mark.parametrize("script", [
    "sleep 30",  # hangs before answering
    "echo partial; sleep 30",  # hangs after part of an answer
    "exec 1>&- 2>&-; sleep 30",  # closes its output, then does not exit
])
def test_a_hanging_git_is_stopped_at_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               script: str) -> None:
    fake_git(tmp_path, monkeypatch, script)
    git.set_timeout(0.5)
    started = time.monotonic()
    with pytest.raises(HelperError, match=r"^`git config` did not finish within 0\.5 s "
                                          r"\(set credential\.patGitTimeout"):
        git.run("config", "--list")
    assert time.monotonic() - started < 5


def test_config_section_is_what_git_says_applies_to_the_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text('[credential "https://dev.azure.com/contoso"]\n\tpatScope = vso.code\n'
                      '[credential]\n\tpatLifespanDays = 9\n'
                      '[credential "https://other.example"]\n\tpatScope = nope\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert git.config_section("credential", "https://dev.azure.com/contoso/p/_git/r") == {
        "credential.patscope": "vso.code", "credential.patlifespandays": "9"}
    assert git.config_section("credential", "https://nothing.example") == {
        "credential.patlifespandays": "9"}
