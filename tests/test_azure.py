"""The product end to end: real git, msal and requests against the local fake Azure.

git talks to `https://dev.azure.com/...` through the fake's proxy and trusts its CA through
`http.sslCAInfo`; the helper reads the same git config, as it would behind a corporate proxy.
Sign-in uses the fake's browser (a real loopback redirect into msal's listener).
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
from pathlib import Path

import pytest

from git_credential_pat.commands import configure
from tests.azurefixtures import REPO_URL, at_fake_time, configured
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv, parse_answer
from tests.netfixtures import ALICE, BOB, Contoso

DAY = 86400


@pytest.fixture
def aenv(genv: GitEnv, azure: FakeAzure, contoso: Contoso) -> GitEnv:
    """A new machine with the helper configured as install.sh does, whose network is the fake."""
    return configured(genv, azure)


def stored(env: GitEnv) -> dict:
    from git_credential_pat.core import entries

    data = entries.parse_json(env.store_file.read_text())
    return entries.parse_json(data["https://dev.azure.com/contoso"])


def test_first_clone_signs_in_once_and_mints_one_scoped_org_pat(
        aenv: GitEnv, azure: FakeAzure) -> None:
    done = aenv.git("clone", REPO_URL, "repo")
    [said] = [line for line in done.stderr.decode().splitlines() if "git-credential-pat" in line]
    assert said.startswith("git-credential-pat: opening a browser to sign in for Azure DevOps "
                           "organization contoso: https://login.microsoftonline.com/")
    assert (aenv.home / "repo" / "README.md").exists()
    [pat] = azure.pats
    assert pat.org == "contoso" and pat.user == ALICE and not pat.all_orgs
    assert pat.scope == "vso.code_write"
    assert abs((pat.valid_to - pat.valid_from) - 30 * DAY) < 120
    assert pat.display_name.startswith("git-credential-pat: contoso on ")
    assert azure.authorize_count == 1
    entry = stored(aenv)["credentials"][0]
    assert entry["password"] == pat.token and entry["username"] == ALICE


def test_later_clones_and_pushes_mint_nothing_and_do_not_sign_in(
        aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.git("clone", REPO_URL, "one")
    grants = sum(azure.grants.values())
    aenv.git("clone", "https://contoso.visualstudio.com/proj/_git/repo", "two")
    work = aenv.home / "two"
    (work / "file.txt").write_text("change\n")
    aenv.git("add", "file.txt", cwd=work)
    aenv.git("commit", "-m", "change", cwd=work)
    aenv.git("push", "origin", "HEAD:main", cwd=work)
    aenv.git("pull", cwd=aenv.home / "one")
    assert (aenv.home / "one" / "file.txt").exists()
    assert azure.minted_count() == 1
    assert azure.authorize_count == 1
    assert sum(azure.grants.values()) == grants


def test_sixteen_parallel_fetches_on_a_cold_keyring_mint_one_pat(
        aenv: GitEnv, azure: FakeAzure) -> None:
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        runs = list(pool.map(lambda _: aenv.git("ls-remote", REPO_URL, check=False), range(16)))
    assert [r.returncode for r in runs] == [0] * 16
    assert azure.minted_count() == 1
    assert azure.authorize_count == 1


def cached(env: GitEnv, url: str, cache: str = configure.CACHE[1]) -> dict[str, str]:
    """What git's credential-cache, which install.sh puts in front of the helper, would answer:
    git asked with that cache as its only helper, and no one to prompt."""
    done = env.git("-c", "credential.helper=", "-c", f"credential.helper={cache}",
                   "credential", "fill", input=f"url={url}\n\n", check=False)
    return parse_answer(done.stdout) if done.returncode == 0 else {}


def git_auth_failures(azure: FakeAzure) -> list[object]:
    return [r for r in azure.requests_for("git") if r.status == 401 and r.credential]


def test_a_pat_near_expiry_is_rotated_without_a_failed_request(
        aenv: GitEnv, azure: FakeAzure) -> None:
    other = "https://dev.azure.com/contoso/proj/_git/other"
    azure.add_repo("contoso", "proj", "other")
    aenv.git("ls-remote", REPO_URL)
    aenv.git("ls-remote", other)
    [old] = azure.pats
    assert cached(aenv, other)["password"] == old.token
    azure.advance(days=25)
    later = at_fake_time(azure)
    # git's cache answers with the old PAT, still good for days; handed it back after the
    # fetch, the helper sees the rotation due and takes it out of the cache.
    aenv.git("ls-remote", REPO_URL, extra_env=later)
    assert azure.minted_count() == 1 and cached(aenv, REPO_URL) == {}
    aenv.git("ls-remote", REPO_URL, extra_env=later)
    assert azure.minted_count() == 2
    new = azure.pats[1]
    assert azure.pats[0].revoked and not new.revoked
    assert stored(aenv)["credentials"][0]["password"] == new.token
    # The other repository's cached copy of the revoked PAT went with the rotation.
    aenv.git("ls-remote", other, extra_env=later)
    assert cached(aenv, other)["password"] == new.token
    assert git_auth_failures(azure) == []
    aenv.git("ls-remote", REPO_URL, extra_env=later)
    assert azure.minted_count() == 2


def test_azure_s_own_clone_url_is_answered_from_git_s_cache_after_the_first_fetch(
        aenv: GitEnv, azure: FakeAzure) -> None:
    clone_url = "https://contoso@dev.azure.com/contoso/proj/_git/repo"  # as the Clone button has it
    aenv.git("ls-remote", clone_url)
    assert cached(aenv, clone_url)["password"] == azure.pats[0].token
    again = aenv.git("ls-remote", clone_url, extra_env={"GIT_TRACE": "1"})
    assert b"credential-cache --timeout=900 get" in again.stderr
    assert b"credential-pat get" not in again.stderr
    assert azure.minted_count() == 1 and git_auth_failures(azure) == []


SOCKET = "~/.cache/git-credential-pat-test/socket"


@pytest.mark.parametrize("cache", [f"cache --timeout=900 --socket {SOCKET}",
                                   "!git credential-cache --timeout=900"])
def test_a_cache_written_another_way_is_used_and_kept_truthful_too(
        genv: GitEnv, azure: FakeAzure, contoso: Contoso, cache: str) -> None:
    configured(genv, azure, cache)
    try:
        genv.git("ls-remote", REPO_URL)
        assert cached(genv, REPO_URL, cache)["password"] == azure.pats[0].token
        [org] = json.loads(genv.run("git-credential-pat", "status", "--json").stdout)[
            "organizations"]
        assert org["git_uses_helper"]
        genv.run("git-credential-pat", "revoke", "contoso")
        assert cached(genv, REPO_URL, cache) == {}
    finally:
        genv.run("sh", "-c", f"git credential-cache --socket {SOCKET} exit", check=False)


def test_a_fetch_that_began_before_a_rotation_does_not_undo_it(
        aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.git("ls-remote", REPO_URL)
    in_flight = aenv.fill(REPO_URL)
    assert aenv.run("git-credential-pat", "rotate", "https://dev.azure.com/contoso").returncode == 0
    old, new = azure.pats
    assert old.token == in_flight["password"]
    # That fetch succeeds with the old PAT just before the revocation, and git hands it back.
    approve = "".join(f"{k}={v}\n" for k, v in in_flight.items() if k != "password_expiry_utc")
    aenv.run("git", "credential", "approve", input=approve + "\n")
    assert stored(aenv)["credentials"][0]["password"] == new.token
    assert cached(aenv, REPO_URL) == {}
    aenv.git("ls-remote", REPO_URL)
    assert git_auth_failures(azure) == [] and azure.minted_count() == 2


def test_revoke_and_logout_take_the_pat_out_of_git_s_cache(
        aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.git("ls-remote", REPO_URL)
    assert cached(aenv, REPO_URL)["password"] == azure.pats[0].token
    aenv.run("git-credential-pat", "revoke", "contoso")
    assert cached(aenv, REPO_URL) == {}
    aenv.git("ls-remote", REPO_URL)
    assert cached(aenv, REPO_URL)["password"] == azure.pats[1].token
    aenv.run("git-credential-pat", "logout", "contoso")
    assert cached(aenv, REPO_URL) == {}
    assert git_auth_failures(azure) == []


def test_without_the_cache_the_first_fetch_in_the_window_rotates(
        genv: GitEnv, azure: FakeAzure, contoso: Contoso) -> None:
    configured(genv, azure)
    genv.run("git-credential-pat", "configure", "--no-cache")
    genv.git("ls-remote", REPO_URL)
    azure.advance(days=25)
    genv.git("ls-remote", REPO_URL, extra_env=at_fake_time(azure))
    assert azure.minted_count() == 2 and azure.pats[0].revoked
    assert git_auth_failures(azure) == []


@pytest.mark.parametrize("user", ["", "contoso@"])
def test_a_pat_revoked_on_the_server_fails_once_then_a_fresh_one_is_minted(
        aenv: GitEnv, azure: FakeAzure, user: str) -> None:
    repo = f"https://{user}dev.azure.com/contoso/proj/_git/repo"
    other = f"https://{user}dev.azure.com/contoso/proj/_git/other"
    azure.add_repo("contoso", "proj", "other")
    aenv.git("ls-remote", repo)
    aenv.git("ls-remote", other)
    [first] = azure.pats
    azure.revoke_pat(first.authorization_id)
    failed = aenv.git("ls-remote", repo, check=False)
    assert failed.returncode != 0
    assert stored(aenv)["credentials"] == []
    # git erased the refused PAT from its cache for this repository; the helper, for the rest.
    assert cached(aenv, other) == {}
    aenv.git("ls-remote", other)
    assert azure.minted_count() == 2
    assert stored(aenv)["credentials"][0]["password"] == azure.pats[1].token
    assert len(git_auth_failures(azure)) == 1


REFUSED = ("git-credential-pat: the PAT for contoso was refused (revoked, expired or out of "
           "scope); it is forgotten, and the next git command gets a new one")


def test_a_pat_refused_by_the_server_is_explained_in_one_line(
        aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.git("ls-remote", REPO_URL)
    azure.revoke_pat(azure.pats[0].authorization_id)
    failed = aenv.git("ls-remote", REPO_URL, check=False)
    said = [line for line in failed.stderr.decode().splitlines() if "git-credential-pat" in line]
    assert failed.returncode != 0 and said == [REFUSED]
    again = aenv.git("ls-remote", REPO_URL)
    assert b"git-credential-pat" not in again.stderr and azure.minted_count() == 2


def test_an_erase_without_a_password_forgets_but_revokes_nothing(
        aenv: GitEnv, azure: FakeAzure) -> None:
    """A tool's `git credential reject` names no password: nothing git saw refused."""
    aenv.fill(REPO_URL)
    done = aenv.git("credential", "reject", input=f"url={REPO_URL}\n\n")
    assert stored(aenv)["credentials"] == [] and b"git-credential-pat" not in done.stderr
    assert not azure.pats[0].revoked
    aenv.fill(REPO_URL)  # a new PAT; the forgotten one is now an orphan, and its sweep revokes it
    assert azure.pats[0].revoked and not azure.pats[1].revoked


READ_ONLY = ("git-credential-pat: the PAT for contoso can fetch but not push (scope vso.code); "
             "to push, run: git config --global credential.https://dev.azure.com/contoso.patScope "
             "vso.code_write, then: git credential-pat login --scope vso.code_write "
             "https://dev.azure.com/contoso")


def test_a_pat_that_may_only_read_is_kept_when_a_push_is_refused(
        aenv: GitEnv, azure: FakeAzure) -> None:
    """Azure DevOps answers a push with a read-only PAT with 401, and git erases it: the PAT
    still fetches, so it stays, and the person learns how to get one that pushes."""
    azure.refuse_scope_with(401)
    aenv.config("credential.https://dev.azure.com/contoso.patScope", "vso.code")
    aenv.git("clone", REPO_URL, "work")
    work = aenv.home / "work"
    for n in range(3):
        aenv.git("commit", "-q", "--allow-empty", "-m", f"change {n}", cwd=work)
        push = aenv.git("push", "origin", "HEAD:main", cwd=work, check=False)
        said = [line for line in push.stderr.decode().splitlines() if "git-credential-pat" in line]
        assert push.returncode != 0 and said == [READ_ONLY], push.stderr
    [pat] = azure.pats
    assert not pat.revoked and stored(aenv)["credentials"][0]["password"] == pat.token
    aenv.git("fetch", cwd=work)
    assert azure.minted_count() == 1


def test_when_the_org_forbids_pats_git_gets_the_access_token_and_is_told_once(
        aenv: GitEnv, azure: FakeAzure) -> None:
    azure.policy("contoso", disable_creation=True)
    first = aenv.git("ls-remote", REPO_URL)
    second = aenv.git("ls-remote", REPO_URL)
    assert azure.minted_count() == 0
    assert b"instead of a PAT" in first.stderr
    assert b"instead of a PAT" not in second.stderr
    credentials = [r.credential for r in azure.requests_for("git") if r.status == 200]
    assert credentials and set(credentials) == {"entra"}
    item = stored(aenv)
    assert item["credentials"] == [] and "eyJ" not in str(item)
    assert cached(aenv, REPO_URL) == {}


def test_a_lifespan_cap_is_met_with_a_shorter_pat_that_is_not_rotated_at_once(
        aenv: GitEnv, azure: FakeAzure) -> None:
    azure.policy("contoso", max_lifespan_days=7)
    aenv.git("ls-remote", REPO_URL)
    aenv.git("ls-remote", REPO_URL)
    [pat] = azure.pats
    assert pat.valid_to - pat.valid_from <= 7 * DAY
    assert azure.minted_count() == 1


def test_two_organizations_in_two_tenants_get_their_own_account_and_pat(
        aenv: GitEnv, azure: FakeAzure) -> None:
    other = azure.add_tenant()
    azure.add_user("carol@fabrikam.com", other)
    azure.add_org("fabrikam", other)
    azure.add_repo("fabrikam", "proj", "repo")
    aenv.git("ls-remote", REPO_URL)
    aenv.git("ls-remote", "https://dev.azure.com/fabrikam/proj/_git/repo")
    by_org = {p.org: p.user for p in azure.pats}
    assert by_org == {"contoso": ALICE, "fabrikam": "carol@fabrikam.com"}
    assert azure.authorize_count == 2


def test_an_account_in_the_remote_url_picks_the_account(aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.git("ls-remote", "https://bob%40contoso.com@dev.azure.com/contoso/proj/_git/repo")
    assert [p.user for p in azure.pats] == [BOB]


def test_full_scope_only_when_asked(aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.config("credential.https://dev.azure.com/contoso.patScope", "vso.code")
    aenv.git("ls-remote", REPO_URL)
    assert [p.scope for p in azure.pats] == ["vso.code"]


def test_without_a_person_to_sign_in_it_fails_fast_and_says_what_to_run(
        aenv: GitEnv, azure: FakeAzure) -> None:
    """As under an IDE or CI: no terminal (a new session has none), no browser, no display."""
    headless = {k: v for k, v in aenv.env.items() if k not in ("BROWSER", "DISPLAY")}
    started = time.monotonic()
    done = subprocess.run(["git", "ls-remote", REPO_URL], env=headless, cwd=aenv.home,
                          capture_output=True, timeout=60, start_new_session=True,
                          stdin=subprocess.DEVNULL, check=False)
    assert time.monotonic() - started < 30  # a guard against hanging, not a speed target
    assert done.returncode != 0
    assert b"git credential-pat login https://dev.azure.com/contoso" in done.stderr
    assert azure.minted_count() == 0 and azure.authorize_count == 0


def test_a_sign_in_nobody_completes_names_the_next_step_and_git_prompts_for_nothing(
        aenv: GitEnv, azure: FakeAzure, tmp_path: Path) -> None:
    """A browser that never appears: after patSigninTimeout the helper says what to run, and
    git, told to stop, asks nobody for a user name and password (unless patGitPrompt)."""
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass"
    askpass.write_text(f'#!/bin/sh\necho "$1" >> "{asked}"\necho typed\n')
    askpass.chmod(0o755)
    env = {k: v for k, v in aenv.env.items() if k != "GIT_TERMINAL_PROMPT"}
    env.update(BROWSER="true %s", GIT_ASKPASS=str(askpass),
               GIT_CREDENTIAL_PAT_SIGNIN_TIMEOUT="2")

    def ls_remote() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", "ls-remote", REPO_URL], env=env, cwd=aenv.home,
                              capture_output=True, timeout=60, start_new_session=True,
                              stdin=subprocess.DEVNULL, check=False)

    done = ls_remote()
    said = [line for line in done.stderr.decode().splitlines() if "git-credential-pat" in line]
    assert done.returncode != 0 and said[-1] == (
        "git-credential-pat: sign-in for Azure DevOps organization contoso was not completed "
        "within 2 seconds; to try again, run: git credential-pat login --device-code "
        "https://dev.azure.com/contoso"), said
    assert not asked.exists() and azure.minted_count() == 0
    env["GIT_CREDENTIAL_PAT_GIT_PROMPT"] = "true"
    assert ls_remote().returncode != 0
    assert asked.read_text().startswith("Username for 'https://dev.azure.com")


def test_a_pipeline_token_is_used_as_given_and_never_stored(
        aenv: GitEnv, azure: FakeAzure) -> None:
    token = azure.issue_access_token(ALICE)
    pipeline = {"SYSTEM_ACCESSTOKEN": token,
                "SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/"}
    aenv.git("ls-remote", REPO_URL, extra_env=pipeline)
    assert azure.minted_count() == 0 and azure.authorize_count == 0
    assert not aenv.store_file.exists() or token not in aenv.store_file.read_text()
    assert cached(aenv, REPO_URL) == {}


def test_a_token_provided_later_takes_over_from_a_cached_pat_after_one_fetch(
        aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.git("ls-remote", REPO_URL)
    pipeline = {"SYSTEM_ACCESSTOKEN": azure.issue_access_token(ALICE),
                "SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/"}
    aenv.git("ls-remote", REPO_URL, extra_env=pipeline)  # git's cache answers before the helper
    assert cached(aenv, REPO_URL) == {}
    aenv.git("ls-remote", REPO_URL, extra_env=pipeline)
    assert azure.requests_for("git")[-1].credential == "entra"
    assert azure.minted_count() == 1


def test_get_answers_with_expiry_for_git_to_use(aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.git("ls-remote", REPO_URL)
    answer = parse_answer(aenv.helper("get", "protocol=https\nhost=dev.azure.com\n"
                                             "path=contoso/proj/_git/repo\n\n").stdout)
    [pat] = azure.pats
    assert answer == {"username": ALICE, "password": pat.token,
                      "password_expiry_utc": str(int(pat.valid_to))}
