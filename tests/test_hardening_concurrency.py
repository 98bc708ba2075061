"""Hardening against parallel git processes, with the real Secret Service as the store.

IDEs, submodules and scripts run many git processes at once; each runs its own helper. They
must mint one PAT (not one each), rotate once, and never lose a credential another process
stored meanwhile.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
from pathlib import Path

import pytest

from tests.azurefixtures import REPO_URL, at_fake_time, configured
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv, parse_answer
from tests.hardening import (
    assert_no_orphan_pats,
    fault_taken,
    start_git,
    stored_item,
    wait_until,
)
from tests.netfixtures import ALICE, Contoso

PARALLEL = 32
PLAIN_KEY = "https://git.example.com"


@pytest.fixture
def kazure(kenv: GitEnv, azure: FakeAzure, contoso: Contoso) -> GitEnv:
    """install.sh's configuration against the fake, storing in the Secret Service."""
    return configured(kenv, azure)


def parallel(count: int, run: object) -> list:
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))  # type: ignore[arg-type]


def fill(env: GitEnv, extra_env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    return env.git("credential", "fill", input=f"url={REPO_URL}\n\n", check=False,
                   extra_env=extra_env, timeout=120)


def test_parallel_fills_on_a_cold_keyring_mint_one_pat_and_all_get_it(
        kazure: GitEnv, azure: FakeAzure) -> None:
    runs = parallel(PARALLEL, lambda _: fill(kazure))
    assert [r.returncode for r in runs] == [0] * PARALLEL, [r.stderr for r in runs]
    [pat] = azure.pats
    assert {parse_answer(r.stdout)["password"] for r in runs} == {pat.token}
    assert azure.authorize_count == 1
    assert_no_orphan_pats(azure, kazure)


def test_parallel_fetches_in_different_sessions_mint_one_pat_and_all_succeed(
        kazure: GitEnv, azure: FakeAzure, tmp_path: Path) -> None:
    """A desktop session, cron, ssh and services see different XDG_RUNTIME_DIR and TMPDIR;
    they are one user, with one lock per organization, so one of them mints."""
    runtime = tmp_path / "session"
    runtime.mkdir(mode=0o700)
    desktop = {**kazure.env, "XDG_RUNTIME_DIR": str(runtime), "TMPDIR": str(runtime)}
    service = {k: v for k, v in kazure.env.items() if k not in ("XDG_RUNTIME_DIR", "TMPDIR")}

    def fetch(n: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", "ls-remote", REPO_URL], env=(desktop, service)[n % 2],
                              cwd=kazure.home, capture_output=True, timeout=120, check=False)

    runs = parallel(8, fetch)
    assert [r.returncode for r in runs] == [0] * 8, [r.stderr for r in runs]
    [pat] = azure.pats
    assert not pat.revoked and stored_item(kazure)["credentials"][0]["password"] == pat.token
    assert_no_orphan_pats(azure, kazure)


def test_a_sweep_revokes_orphans_but_never_a_pat_made_after_the_one_it_keeps(
        kazure: GitEnv, azure: FakeAzure) -> None:
    """A sweep owed since the mint (listing failed) runs on a later hit: it revokes an orphan
    made before the PAT it keeps, and leaves alone one made after it, which may be another
    process's, minted a moment ago and on its way to git."""
    azure.fail("pat_list", 503, times=50)
    assert fill(kazure).returncode == 0
    [kept] = azure.pats
    azure.advance(seconds=-120)
    orphan = azure.issue_pat("contoso", kept.user, display_name=kept.display_name)
    azure.advance(seconds=120 + 30)
    newer = azure.issue_pat("contoso", kept.user, display_name=kept.display_name)
    with azure.state.lock:
        azure.state.faults.clear()
    azure.advance(seconds=2 * 3600)
    done = fill(kazure, at_fake_time(azure))
    assert parse_answer(done.stdout)["password"] == kept.token
    revoked = {p.authorization_id: p.revoked for p in azure.pats}
    assert revoked == {kept.authorization_id: False, orphan.authorization_id: True,
                       newer.authorization_id: False}


def test_a_mint_that_finds_another_process_s_pat_stored_meanwhile_answers_with_it(
        kazure: GitEnv, azure: FakeAzure) -> None:
    """While one process waits for its PAT to be created, another stores one (here git's
    `approve` of a PAT made elsewhere): that one may be in git's hands already, so it stays,
    and the PAT nobody has seen yet is revoked."""
    azure.delay("pat_create", 2)
    git = start_git(kazure, "credential", "fill", input=f"url={REPO_URL}\n\n".encode())
    wait_until(lambda: fault_taken(azure, "pat_create"), 20, "the PAT to be created")
    other = azure.issue_pat("contoso", ALICE)
    kazure.git("credential", "approve", input=f"url={REPO_URL}\nusername={ALICE}\n"
                                               f"password={other.token}\n\n")
    status, out, err = git.finish()
    assert status == 0, err
    assert parse_answer(out)["password"] == other.token
    minted = [p for p in azure.pats if p.authorization_id != other.authorization_id]
    assert [p.revoked for p in minted] == [True]
    assert stored_item(kazure)["credentials"][0]["password"] == other.token


def test_parallel_fills_when_a_rotation_is_due_rotate_once(
        kazure: GitEnv, azure: FakeAzure) -> None:
    assert fill(kazure).returncode == 0
    azure.advance(days=25)
    later = at_fake_time(azure)
    runs = parallel(PARALLEL, lambda _: fill(kazure, later))
    assert [r.returncode for r in runs] == [0] * PARALLEL, [r.stderr for r in runs]
    old, new = azure.pats
    assert old.revoked and not new.revoked
    assert {parse_answer(r.stdout)["password"] for r in runs} == {new.token}
    assert_no_orphan_pats(azure, kazure)


def helper(env: GitEnv, action: str, request: str) -> None:
    done = env.helper(action, request + "\n", timeout=60)
    assert done.returncode == 0 and done.stderr == b"", done.stderr


@pytest.mark.parametrize("place", ["plain", "azure"])
def test_an_erase_for_an_old_password_never_removes_a_newer_one(
        kenv: GitEnv, place: str) -> None:
    """Rounds of `store` of password N racing `erase` of password N-1 (what git sends after a
    401 in one process while another stores the PAT just minted), each pair in parallel:
    whatever the order, password N is what remains."""
    where = ("protocol=https\nhost=git.example.com\n" if place == "plain" else
             "protocol=https\nhost=dev.azure.com\npath=contoso/proj/_git/repo\n")
    user = "username=alice@contoso.com\n"
    helper(kenv, "store", f"{where}{user}password=secret-0\n")
    for n in range(1, 9):
        parallel(2, lambda i, n=n: helper(
            kenv, ("store", "erase")[i], f"{where}{user}password=secret-{n - i}\n"))
        answer = parse_answer(kenv.helper("get", where + "\n").stdout)
        assert answer.get("password") == f"secret-{n}", f"round {n}"


def test_parallel_stores_for_one_host_keep_every_credential(kenv: GitEnv) -> None:
    """Ten processes each store a different user's password for the same host at once:
    none may overwrite another's (a lost update of the one item per host)."""
    where = "protocol=https\nhost=git.example.com\n"
    parallel(10, lambda i: helper(kenv, "store", f"{where}username=u{i}\npassword=p{i}\n"))
    kept = stored_item(kenv, PLAIN_KEY)["credentials"]
    assert sorted((c["username"], c["password"]) for c in kept) == sorted(
        (f"u{i}", f"p{i}") for i in range(10))
    answer = parse_answer(kenv.helper("get", f"{where}username=u7\n\n").stdout)
    assert answer.get("password") == "p7"
    parallel(10, lambda i: helper(kenv, "erase", f"{where}username=u{i}\npassword=p{i}\n"))
    assert stored_item(kenv, PLAIN_KEY) == {"credentials": []}
    assert parse_answer(kenv.helper("get", f"{where}\n").stdout) == {}
