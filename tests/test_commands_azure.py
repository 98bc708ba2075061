"""The commands that sign in and manage PATs, through the real executable against the fake Azure.

What a PAT command did is read from the fake's ledger (which PATs exist, live or revoked, with
what scope and lifespan) and from the store, never from the command's own words; the words are
checked for what a person needs, and for never holding a secret.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.azurefixtures import AzureGit
from tests.fakeazure import FakeAzure
from tests.fakeazure.ca import make_certificates
from tests.netfixtures import PTY_RUN

DAY = 86400


def ok(done: subprocess.CompletedProcess[bytes], fake: FakeAzure) -> str:
    """The command's stdout, after checking that it succeeded and showed no PAT."""
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    no_secrets(done, fake)
    return done.stdout.decode()


def no_secrets(done: subprocess.CompletedProcess[bytes], fake: FakeAzure) -> None:
    shown = done.stdout + done.stderr
    for pat in fake.pats:
        assert pat.token.encode() not in shown
    assert b"eyJ" not in shown  # no Entra token either


def lifespan(pat: object) -> float:
    return (pat.valid_to - pat.valid_from) / DAY  # type: ignore[attr-defined]


def stored_passwords(azure_git: AzureGit) -> list[str]:
    item = json.loads(json.loads(azure_git.env.store_file.read_text())[azure_git.org_url])
    return [c["password"] for c in item["credentials"]]


def test_login_mints_one_pat_with_the_asked_scope_and_lifespan(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    done = azure_git.command("login", azure_git.org_url, "--scope", "vso.code", "--lifespan", "5")
    out = ok(done, fake)
    assert b"Signing in" not in done.stderr, "no progress line when stderr is not a terminal"
    [pat] = fake.pats
    assert (pat.org, pat.user, pat.scope, pat.all_orgs) == ("contoso", azure_git.user,
                                                             "vso.code", False)
    assert lifespan(pat) == pytest.approx(5, abs=0.01)
    assert pat.display_name.startswith("git-credential-pat: contoso on ")
    assert out.startswith("Signed in for contoso as alice@contoso.com: PAT with scope vso.code, "
                          "expires in 5 days")
    assert stored_passwords(azure_git) == [pat.token]

    again = ok(azure_git.command("login", "contoso", "--scope", "vso.code"), fake)
    assert again.startswith("Already set up for contoso as alice@contoso.com")
    assert len(fake.pats) == 1, "a login with nothing to change mints nothing"
    ok(azure_git.command("login", "contoso"), fake)  # the default scope differs: a new PAT
    assert [p.scope for p in fake.live_pats()] == ["vso.code_write"]


def test_login_with_another_account(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    out = ok(azure_git.command("login", "contoso", "--account", "bob@contoso.com"), fake)
    assert out.startswith("Signed in for contoso as bob@contoso.com: ")
    assert [p.user for p in fake.live_pats()] == ["bob@contoso.com"]


def test_login_says_when_nobody_can_sign_in(azure_git: AzureGit) -> None:
    done = azure_git.command("login", "contoso", extra_env={"BROWSER": ""})
    assert done.returncode == 1
    assert done.stderr.startswith(b"git-credential-pat: nobody can be asked to sign in here")
    assert done.stderr.count(b"\n") == 1
    assert azure_git.fake.pats == []


def test_status_shows_the_minted_pat(azure_git: AzureGit, kenv: object) -> None:
    fake = azure_git.fake
    ok(azure_git.command("login", "--lifespan", "5", azure_git.org_url), fake)
    text = ok(azure_git.command("status"), fake)
    row = text.splitlines()[1].split()
    assert row[:3] == ["contoso", "alice@contoso.com", "vso.code_write"]
    assert "expires in 5 days" in text
    assert "Stored in: OS keyring" in text
    [org] = json.loads(ok(azure_git.command("status", "--json"), fake))["organizations"]
    assert (org["organization"], org["account"], org["scope"], org["minted_here"]) == (
        "contoso", "alice@contoso.com", "vso.code_write", True)
    assert (org["days_left"], org["level"]) == (5, "warn")


def test_list_marks_the_pat_minted_here_and_in_use(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    by_hand = fake.issue_pat("contoso", azure_git.user, scope="vso.work", display_name="by hand")
    ok(azure_git.command("login", azure_git.org_url), fake)
    minted = fake.pats[-1]
    pats = json.loads(ok(azure_git.command("list", "--json"), fake))["pats"]
    by_id = {p["authorization_id"]: p for p in pats}
    assert set(by_id) == {by_hand.authorization_id, minted.authorization_id}
    assert by_id[minted.authorization_id] | {"valid_from": "", "valid_to": ""} == {
        "authorization_id": minted.authorization_id, "display_name": minted.display_name,
        "scope": "vso.code_write", "status": "active", "minted_here": True, "in_use": True,
        "valid_from": "", "valid_to": ""}
    assert (by_id[by_hand.authorization_id]["minted_here"],
            by_id[by_hand.authorization_id]["in_use"]) == (False, False)
    table = ok(azure_git.command("list"), fake)
    assert f"active  *+  {minted.authorization_id}" in table
    assert f"active      {by_hand.authorization_id}" in table


def test_rotate_replaces_the_pat_and_revokes_the_old(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    ok(azure_git.command("login", azure_git.org_url, "--scope", "vso.code",
                         "--lifespan", "10"), fake)
    out = ok(azure_git.command("rotate", azure_git.org_url), fake)
    old, new = fake.pats
    assert old.revoked and fake.live_pats() == [new]
    assert (new.scope, round(lifespan(new))) == ("vso.code", 10), "the same scope and lifespan"
    assert stored_passwords(azure_git) == [new.token]
    assert out.startswith("Rotated contoso: PAT with scope vso.code, expires in 10 days")
    listed = json.loads(ok(azure_git.command("list", "--all", "--json"), fake))["pats"]
    assert {(p["authorization_id"], p["status"]) for p in listed} == {
        (old.authorization_id, "revoked"), (new.authorization_id, "active")}


def test_revoke_by_id_and_the_one_in_use(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    by_hand = fake.issue_pat("contoso", azure_git.user, display_name="by hand")
    ok(azure_git.command("login", azure_git.org_url), fake)
    minted = fake.pats[-1]
    out = ok(azure_git.command("revoke", "--id", by_hand.authorization_id), fake)
    assert out == f"Revoked {by_hand.authorization_id} in contoso.\n"
    assert fake.live_pats() == [minted]
    assert stored_passwords(azure_git) == [minted.token]

    ok(azure_git.command("revoke", "contoso"), fake)
    assert fake.live_pats() == []
    assert stored_passwords(azure_git) == []

    gone = azure_git.command("revoke", "--id", "0e0e0e0e-0000-4000-8000-000000000000")
    assert gone.returncode == 1
    assert gone.stderr == b"git-credential-pat: the organization contoso has no such PAT\n"


def test_logout_all_revokes_what_was_minted_and_empties_the_store(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    fake.add_org("fabrikam", azure_git.tenant)
    by_hand = fake.issue_pat("contoso", azure_git.user, display_name="by hand")
    ok(azure_git.command("login", azure_git.org_url), fake)
    ok(azure_git.command("login", "https://fabrikam.visualstudio.com/"), fake)
    azure_git.env.helper("store", "protocol=https\nhost=git.example.com\nusername=u\n"
                                  "password=p\n\n")
    # A PAT this machine minted but no longer stores (a lost keyring): found by its name.
    minted_name = fake.pats[-1].display_name.replace("fabrikam", "contoso")
    lost = fake.issue_pat("contoso", azure_git.user, display_name=minted_name)

    out = ok(azure_git.command("logout", "--all"), fake)
    assert "Logged out of contoso." in out and "Logged out of fabrikam." in out
    assert fake.live_pats() == [by_hand]
    assert lost.authorization_id not in {p.authorization_id for p in fake.live_pats()}
    assert json.loads(azure_git.env.store_file.read_text()) == {}
    assert ok(azure_git.command("logout", "--all"), fake).startswith("Signed out and emptied")


def test_logout_signs_the_account_out(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    ok(azure_git.command("login", azure_git.org_url), fake)
    out = ok(azure_git.command("logout"), fake)
    assert out == "Logged out of contoso.\nSigned out alice@contoso.com.\n"
    assert fake.live_pats() == []
    stored = json.loads(azure_git.env.store_file.read_text())
    assert set(stored) == {"msal-token-cache"}
    assert json.loads(stored["msal-token-cache"]).get("Account", {}) == {}


def test_logout_of_one_organization_keeps_the_others(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    fake.add_org("fabrikam", azure_git.tenant)
    ok(azure_git.command("login", azure_git.org_url), fake)
    ok(azure_git.command("login", "fabrikam"), fake)
    ok(azure_git.command("logout", "contoso"), fake)
    assert [p.org for p in fake.live_pats()] == ["fabrikam"]
    stored = json.loads(azure_git.env.store_file.read_text())
    assert "https://dev.azure.com/contoso" not in stored
    assert "https://dev.azure.com/fabrikam" in stored and "msal-token-cache" in stored
    ok(azure_git.command("rotate", "fabrikam"), fake)
    assert fake.authorize_count == 1, "fabrikam's sign-in (the same account) was kept"


def test_login_with_a_device_code_at_a_terminal(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    fake.device_flow(approve_after=1, interval=1)
    done = azure_git.env.run(sys.executable, "-c", PTY_RUN, "git-credential-pat", "login",
                             "--device-code", azure_git.org_url, check=False,
                             extra_env={"GIT_TERMINAL_PROMPT": "1"})
    out = ok(done, fake)
    assert "enter the code" in out
    assert "Signing in and minting a PAT for contoso..." in out  # the progress line, at a tty
    assert fake.devicecode_count == 1 and fake.authorize_count == 0
    assert len(fake.live_pats()) == 1


def test_doctor_passes_on_a_good_setup(azure_git: AzureGit, kenv: object) -> None:
    fake = azure_git.fake
    azure_git.env.config("credential.helper", "manager")
    ok(azure_git.command("configure"), fake)
    ok(azure_git.command("login", azure_git.org_url), fake)
    text = ok(azure_git.command("doctor"), fake)
    assert "fail" not in text
    assert "warn  helpers dev.azure.com/x     manager, cache --timeout=900, pat: 'manager' runs " \
           "first and answers instead\n" in text
    assert "fix: git credential-pat configure --exclusive" in text
    ok(azure_git.command("configure", "--exclusive"), fake)
    text = ok(azure_git.command("doctor"), fake)
    assert "warn" not in text
    for name in ("git", "helper", "useHttpPath", "store", "sign-in", "login.microsoftonline.com",
                 "dev.azure.com", "clock", "PATs"):
        assert any(line.split()[1] == name for line in text.splitlines()), name
    report = json.loads(ok(azure_git.command("doctor", "--json"), fake))
    assert report["ok"] is True
    levels = {c["name"]: c["level"] for c in report["checks"]}
    assert levels["store"] == levels["dev.azure.com"] == levels["clock"] == "ok"
    assert "OS keyring" in next(c["detail"] for c in report["checks"] if c["name"] == "store")


def test_doctor_fails_with_a_wrong_ca(azure_git: AzureGit, tmp_path: object) -> None:
    other = make_certificates(tmp_path / "other-ca")  # type: ignore[operator]
    azure_git.env.config("http.sslCAInfo", str(other.ca))
    done = azure_git.command("doctor")
    assert done.returncode == 1
    lines = done.stdout.decode().splitlines()
    failed = next(i for i, line in enumerate(lines)
                  if line.startswith("fail") and "login.microsoftonline.com" in line)
    assert "is not trusted" in lines[failed] and f"CA {other.ca}" in lines[failed]
    assert "fix: " in lines[failed + 1] and "http.sslCAInfo" in lines[failed + 1]


@pytest.mark.parametrize("bus", ["", "unix:path=/nonexistent"])
def test_doctor_fails_with_no_keyring(azure_git: AzureGit, kenv: object, bus: str) -> None:
    done = azure_git.command("doctor", extra_env={"DBUS_SESSION_BUS_ADDRESS": bus})
    assert done.returncode == 1
    lines = done.stdout.decode().splitlines()
    failed = next(i for i, line in enumerate(lines) if line.split()[:2] == ["fail", "store"])
    assert "keyring" in lines[failed] or "secret store" in lines[failed]  # the store's words
    assert lines[failed + 1].split()[:1] == ["fix:"]
    assert "credential.patStore file" in lines[failed + 1]
    report = json.loads(azure_git.command("doctor", "--json", extra_env={
        "DBUS_SESSION_BUS_ADDRESS": bus}).stdout)
    assert report["ok"] is False


def test_a_failure_is_one_line_without_a_secret(azure_git: AzureGit) -> None:
    fake = azure_git.fake
    ok(azure_git.command("login", azure_git.org_url), fake)
    fake.fail("pat_list", status=400)
    done = azure_git.command("list")
    assert done.returncode == 1
    no_secrets(done, fake)
    assert done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"git-credential-pat: ")
    assert b"(HTTP 400)" in done.stderr


def test_after_a_revoke_status_doctor_and_list_agree_nothing_is_stored(
        azure_git: AzureGit) -> None:
    fake = azure_git.fake
    ok(azure_git.command("login", azure_git.org_url), fake)
    ok(azure_git.command("revoke", "contoso"), fake)
    [row] = json.loads(ok(azure_git.command("status", "--json"), fake))["organizations"]
    assert (row["pat_stored"], row["in_use"]) == (False, False)
    assert "no PAT stored" in ok(azure_git.command("status"), fake)
    report = json.loads(azure_git.command("doctor", "--json").stdout)
    [pats] = [c for c in report["checks"] if c["name"] == "PATs"]
    assert pats["detail"].startswith("0 stored")
    listed = json.loads(ok(azure_git.command("list", "--all", "--json"), fake))["pats"]
    assert [p["in_use"] for p in listed] == [False]


def test_status_marks_the_credential_the_current_repository_uses(azure_git: AzureGit) -> None:
    """Two credentials for one organization (one typed at git's prompt for another user name):
    `get` answers with the signed-in account's, and status says which, and for which repo."""
    fake = azure_git.fake
    typed = "t" * 52
    azure_git.env.helper("store", "protocol=https\nhost=dev.azure.com\npath=contoso/p/_git/r\n"
                                  f"username=someone\npassword={typed}\n\n")
    ok(azure_git.command("login", azure_git.org_url), fake)
    repo = azure_git.env.home / "clone"
    azure_git.env.git("init", "-q", str(repo))
    azure_git.env.git("-C", str(repo), "remote", "add", "origin", azure_git.clone_url())
    inside = json.loads(ok(azure_git.command("status", "--json", cwd=repo), fake))
    assert inside["current_repository"] == ["contoso"]
    used = {(r["account"], r["in_use"], r["current_repository"])
            for r in inside["organizations"]}
    assert used == {("alice@contoso.com", True, True), ("someone", False, True)}
    table = ok(azure_git.command("status", cwd=repo), fake).splitlines()
    alice = next(line for line in table if "alice@contoso.com" in line)
    other = next(line for line in table if "someone" in line)
    assert "this repo" in alice and "never" in other and "git gets another PAT" in other
    outside = ok(azure_git.command("status"), fake).splitlines()
    assert "this repo" not in "\n".join(outside)
    assert " yes " in next(line for line in outside if "alice@contoso.com" in line)


def test_doctor_shows_the_version(azure_git: AzureGit) -> None:
    from git_credential_pat import __version__

    report = json.loads(azure_git.command("doctor", "--json").stdout)
    assert report["version"] == __version__
    [helper] = [c for c in report["checks"] if c["name"] == "helper"]
    assert helper["detail"].endswith(f"this is git-credential-pat {__version__}")
    assert f"git-credential-pat {__version__}" in azure_git.command("doctor").stdout.decode()


def test_every_command_that_changes_something_says_what_it_did_in_json(
        azure_git: AzureGit) -> None:
    fake = azure_git.fake
    configured = json.loads(ok(azure_git.command("configure", "--json"), fake))
    assert (configured["done"], configured["scope"]) == ("configured", "global")
    assert json.loads(ok(azure_git.command("configure", "--json"), fake))["done"] == \
        "nothing to change"

    login = json.loads(ok(azure_git.command("login", "contoso", "--json"), fake))
    [first] = fake.live_pats()
    assert (login["done"], login["account"], login["pat"]["authorization_id"],
            login["pat"]["scope"]) == ("minted", azure_git.user, first.authorization_id,
                                       "vso.code_write")
    assert json.loads(ok(azure_git.command("login", "contoso", "--json"), fake))["done"] == "kept"

    rotated = json.loads(ok(azure_git.command("rotate", "contoso", "--json"), fake))
    [second] = fake.live_pats()
    assert (rotated["done"], rotated["pat"]["authorization_id"], rotated["revoked"],
            rotated["not_revoked"]) == ("rotated", second.authorization_id,
                                        [first.authorization_id], [])

    revoked = json.loads(ok(azure_git.command("revoke", "contoso", "--json"), fake))
    assert (revoked["done"], revoked["revoked"], revoked["forgotten"]) == (
        "revoked", second.authorization_id, True)
    assert fake.live_pats() == []

    ok(azure_git.command("login", "contoso"), fake)
    out = json.loads(ok(azure_git.command("logout", "contoso", "--json"), fake))
    assert out["organizations"] == [{"organization": "contoso", "all_revoked": True}]
    assert out["signed_out"] == [azure_git.user]
    assert fake.live_pats() == []

    ok(azure_git.command("login", "contoso"), fake)
    every = json.loads(ok(azure_git.command("logout", "--all", "--json"), fake))
    assert (every["organizations"], every["signed_out"]) == (
        [{"organization": "contoso", "all_revoked": True}], [azure_git.user])
    assert every["emptied"] and fake.live_pats() == []

    removed = json.loads(ok(azure_git.command("unconfigure", "--json"), fake))
    assert removed["done"] == "removed"
    assert json.loads(ok(azure_git.command("unconfigure", "--json"), fake))["done"] == \
        "nothing to remove"


# -- migrate -----------------------------------------------------------------------------------

BOGUS = "b0gus" * 10 + "xy"  # 52 characters, as a PAT is, but no organization ever issued it


@pytest.fixture
def repos(azure_git: AzureGit) -> dict[str, object]:
    """A folder of clones whose remotes carry PATs the ways people write them (live ones of
    contoso and fabrikam, and a made-up one), next to remotes that must be left alone."""
    fake, env = azure_git.fake, azure_git.env
    fake.add_org("fabrikam", azure_git.tenant)
    root = env.home / "src"
    one, two, three = root / "one", root / "nested" / "two", root / "three"
    for repo in (one, two, three):
        env.git("init", "-q", str(repo))
    pat_one = fake.issue_pat("contoso", azure_git.user).token
    pat_two = fake.issue_pat("fabrikam", azure_git.user).token
    env.git("-C", str(one), "remote", "add", "origin",
            f"https://contoso:{pat_one}@dev.azure.com/contoso/Proj/_git/one")
    env.git("-C", str(one), "remote", "add", "github", "https://me:gh-secret@github.com/me/x")
    env.git("-C", str(two), "remote", "add", "origin",
            f"https://{pat_two}@fabrikam.visualstudio.com/Proj/_git/two")
    env.git("-C", str(two), "config", "--add", "remote.origin.pushurl",
            f"https://someone:{pat_two}@fabrikam.visualstudio.com/Proj/_git/two")
    env.git("-C", str(three), "remote", "add", "origin",
            f"https://contoso:{BOGUS}@dev.azure.com/contoso/Proj/_git/three")
    return {"root": root, "one": one, "two": two, "three": three, "pats": (pat_one, pat_two)}


def _configs(repos: dict[str, object]) -> list[bytes]:
    return [(repo / ".git" / "config").read_bytes()  # type: ignore[operator]
            for repo in (repos["one"], repos["two"], repos["three"])]


def stored(azure_git: AzureGit, org: str) -> list[tuple[str, str]]:
    if not azure_git.env.store_file.exists():
        return []
    text = json.loads(azure_git.env.store_file.read_text()).get(f"https://dev.azure.com/{org}")
    return [(c["username"], c["password"]) for c in json.loads(text)["credentials"]] \
        if text else []


def test_migrate_dry_run_checks_the_pats_and_changes_nothing(azure_git: AzureGit,
                                                             repos: dict) -> None:
    before = _configs(repos)
    done = azure_git.command("migrate", "--dry-run", str(repos["root"]))
    out = ok(done, azure_git.fake)
    assert BOGUS not in out + done.stderr.decode()
    lines = out.splitlines()

    def row(url: str) -> str:
        return next(line for line in lines if url in line)

    assert "accepted by contoso: kept" in row("https://contoso:***@dev.azure.com/contoso/Proj/_git/one")
    assert "accepted by fabrikam: kept" in row("https://***@fabrikam.visualstudio.com/Proj/_git/two")
    assert "https://someone:***@fabrikam.visualstudio.com/Proj/_git/two" in out
    assert "refused by contoso (HTTP 401" in row("https://contoso:***@dev.azure.com/contoso/Proj/_git/three")
    assert "github" not in out
    assert "Would keep 2 PATs" in out
    plan = json.loads(ok(azure_git.command("migrate", "--dry-run", "--json",
                                           str(repos["root"])), azure_git.fake))
    assert (plan["done"], plan["dry_run"]) == ("dry run", True)
    assert sorted((f["organization"], f["check"], f["kept"]) for f in plan["found"]) == [
        ("contoso", "accepted", True), ("contoso", "refused", False),
        ("fabrikam", "accepted", True), ("fabrikam", "accepted", True)]
    assert _configs(repos) == before
    assert not azure_git.env.store_file.exists()


def test_migrate_keeps_what_the_organization_accepts_and_cleans_every_url(
        azure_git: AzureGit, repos: dict) -> None:
    env, fake = azure_git.env, azure_git.fake
    pat_one, pat_two = repos["pats"]
    out = ok(azure_git.command("migrate", str(repos["root"])), fake)
    assert "Kept 2 PATs" in out

    def url(repo: object, *args: str) -> str:
        return env.git("-C", str(repo), "remote", "get-url", *args).stdout.decode().strip()

    assert url(repos["one"], "origin") == "https://contoso@dev.azure.com/contoso/Proj/_git/one"
    assert url(repos["one"], "github") == "https://me:gh-secret@github.com/me/x"
    assert url(repos["two"], "origin") == "https://fabrikam.visualstudio.com/Proj/_git/two"
    assert url(repos["two"], "--push", "origin") == \
        "https://fabrikam.visualstudio.com/Proj/_git/two"
    assert url(repos["three"], "origin") == \
        "https://contoso@dev.azure.com/contoso/Proj/_git/three"
    for config in _configs(repos):
        assert all(pat.encode() not in config for pat in (pat_one, pat_two, BOGUS))
    # Kept under the owner the organization named; the refused one not at all.
    assert stored(azure_git, "contoso") == [(azure_git.user, pat_one)]
    assert stored(azure_git, "fabrikam") == [(azure_git.user, pat_two)]

    ok(azure_git.command("configure"), fake)
    assert env.fill("https://contoso@dev.azure.com/contoso/Proj/_git/one")["password"] == pat_one
    assert env.fill("https://fabrikam.visualstudio.com/Proj/_git/two")["password"] == pat_two
    again = azure_git.command("migrate", str(repos["root"]))
    assert again.stdout.startswith(b"No remote URL under ")


def test_a_refused_pat_is_not_kept_so_the_next_fetch_signs_in_and_works(
        azure_git: AzureGit) -> None:
    """Once, a made-up PAT was stored unchecked and every fetch failed (TF400813)."""
    env, fake = azure_git.env, azure_git.fake
    ok(azure_git.command("configure"), fake)
    clone = env.home / "clone"
    env.git("init", "-q", str(clone))
    env.git("-C", str(clone), "remote", "add", "origin",
            azure_git.clone_url().replace("https://", f"https://contoso:{BOGUS}@"))
    out = ok(azure_git.command("migrate", str(clone)), fake)
    assert "refused by contoso" in out and "Kept 0 PATs" in out
    assert stored(azure_git, "contoso") == []
    env.git("-C", str(clone), "fetch", "origin")
    assert [p.user for p in fake.live_pats()] == [azure_git.user]


def test_a_pat_beside_the_one_git_gets_is_not_kept_as_a_second_row(azure_git: AzureGit) -> None:
    env, fake = azure_git.env, azure_git.fake
    ok(azure_git.command("login", "contoso"), fake)
    [minted] = fake.live_pats()
    other = fake.issue_pat("contoso", azure_git.user, display_name="by hand").token
    clone = env.home / "clone"
    env.git("init", "-q", str(clone))
    env.git("-C", str(clone), "remote", "add", "origin",
            azure_git.clone_url().replace("https://", f"https://user:{other}@"))
    out = ok(azure_git.command("migrate", str(clone)), fake)
    assert "not kept: the store already holds the PAT git gets for contoso" in out
    assert stored(azure_git, "contoso") == [(azure_git.user, minted.token)]
    rows = json.loads(ok(azure_git.command("status", "--json"), fake))["organizations"]
    assert [(r["account"], r["in_use"]) for r in rows] == [(azure_git.user, True)]
    assert other not in (clone / ".git/config").read_text()


def test_migrate_empties_git_s_plaintext_credential_file_of_azure_devops_pats(
        azure_git: AzureGit) -> None:
    env, fake = azure_git.env, azure_git.fake
    pat = fake.issue_pat("contoso", azure_git.user).token
    credentials = env.home / ".git-credentials"
    others = "https://me:gh-secret@github.com\n"
    credentials.write_text(f"https://contoso:{pat}@dev.azure.com\n{others}"
                           f"https://contoso:{BOGUS}@dev.azure.com/contoso/p/_git/r\n")
    credentials.chmod(0o600)
    plan = ok(azure_git.command("migrate", "--dry-run", str(env.home)), fake)
    assert str(credentials) in plan and "line 1" in plan and "(line removed)" in plan
    assert pat not in plan
    ok(azure_git.command("migrate", str(env.home)), fake)
    assert credentials.read_text() == others
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert stored(azure_git, "contoso") == [(azure_git.user, pat)]


def test_a_pat_that_cannot_be_checked_is_kept_unverified_and_said_so(
        azure_git: AzureGit) -> None:
    env, fake = azure_git.env, azure_git.fake
    pat = fake.issue_pat("contoso", azure_git.user).token
    clone = env.home / "clone"
    env.git("init", "-q", str(clone))
    env.git("-C", str(clone), "remote", "add", "origin",
            azure_git.clone_url().replace("https://", f"https://contoso:{pat}@"))
    fake.fail("probe", status=503, times=20)
    done = azure_git.command("migrate", "--json", str(clone))
    [found] = json.loads(ok(done, fake))["found"]
    assert (found["check"], found["kept"]) == ("unreachable", True)
    assert "kept unverified" in found["note"] and "HTTP 503" in found["note"]
    assert [password for _, password in stored(azure_git, "contoso")] == [pat]


# -- plaintext helpers -------------------------------------------------------------------------

PLAIN = "writes every PAT git-credential-pat makes to disk in plain text"


def test_configure_status_and_doctor_warn_while_git_s_store_gets_every_pat(
        azure_git: AzureGit) -> None:
    """What the warning says is so: with `store` configured as people had it for years, the
    PAT minted on a clone lands in ~/.git-credentials; after `configure --exclusive`, no more."""
    env, fake = azure_git.env, azure_git.fake
    env.config("credential.helper", "store")
    configured = ok(azure_git.command("configure"), fake)
    assert f"warning: credential helper 'store' runs before git-credential-pat and will answer " \
           f"instead for https://dev.azure.com/org/project/_git/repo, and {PLAIN}" in configured
    status = ok(azure_git.command("status"), fake)
    assert f"warning: credential helper 'store' {PLAIN} (dev.azure.com and " \
           "org.visualstudio.com); run `git credential-pat configure --exclusive`" in status
    assert json.loads(ok(azure_git.command("status", "--json"), fake))["warnings"]
    report = json.loads(azure_git.command("doctor", "--json").stdout)
    [check] = [c for c in report["checks"] if c["name"] == "helpers dev.azure.com/x"]
    assert (check["level"], check["fix"]) == (
        "warn", "git credential-pat configure --exclusive, then git credential-pat migrate")
    assert PLAIN in check["detail"]

    env.git("clone", "-q", azure_git.clone_url(), str(env.home / "first"))
    [pat] = fake.live_pats()
    credentials = env.home / ".git-credentials"
    assert pat.token in credentials.read_text()

    ok(azure_git.command("configure", "--exclusive"), fake)
    credentials.write_text("")
    ok(azure_git.command("rotate", "contoso"), fake)
    env.git("clone", "-q", azure_git.clone_url(), str(env.home / "second"))
    assert credentials.read_text() == ""
    for args in (("configure", "--exclusive"), ("status",), ("doctor",)):
        assert PLAIN not in azure_git.command(*args).stdout.decode(), args
