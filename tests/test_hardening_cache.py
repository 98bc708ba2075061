"""Hardening of git's credential-cache in front of the helper: it never keeps answering with a
PAT the helper stopped answering with, however many repositories of the organization it holds.

git 2.39's cache erases only the first credential that matches an erase, and with
`useHttpPath` it holds one credential per repository path, under either host name.
"""

from __future__ import annotations

import pytest

from git_credential_pat.commands import configure
from tests.azurefixtures import configured
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv, parse_answer
from tests.netfixtures import Contoso

REPOS = [f"https://dev.azure.com/contoso/proj/_git/repo{n}" for n in range(4)] + [
    f"https://contoso.visualstudio.com/proj/_git/repo{n}" for n in range(4, 7)]


def cached(env: GitEnv, url: str) -> str:
    """The password git's credential-cache alone answers for `url`, or "" (nobody to prompt)."""
    done = env.git("-c", "credential.helper=", "-c", f"credential.helper={configure.CACHE[1]}",
                   "credential", "fill", input=f"url={url}\n\n", check=False)
    return parse_answer(done.stdout).get("password", "") if done.returncode == 0 else ""


@pytest.fixture
def many(genv: GitEnv, azure: FakeAzure, contoso: Contoso) -> GitEnv:
    """A machine configured as install.sh leaves it, with seven repositories of contoso
    fetched, so that git's cache holds the PAT under seven paths and both host names."""
    env = configured(genv, azure)
    for n in range(7):
        azure.add_repo("contoso", "proj", f"repo{n}")
    for url in REPOS:
        env.git("ls-remote", url)
    [pat] = azure.pats
    assert [cached(env, url) for url in REPOS] == [pat.token] * len(REPOS)
    return env


def test_after_rotate_every_cached_repository_gets_the_new_pat(
        many: GitEnv, azure: FakeAzure) -> None:
    done = many.run("git-credential-pat", "rotate", "https://dev.azure.com/contoso")
    assert done.returncode == 0
    old, new = azure.pats
    assert old.revoked
    assert [cached(many, url) for url in REPOS] == [""] * len(REPOS)
    for url in REPOS:
        fetched = many.git("ls-remote", url, check=False)
        assert fetched.returncode == 0, (url, fetched.stderr)
    assert [r for r in azure.requests_for("git") if r.status == 401 and r.credential] == []
    assert [cached(many, url) for url in REPOS] == [new.token] * len(REPOS)


@pytest.mark.parametrize("command", [["revoke", "contoso"], ["logout", "contoso"]])
def test_after_revoke_or_logout_no_cached_repository_answers(
        many: GitEnv, azure: FakeAzure, command: list[str]) -> None:
    assert many.run("git-credential-pat", *command).returncode == 0
    [pat] = azure.pats
    assert pat.revoked
    assert [cached(many, url) for url in REPOS] == [""] * len(REPOS)
