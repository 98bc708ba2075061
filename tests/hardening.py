"""What the hardening tests share: a machine wired to the fake Azure, reading what the helper
stored, the "no orphan PAT" invariant, and waiting for events with a deadline.

tests/conftest.py makes its fixture available to every test module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import failingkeyring
from tests.azurefixtures import configured
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv
from tests.netfixtures import Contoso

ORG_KEY = "https://dev.azure.com/contoso"
DAY = 86400
HELPER_PREFIX = b"git-credential-pat: "
SIGNIN_NOTICE = HELPER_PREFIX + b"opening a browser to sign in"


@pytest.fixture(name="hardened")
def hardened_fixture(genv: GitEnv, azure: FakeAzure, contoso: Contoso) -> GitEnv:
    """A machine configured like install.sh against the fake, with the opt-in file store."""
    return configured(genv, azure)


def use_failing_keyring(env: GitEnv) -> Path:
    """Switch the helper to `tests.failingkeyring`; returns its directory (rules, data, log)."""
    directory = env.home.parent / "failingkeyring"
    env.env.pop("GIT_CREDENTIAL_PAT_STORE", None)
    env.env.update(failingkeyring.env(directory))
    return directory


# -- what the helper stored ----------------------------------------------------------------------

def secret_service_item(key: str) -> str | None:
    """An item as the helper's keyring store wrote it to the Secret Service (via secret-tool,
    not through the product), its chunks joined."""
    def lookup(name: str) -> str | None:
        done = subprocess.run(["secret-tool", "lookup", "service", "git-credential-pat",
                               "username", name], capture_output=True, timeout=20, check=False)
        return done.stdout.decode() if done.returncode == 0 else None

    value = lookup(key)
    if value and value.startswith("chunked:"):
        parts = [lookup(f"{key}#{n}") for n in range(int(value[len("chunked:"):]))]
        return None if None in parts else "".join(parts)  # type: ignore[arg-type]
    return value


def stored_item(env: GitEnv, key: str = ORG_KEY) -> dict:
    """The helper's item under `key` in whichever store `env` uses; empty when absent."""
    if env.env.get("FAILING_KEYRING_DIR"):
        text = failingkeyring.contents(Path(env.env["FAILING_KEYRING_DIR"])).get(key)
    elif env.env.get("GIT_CREDENTIAL_PAT_STORE") == "file":
        data = json.loads(env.store_file.read_text()) if env.store_file.exists() else {}
        text = data.get(key)
    else:
        text = secret_service_item(key)
    return json.loads(text) if text else {"credentials": []}


def stored_passwords(env: GitEnv, key: str = ORG_KEY) -> list[str]:
    return [c["password"] for c in stored_item(env, key)["credentials"]]


def assert_no_orphan_pats(azure: FakeAzure, env: GitEnv) -> None:
    """Every PAT the fake ever minted is stored by the helper, revoked, or expired: none is
    live where nobody can use or revoke it. At most one is live, and it is the stored one."""
    stored = set(stored_passwords(env))
    now = azure.now()
    orphans = [p.authorization_id for p in azure.pats if p.live(now) and p.token not in stored]
    assert orphans == [], f"live PATs nobody holds: {orphans}"
    live = [p for p in azure.pats if p.live(now)]
    assert len(live) <= 1, f"{len(live)} live PATs"


# -- output git and people see -------------------------------------------------------------------

def helper_lines(stderr: bytes) -> list[bytes]:
    """What the helper told the person, less the notice that a browser opens to sign in."""
    return [line for line in stderr.splitlines()
            if line.startswith(HELPER_PREFIX) and not line.startswith(SIGNIN_NOTICE)]


def assert_one_clean_line(stderr: bytes, *expected: str) -> str:
    """The helper said exactly one line (besides the sign-in notice), without a traceback,
    containing each `expected`."""
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")
    lines = helper_lines(stderr)
    assert len(lines) == 1, stderr.decode(errors="replace")
    line = lines[0].decode()
    assert line.isprintable()
    for text in expected:
        assert text in line, line
    return line


# -- waiting and killing -------------------------------------------------------------------------

def wait_until(predicate: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    """Poll for an event the test cannot be notified of, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.02)


def fault_taken(azure: FakeAzure, step: str) -> bool:
    """The fake has begun answering the request a fault was queued for (and is delaying it)."""
    with azure.state.lock:
        return not azure.state.faults.get(step)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    pending, found = [pid], []
    while pending:
        for child in children(pending.pop()):
            found.append(child)
            pending.append(child)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def helper_pid(root: int) -> int | None:
    """The git-credential-pat process (the Python interpreter running it) under `root`."""
    for pid in descendants(root):
        args = cmdline(pid)
        if args and "python" in Path(args[0]).name and any(
                a.endswith("git-credential-pat") for a in args[1:]):
            return pid
    return None


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Started:
    """A git command running in the background, in its own session."""

    process: subprocess.Popen[bytes]

    def finish(self, timeout: float = 60) -> tuple[int, bytes, bytes]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err


def start_git(env: GitEnv, *args: str, extra_env: dict[str, str] | None = None,
              input: bytes = b"") -> Started:
    process = subprocess.Popen(["git", *args], env={**env.env, **(extra_env or {})},
                               cwd=env.home, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    assert process.stdin is not None
    process.stdin.write(input)
    process.stdin.close()
    process.stdin = None  # communicate() must not flush it again
    return Started(process)
