"""What the real service does to a sign-in, through real git: revoked sessions, Continuous
Access Evaluation, a second tenant, an organization that moves to another tenant.

Each test signs in once the usual way (the fake's browser), then lets Entra or Azure DevOps
change its mind, and then runs git as a person or an IDE would. What counts is what git and
the person see: whether the fetch works, the one line on stderr, how often a person was asked
(the fake's authorize count), and that git was never handed a token the service refused
(the fake records what each git request authenticated with).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from git_credential_pat.core import entries
from tests.azurefixtures import REPO_URL, configured
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv
from tests.netfixtures import ALICE, Contoso

NORTHWIND_URL = "https://dev.azure.com/northwind/proj/_git/repo"


@pytest.fixture
def aenv(genv: GitEnv, azure: FakeAzure, contoso: Contoso) -> GitEnv:
    """A machine set up as install.sh leaves it, signed in once (contoso's PAT minted), with
    a second organization, northwind, in the same tenant and not used yet."""
    env = configured(genv, azure)
    azure.add_org("northwind", contoso.tenant)
    azure.add_repo("northwind", "proj", "repo")
    env.git("ls-remote", REPO_URL)
    assert azure.authorize_count == 1 and azure.minted_count() == 1
    return env


def headless(env: GitEnv, *args: str) -> subprocess.CompletedProcess[bytes]:
    """git as an IDE or CI runs it: no terminal (a new session has none), no browser, no
    display, and GIT_TERMINAL_PROMPT=0 (GitEnv sets it)."""
    quiet = {k: v for k, v in env.env.items() if k not in ("BROWSER", "DISPLAY")}
    started = time.monotonic()
    done = subprocess.run(["git", *args], env=quiet, cwd=env.home, capture_output=True,
                          timeout=60, start_new_session=True, stdin=subprocess.DEVNULL,
                          check=False)
    assert time.monotonic() - started < 30  # a guard against hanging, not a speed target
    return done


def entra_tokens_given_to_git(azure: FakeAzure) -> list[object]:
    return [r for r in azure.requests_for("git") if r.credential == "entra"]


def refused_entra_tokens(azure: FakeAzure) -> list[object]:
    return [r for r in azure.requests_for("git") if r.credential == "entra" and r.status == 401]


def helper_lines(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    return [line for line in done.stderr.decode().splitlines() if "git-credential-pat" in line]


def stored_org(env: GitEnv, org: str = "contoso") -> dict:
    data = entries.parse_json(env.store_file.read_text())
    return entries.org_of(entries.load(data[f"https://dev.azure.com/{org}"]))


def test_after_a_cae_event_a_fetch_nobody_watches_recovers_silently_and_mints(
        aenv: GitEnv, azure: FakeAzure) -> None:
    azure.cae_event(ALICE)
    done = headless(aenv, "ls-remote", NORTHWIND_URL)
    assert done.returncode == 0, done.stderr.decode()
    assert helper_lines(done) == []
    assert [p.org for p in azure.live_pats()] == ["contoso", "northwind"]
    assert azure.authorize_count == 1  # nobody was asked
    # The stale token met the challenge once; the one with its claims went through.
    assert [r.status for r in azure.requests_for("pat_create")] == [200, 401, 200]
    assert entra_tokens_given_to_git(azure) == []


def test_after_revoked_sessions_a_fetch_nobody_watches_fails_fast_naming_login(
        aenv: GitEnv, azure: FakeAzure) -> None:
    azure.revoke_sessions(ALICE)
    done = headless(aenv, "ls-remote", NORTHWIND_URL)
    assert done.returncode != 0
    assert helper_lines(done) == [
        "git-credential-pat: sign-in needed for Azure DevOps organization northwind; "
        "run: git credential-pat login https://dev.azure.com/northwind"]
    assert entra_tokens_given_to_git(azure) == []  # never the refused token
    assert azure.minted_count() == 1 and azure.authorize_count == 1
    # The refused token is gone from the sign-in cache: the next try refuses at once too.
    again = headless(aenv, "ls-remote", NORTHWIND_URL)
    assert again.returncode != 0 and len(azure.requests_for("pat_create")) == 2
    assert entra_tokens_given_to_git(azure) == []


def test_after_revoked_sessions_a_person_signs_in_once_more_and_it_works(
        aenv: GitEnv, azure: FakeAzure) -> None:
    azure.revoke_sessions(ALICE)
    done = aenv.git("ls-remote", NORTHWIND_URL)
    [opening] = helper_lines(done)
    assert opening.startswith("git-credential-pat: opening a browser to sign in for Azure "
                              f"DevOps organization northwind as {ALICE}: https://")
    assert azure.authorize_count == 2
    assert [p.org for p in azure.live_pats()] == ["contoso", "northwind"]
    assert entra_tokens_given_to_git(azure) == []
    aenv.git("ls-remote", NORTHWIND_URL)
    assert azure.authorize_count == 2 and azure.minted_count() == 2


def test_a_command_after_a_cae_event_recovers_silently(aenv: GitEnv, azure: FakeAzure) -> None:
    azure.cae_event(ALICE)
    done = aenv.run("git-credential-pat", "list", "contoso", "--json", check=False,
                    extra_env={"BROWSER": ""})
    assert done.returncode == 0, done.stderr.decode()
    [pat] = json.loads(done.stdout)["pats"]
    assert pat["in_use"] and azure.authorize_count == 1


def test_a_second_tenant_needs_no_second_sign_in(aenv: GitEnv, azure: FakeAzure) -> None:
    fabrikam = azure.add_tenant()
    azure.add_guest(ALICE, fabrikam)
    azure.add_org("fabrikam", fabrikam)
    azure.add_repo("fabrikam", "proj", "repo")
    done = headless(aenv, "ls-remote", "https://dev.azure.com/fabrikam/proj/_git/repo")
    assert done.returncode == 0, done.stderr.decode()
    assert {(p.org, p.user) for p in azure.live_pats()} == {("contoso", ALICE),
                                                            ("fabrikam", ALICE)}
    assert azure.authorize_count == 1
    assert stored_org(aenv, "fabrikam") == {"tenant": fabrikam, "account": ALICE}


def test_an_organization_that_moved_to_another_tenant_recovers(
        aenv: GitEnv, azure: FakeAzure, contoso: Contoso) -> None:
    assert stored_org(aenv)["tenant"] == contoso.tenant
    moved = azure.add_tenant()
    azure.add_guest(ALICE, moved)
    azure.move_org("contoso", moved)
    refused = headless(aenv, "ls-remote", REPO_URL)  # the PAT from before the move
    assert refused.returncode != 0
    done = headless(aenv, "ls-remote", REPO_URL)
    assert done.returncode == 0, done.stderr.decode()
    [pat] = azure.live_pats()
    assert (pat.org, pat.user) == ("contoso", ALICE)
    assert stored_org(aenv)["tenant"] == moved
    assert azure.authorize_count == 1 and entra_tokens_given_to_git(azure) == []


def test_rotate_after_the_organization_moved_mints_in_the_new_tenant(
        aenv: GitEnv, azure: FakeAzure) -> None:
    moved = azure.add_tenant()
    azure.add_guest(ALICE, moved)
    azure.move_org("contoso", moved)
    done = aenv.run("git-credential-pat", "rotate", "contoso", check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"refuses PATs" not in done.stderr and b"instead of a PAT" not in done.stderr
    [pat] = azure.live_pats()
    assert stored_org(aenv)["tenant"] == moved and azure.authorize_count == 1
    aenv.git("ls-remote", REPO_URL)
    last = azure.requests_for("git")[-1]
    assert (last.status, last.credential, last.user) == (200, "pat", pat.user)


def test_a_pinned_tenant_the_organization_has_left_is_named_not_changed(
        aenv: GitEnv, azure: FakeAzure, contoso: Contoso) -> None:
    setting = "credential.https://dev.azure.com/northwind.patTenant"
    aenv.config(setting, contoso.tenant)
    moved = azure.add_tenant()
    azure.add_guest(ALICE, moved)
    azure.move_org("northwind", moved)
    done = headless(aenv, "ls-remote", NORTHWIND_URL)
    assert done.returncode != 0
    assert helper_lines(done) == [
        f"git-credential-pat: the organization northwind signs in with the Entra tenant {moved} "
        f"now, not {contoso.tenant}; change or unset {setting}"]
    assert entra_tokens_given_to_git(azure) == [] and azure.minted_count() == 1


def test_doctor_flags_a_cached_tenant_the_organization_has_left(
        aenv: GitEnv, azure: FakeAzure, contoso: Contoso) -> None:
    healthy = json.loads(aenv.run("git-credential-pat", "doctor", "--json", check=False).stdout)
    [check] = [c for c in healthy["checks"] if c["name"] == "tenant contoso"]
    assert check["level"] == "ok"
    moved = azure.add_tenant()
    azure.move_org("contoso", moved)
    done = aenv.run("git-credential-pat", "doctor", check=False)
    [line] = [line for line in done.stdout.decode().splitlines() if "tenant contoso" in line]
    assert line.startswith("warn") and moved in line and contoso.tenant in line
    assert "git credential-pat rotate https://dev.azure.com/contoso" in done.stdout.decode()


def test_an_entra_token_git_saw_refused_is_not_handed_back(
        aenv: GitEnv, azure: FakeAzure) -> None:
    aenv.config("credential.https://dev.azure.com/northwind.patMode", "oauth")
    aenv.git("ls-remote", NORTHWIND_URL)
    assert entra_tokens_given_to_git(azure)
    azure.revoke_sessions(ALICE)
    refused = headless(aenv, "ls-remote", NORTHWIND_URL)  # git sees the token refused
    assert refused.returncode != 0 and len(refused_entra_tokens(azure)) == 1
    again = headless(aenv, "ls-remote", NORTHWIND_URL)
    assert again.returncode != 0
    assert "git credential-pat login https://dev.azure.com/northwind" in again.stderr.decode()
    assert len(refused_entra_tokens(azure)) == 1
