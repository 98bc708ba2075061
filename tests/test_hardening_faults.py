"""Hardening against faults, through real git and the helper against the fake Azure.

The network misbehaving at each step (throttling, 5xx bursts, dropped connections, timeouts),
the keyring failing at each step (a `keyring` backend that fails on demand, loaded into the real
helper process), and the helper killed with SIGKILL at chosen and at random moments. After each:
git fails cleanly with one line from the helper or succeeds, and the ledger of the fake holds no
orphan: every live PAT is the one the helper stored.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from git_credential_pat.actions.context import SIGNIN_LOCK
from git_credential_pat.edges import lock
from tests import failingkeyring
from tests.azurefixtures import REPO_URL, at_fake_time
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv, parse_answer
from tests.hardening import (
    ORG_KEY,
    assert_no_orphan_pats,
    assert_one_clean_line,
    fault_taken,
    helper_pid,
    kill,
    start_git,
    stored_item,
    stored_passwords,
    use_failing_keyring,
    wait_until,
)

HOSTS = {"probe": "dev.azure.com", "token": "login.microsoftonline.com",
         "pat_create": "vssps.dev.azure.com", "pat_list": "vssps.dev.azure.com",
         "pat_revoke": "vssps.dev.azure.com"}


def ls_remote(env: GitEnv, **kwargs: object):
    return env.git("ls-remote", REPO_URL, check=False, **kwargs)  # type: ignore[arg-type]


def assert_git_uses_the_stored_pat(env: GitEnv, azure: FakeAzure, **kwargs: object) -> None:
    assert ls_remote(env, **kwargs).returncode == 0
    [stored] = stored_passwords(env)
    assert [p.token for p in azure.live_pats()] == [stored]


# -- the network -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("step", "fault"), [
    ("probe", "503x2"), ("probe", "drop"), ("token", "429"), ("token", "drop"),
    ("pat_create", "503x2"), ("pat_create", "429"), ("pat_create", "drop"),
])
def test_transient_failures_are_ridden_out(hardened: GitEnv, azure: FakeAzure, step: str,
                                           fault: str) -> None:
    if fault == "503x2":
        azure.fail(step, 503, times=2)
    elif fault == "429":
        azure.fail(step, 429, retry_after=1)
    else:
        azure.drop(step)
    started = time.monotonic()
    done = ls_remote(hardened)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    if fault == "429":
        assert time.monotonic() - started >= 1  # Retry-After was honoured
    answered = [r.status for r in azure.requests_for(step)]
    assert answered[0] in (0, 429, 503) and answered[-1] < 500 and answered[-1] != 429
    assert azure.minted_count() == 1
    assert_no_orphan_pats(azure, hardened)


@pytest.mark.parametrize("step", ["probe", "token", "pat_create"])
def test_a_step_that_keeps_failing_is_retried_within_bounds_then_named(
        hardened: GitEnv, azure: FakeAzure, step: str) -> None:
    azure.fail(step, 503, times=50)
    started = time.monotonic()
    done = ls_remote(hardened)
    assert time.monotonic() - started < 20
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, HOSTS[step])
    assert 1 <= len(azure.requests_for(step)) <= 4
    assert azure.minted_count() == 0
    assert_no_orphan_pats(azure, hardened)


def test_throttling_longer_than_the_budget_fails_at_once_and_says_when(
        hardened: GitEnv, azure: FakeAzure) -> None:
    azure.fail("pat_create", 429, retry_after=120, times=5)
    started = time.monotonic()
    done = ls_remote(hardened)
    assert time.monotonic() - started < 15
    assert_one_clean_line(done.stderr, "vssps.dev.azure.com is throttling requests",
                          "try again in 120 seconds")
    assert len(azure.requests_for("pat_create")) == 1


@pytest.mark.parametrize("step", ["probe", "token", "pat_create"])
def test_a_step_that_never_answers_times_out_and_leaves_no_orphan(
        hardened: GitEnv, azure: FakeAzure, step: str) -> None:
    hardened.env["GIT_CREDENTIAL_PAT_TIMEOUT"] = "1"
    azure.delay(step, 2.5)
    started = time.monotonic()
    done = ls_remote(hardened)
    assert time.monotonic() - started < 15
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, HOSTS[step])
    if step == "pat_create":
        # The server went on and created the PAT after the helper gave up on it: it is live
        # and nobody holds it, until the helper's next mint finds it by its name.
        wait_until(lambda: azure.minted_count() == 1, 10, "the late PAT")
    hardened.env["GIT_CREDENTIAL_PAT_TIMEOUT"] = "10"
    assert_git_uses_the_stored_pat(hardened, azure)
    assert_no_orphan_pats(azure, hardened)


def rotation_due(env: GitEnv, azure: FakeAzure) -> dict[str, str]:
    """Mint a PAT, then move the clock to where it is due for rotation, and fetch once there:
    git's cache answers, and the helper, handed the PAT back, takes it out of the cache. The
    next fetch reaches the helper and rotates. Returns the env for that time."""
    assert ls_remote(env).returncode == 0
    azure.advance(days=25)
    later = at_fake_time(azure)
    assert ls_remote(env, extra_env=later).returncode == 0
    assert azure.minted_count() == 1
    return later


@pytest.mark.parametrize("fault", ["503x2", "drop"])
def test_a_flaky_revoke_during_rotation_still_revokes_the_old_pat(
        hardened: GitEnv, azure: FakeAzure, fault: str) -> None:
    later = rotation_due(hardened, azure)
    if fault == "drop":
        azure.drop("pat_revoke")
    else:
        azure.fail("pat_revoke", 503, times=2)
    assert ls_remote(hardened, extra_env=later).returncode == 0
    old, new = azure.pats
    assert old.revoked and not new.revoked
    assert stored_passwords(hardened) == [new.token]


@pytest.mark.parametrize("fault", ["503", "timeout"])
def test_a_revoke_that_fails_during_rotation_is_done_on_a_later_run(
        hardened: GitEnv, azure: FakeAzure, fault: str) -> None:
    later = rotation_due(hardened, azure)
    if fault == "503":
        azure.fail("pat_revoke", 503, times=50)
    else:  # no answer within the helper's timeout, and the server never gets to revoke
        hardened.env["GIT_CREDENTIAL_PAT_TIMEOUT"] = "1"
        azure.delay("pat_revoke", 2)
        azure.drop("pat_revoke")
    assert ls_remote(hardened, extra_env=later).returncode == 0  # git has its new PAT
    old, new = azure.pats
    assert not old.revoked and stored_passwords(hardened) == [new.token]
    with azure.state.lock:
        azure.state.faults.clear()
    azure.advance(days=1)
    # git's cache answers; the helper, handed the PAT back, sees the revocation owed and takes
    # the PAT out of the cache, so that the next fetch reaches it.
    assert ls_remote(hardened, extra_env=at_fake_time(azure)).returncode == 0
    assert not azure.pats[0].revoked
    assert ls_remote(hardened, extra_env=at_fake_time(azure)).returncode == 0
    assert azure.pats[0].revoked and azure.minted_count() == 2
    assert_no_orphan_pats(azure, hardened)


# -- owed work never makes git wait ----------------------------------------------------------------

def fill(env: GitEnv, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """`git credential fill`, which reaches the helper (nothing is approved into git's cache)."""
    return env.git("credential", "fill", input=f"url={REPO_URL}\n\n", check=False,
                   **kwargs)  # type: ignore[arg-type]


def owe_a_sweep(env: GitEnv, azure: FakeAzure) -> dict[str, str]:
    """A first mint whose sweep could not list PATs, two hours ago: the next hit owes it."""
    azure.fail("pat_list", 503, times=50)
    assert fill(env).returncode == 0
    with azure.state.lock:
        azure.state.faults.clear()
    azure.advance(seconds=2 * 3600)
    return at_fake_time(azure)


@contextlib.contextmanager
def another_sign_in(env: GitEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sign-in lock held as by a `login` waiting for a person in another terminal."""
    with monkeypatch.context() as patched:
        patched.setenv("HOME", str(env.home))
        with lock.held(SIGNIN_LOCK, timeout=5):
            yield


def timed(run: Callable[[], subprocess.CompletedProcess[bytes]]
          ) -> tuple[subprocess.CompletedProcess[bytes], float]:
    started = time.monotonic()
    done = run()
    return done, time.monotonic() - started


def test_a_hit_never_waits_for_another_process_s_sign_in(
        hardened: GitEnv, azure: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> None:
    later = owe_a_sweep(hardened, azure)
    with another_sign_in(hardened, monkeypatch):
        done, took = timed(lambda: fill(hardened, extra_env=later))
    assert done.returncode == 0 and took < 5, (took, done.stderr)
    assert parse_answer(done.stdout)["password"] == azure.pats[0].token
    assert "sweep_due" in stored_item(hardened)["org"]  # owed still, for later


def test_a_hit_never_waits_for_a_slow_pat_api(hardened: GitEnv, azure: FakeAzure) -> None:
    later = owe_a_sweep(hardened, azure)
    azure.delay("pat_list", 25, times=3)
    done, took = timed(lambda: fill(hardened, extra_env=later))
    assert done.returncode == 0 and took < 5, (took, done.stderr)
    assert parse_answer(done.stdout)["password"] == azure.pats[0].token


def test_an_erase_never_waits_for_another_process_s_sign_in_and_revokes_later(
        hardened: GitEnv, azure: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fill(hardened).returncode == 0
    [refused] = azure.pats
    request = (f"url={REPO_URL}\nusername=pat\npassword={refused.token}\n\n")
    with another_sign_in(hardened, monkeypatch):
        done, took = timed(lambda: hardened.git("credential", "reject", input=request,
                                                check=False))
    assert done.returncode == 0 and took < 5, (took, done.stderr)
    assert stored_passwords(hardened) == [] and not azure.pats[0].revoked
    assert ls_remote(hardened).returncode == 0  # a new PAT, whose sweep revokes the refused one
    assert azure.pats[0].revoked and azure.minted_count() == 2
    assert_no_orphan_pats(azure, hardened)


# -- the keyring -----------------------------------------------------------------------------------

@pytest.fixture
def keyring_dir(hardened: GitEnv) -> Path:
    return use_failing_keyring(hardened)


@pytest.mark.parametrize(("rule", "says"), [
    ("* * unavailable", "the keyring failed (NoKeyringError)"),
    ("* * locked", "the keyring is locked; unlock it"),
])
def test_a_keyring_that_cannot_be_used_fails_at_once_and_says_why(
        hardened: GitEnv, azure: FakeAzure, keyring_dir: Path, rule: str, says: str) -> None:
    failingkeyring.set_rules(keyring_dir, rule)
    done = ls_remote(hardened)
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, says)
    assert azure.authorize_count == 0 and azure.minted_count() == 0


@pytest.mark.parametrize(("rule", "says"), [
    (f"set {ORG_KEY} failed", "the keyring failed (PasswordSetError)"),
    (f"set {ORG_KEY} locked", "the keyring is locked"),
    ("set index failed 1", "the keyring failed (PasswordSetError)"),  # the token cache's passes
])
def test_a_keyring_write_failing_after_the_mint_revokes_the_pat(
        hardened: GitEnv, azure: FakeAzure, keyring_dir: Path, rule: str, says: str) -> None:
    failingkeyring.set_rules(keyring_dir, rule)
    done = ls_remote(hardened)
    [pat] = azure.pats
    if done.returncode == 0:  # the PAT itself was stored: git may use it
        assert stored_passwords(hardened) == [pat.token] and not pat.revoked
    else:
        assert_one_clean_line(done.stderr, says)
        assert pat.revoked
        assert all(p != pat.token for p in stored_passwords(hardened)), "a revoked PAT is kept"
    assert pat.token.encode() not in done.stderr + done.stdout
    # The sign-in was kept: once the keyring works again, no browser opens.
    failingkeyring.set_rules(keyring_dir)
    assert_git_uses_the_stored_pat(hardened, azure)
    assert azure.authorize_count == 1
    assert_no_orphan_pats(azure, hardened)


def test_a_token_cache_that_cannot_be_saved_mints_nothing(
        hardened: GitEnv, azure: FakeAzure, keyring_dir: Path) -> None:
    failingkeyring.set_rules(keyring_dir, "set msal-token-cache failed")
    done = ls_remote(hardened)
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, "the keyring failed")
    assert azure.minted_count() == 0
    failingkeyring.set_rules(keyring_dir)
    assert_git_uses_the_stored_pat(hardened, azure)


# -- killed ---------------------------------------------------------------------------------------

def kill_helper_when(env: GitEnv, event: object, what: str,
                     extra_env: dict[str, str] | None = None) -> None:
    """Run `git ls-remote`, SIGKILL its credential helper once `event()` is true, and check
    that git then fails cleanly (no hang, no answer)."""
    git = start_git(env, "ls-remote", REPO_URL, extra_env=extra_env)
    wait_until(event, 30, what)  # type: ignore[arg-type]
    pid = helper_pid(git.process.pid)
    assert pid is not None, "the helper is not running"
    kill(pid)
    status, out, _ = git.finish(timeout=60)
    assert status != 0 and out == b""


@pytest.mark.parametrize("moment", ["signing-in", "creating", "storing"])
def test_killed_during_the_first_mint_then_run_again(
        hardened: GitEnv, azure: FakeAzure, moment: str) -> None:
    if moment == "signing-in":
        azure.delay("token", 10)
        kill_helper_when(hardened, lambda: fault_taken(azure, "token"), "the token request")
    elif moment == "creating":
        azure.delay("pat_create", 1)
        kill_helper_when(hardened, lambda: fault_taken(azure, "pat_create"), "pat_create")
        wait_until(lambda: azure.minted_count() == 1, 10, "the server to finish creating")
    else:
        directory = use_failing_keyring(hardened)
        failingkeyring.set_rules(directory, f"set {ORG_KEY} hang")
        kill_helper_when(hardened, lambda: any(
            line.startswith("hang set") for line in failingkeyring.log_lines(directory)),
            "the PAT to be stored")
        failingkeyring.set_rules(directory)
        assert azure.minted_count() == 1
    started = time.monotonic()
    assert_git_uses_the_stored_pat(hardened, azure)
    assert time.monotonic() - started < 20  # no lock was left behind to wait out
    assert_no_orphan_pats(azure, hardened)


@pytest.mark.parametrize("moment", ["creating", "storing", "listing", "revoking"])
def test_killed_during_a_rotation_then_run_again(
        hardened: GitEnv, azure: FakeAzure, moment: str) -> None:
    if moment == "storing":
        directory = use_failing_keyring(hardened)
    later = rotation_due(hardened, azure)
    if moment == "storing":
        failingkeyring.set_rules(directory, f"set {ORG_KEY} hang")
        kill_helper_when(hardened, lambda: any(
            line.startswith("hang set") for line in failingkeyring.log_lines(directory)),
            "the new PAT to be stored", later)
        failingkeyring.set_rules(directory)
    else:
        step = {"creating": "pat_create", "listing": "pat_list", "revoking": "pat_revoke"}[moment]
        azure.delay(step, 1)
        if step != "pat_create":
            azure.drop(step)  # so that the server does not finish the sweep for the helper
        kill_helper_when(hardened, lambda: fault_taken(azure, step), step, later)
        if step == "pat_create":
            wait_until(lambda: azure.minted_count() == 2, 10, "the server to finish creating")
    later = at_fake_time(azure)
    assert_git_uses_the_stored_pat(hardened, azure, extra_env=later)
    assert_no_orphan_pats(azure, hardened)


def test_killed_at_random_moments_then_run_again(hardened: GitEnv, azure: FakeAzure) -> None:
    """Kills at random moments of a sign-in and mint, then of two rotations; a failure names
    the seed."""
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    extra: dict[str, str] = {}
    for round_ in range(3):
        git = start_git(hardened, "ls-remote", REPO_URL, extra_env=extra)
        deadline = time.monotonic() + chance.uniform(0.2, 1.5)
        wait_until(lambda git=git, deadline=deadline: time.monotonic() >= deadline
                   or git.process.poll() is not None, 5)
        pid = helper_pid(git.process.pid)
        if pid is not None:
            kill(pid)
        git.finish(timeout=60)
        azure.advance(days=24)  # so that the next round rotates
        extra = at_fake_time(azure)
        assert ls_remote(hardened, extra_env=extra).returncode == 0, f"seed {seed} {round_}"
        assert_no_orphan_pats(azure, hardened)
