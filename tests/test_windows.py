"""The Windows tier: the helper as Windows Python runs it, under Wine, driven by Linux git.

Linux git runs `git credential-pat`, which here is the Windows helper (`python.exe -m
git_credential_pat`) with Credential Manager, APPDATA, LOCALAPPDATA and msvcrt locks of its
own; its own git calls reach the real git through `tests.windows.GitRelay`. Every Wine process
costs a fraction of a second, so each test does what it checks with as few as it can.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_credential_pat import launcher
from git_credential_pat.core.constants import SERVICE
from tests.azurefixtures import REPO_URL
from tests.fakeazure import FakeAzure
from tests.fakeazure.fake import BROWSER_SCRIPT
from tests.gitenv import GitEnv, parse_answer
from tests.netfixtures import ALICE, ORG, Contoso
from tests.test_secretservice import NOT_ON_THE_HIT_PATH
from tests.windows import (
    RELAY_VARIABLE,
    GitRelay,
    Unavailable,
    Windows,
    windows_machine,
    windows_path,
)

# Credential Manager's limit for one item's secret (CRED_MAX_CREDENTIAL_BLOB_SIZE); Wine does
# not enforce it, so the sizes are read back instead.
MAX_BLOB = 2560
ORG_HOST_URL = "https://dev.azure.com"
ORG_URL = f"{ORG_HOST_URL}/{ORG}"
# `os` is Linux's saving alone (edges/system.py reads `posix` there); Windows has no `posix`, and
# its hit uses `os`, which the interpreter's start-up has imported already.
NOT_ON_A_WINDOWS_HIT = (NOT_ON_THE_HIT_PATH - {"os", "_collections_abc"}) | {"win32ctypes", "cffi"}


@pytest.fixture(scope="session")
def windows() -> Iterator[Windows]:
    try:
        with windows_machine() as machine:
            yield machine
    except Unavailable as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def relay(windows: Windows) -> Iterator[GitRelay]:
    with GitRelay(windows) as running:
        yield running


@pytest.fixture
def wenv(windows: Windows, relay: GitRelay, tmp_path: Path) -> Iterator[GitEnv]:
    """A Windows user's machine in miniature: Linux git whose `git credential-pat` is the
    Windows helper, Credential Manager empty; none of the Linux places (XDG, D-Bus) reach it."""
    windows.clear_credentials()
    env = GitEnv.create(tmp_path, windows.bin)
    for name in list(env.env):
        if name.startswith("XDG_") or name in ("DBUS_SESSION_BUS_ADDRESS", "TMPDIR",
                                               "GIT_CREDENTIAL_PAT_STORE"):
            del env.env[name]
    env.env.update({**windows.env, "PATH": env.env["PATH"], RELAY_VARIABLE: str(relay.port)})
    yield env
    env.run("git", "credential-cache", "exit", check=False)


def azure_configured(env: GitEnv) -> GitEnv:
    env.config("credential.https://dev.azure.com.helper", "pat")
    env.config("credential.https://dev.azure.com.useHttpPath", "true")
    return env


def fill(env: GitEnv, url: str) -> dict[str, str]:
    """What `git credential fill` answers, or {} when no helper has a credential."""
    done = env.git("credential", "fill", input=f"url={url}\n\n", check=False)
    return parse_answer(done.stdout) if done.returncode == 0 else {}


def ours(windows: Windows) -> dict[str, int]:
    """The helper's keys in Credential Manager and their blob sizes, whichever of keyring's
    target names (`SERVICE`, or `KEY@SERVICE` once another key took that) each is under."""
    return {item.username: item.blob_bytes for item in windows.credentials()
            if item.target in (SERVICE, f"{item.username}@{SERVICE}")}


def test_a_plain_host_is_stored_answered_and_erased(wenv: GitEnv, windows: Windows) -> None:
    wenv.config("credential.helper", "pat")
    wenv.git("credential", "approve",
             input="url=https://git.example.com/team/repo\nusername=ann\npassword=s3cret\n\n")
    assert fill(wenv, "https://git.example.com/team/repo")["password"] == "s3cret"
    assert len(ours(windows)) >= 1
    wenv.git("credential", "reject",
             input="url=https://git.example.com/\nusername=ann\npassword=s3cret\n\n")
    assert fill(wenv, "https://git.example.com/team/repo") == {}


def test_an_organization_item_is_stored_and_answered(wenv: GitEnv, windows: Windows) -> None:
    azure_configured(wenv)
    wenv.git("credential", "approve", input="url=https://dev.azure.com/fabrikam/p/_git/r\n"
             "username=pat\npassword=PAT-fabrikam\n\n")
    assert fill(wenv, "https://dev.azure.com/fabrikam/p/_git/r")["password"] == "PAT-fabrikam"
    assert "https://dev.azure.com/fabrikam" in ours(windows)


def test_a_long_value_is_split_into_items_windows_accepts(wenv: GitEnv,
                                                          windows: Windows) -> None:
    """Characters outside the BMP take two UTF-16 units, so a split by characters alone
    could exceed the limit."""
    password = ("pässwörd-🔑-" * 400)[:5000]
    wenv.config("credential.helper", "pat")
    wenv.git("credential", "approve", input=f"url=https://long.example.com/\nusername=lee\n"
             f"password={password}\n\n")
    assert fill(wenv, "https://long.example.com/")["password"] == password
    sizes = ours(windows)
    chunks = {key: size for key, size in sizes.items() if "long.example.com" in key}
    assert len(chunks) > 3
    assert max(chunks.values()) <= MAX_BLOB
    wenv.git("credential", "reject", input="url=https://long.example.com/\nusername=lee\n\n")
    assert not any("long.example.com" in key for key in ours(windows))


def expect(process: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """The next line a Windows process prints, waited for at most `timeout` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "no line from the Windows process in time"
    return process.stdout.readline().decode().strip()


def say(process: subprocess.Popen[bytes], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(f"{line}\n".encode())
    process.stdin.flush()


# Holds the lock until told to let go. Whether the region is still locked when the lock's file
# is closed is checked from a second handle at that moment: Windows frees a closed handle's
# locks only eventually, so a lock left to the close could keep the next process waiting.
LOCK_HOLDER = """\
import hashlib, msvcrt, os, sys
from git_credential_pat.edges import lock
path = os.path.join(lock.lock_dir(), hashlib.sha256(b"windows tier").hexdigest()[:24] + ".lock")
print(path, flush=True)
close = os.close
def checked_close(fd):
    probe = os.open(path, os.O_RDWR)
    try:
        msvcrt.locking(probe, msvcrt.LK_NBLCK, 1)
        msvcrt.locking(probe, msvcrt.LK_UNLCK, 1)
        print("free when closed", flush=True)
    except OSError:
        print("still locked when closed", flush=True)
    finally:
        close(probe)
    close(fd)
lock.os.close = checked_close
with lock.held("windows tier", timeout=5):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""
LOCK_CONTENDER = """\
import sys
from git_credential_pat.edges import lock
from git_credential_pat.core.errors import HelperError
try:
    with lock.held("windows tier", timeout=1):
        print("acquired while held", flush=True)
except HelperError as error:
    print(f"waited: {error}", flush=True)
sys.stdin.readline()
with lock.held("windows tier", timeout=5):
    print("acquired", flush=True)
"""


def test_the_lock_is_exclusive_across_processes(windows: Windows) -> None:
    holder = windows.start("-c", LOCK_HOLDER)
    processes = [holder]
    try:
        assert windows.linux_path(expect(holder)).parent == (
            windows.folders["LOCALAPPDATA"] / "git-credential-pat" / "git-credential-pat-locks")
        assert expect(holder) == "held"
        contender = windows.start("-c", LOCK_CONTENDER)
        processes.append(contender)
        assert expect(contender).startswith("waited: another git-credential-pat process has "
                                            "been busy for 1s")
        say(holder, "let go")
        assert expect(holder) == "free when closed"
        assert expect(holder) == "released"
        say(contender, "again")
        assert expect(contender) == "acquired"
    finally:
        for process in processes:
            process.kill()
            process.communicate(timeout=30)


def test_files_live_under_appdata_and_localappdata(wenv: GitEnv, windows: Windows) -> None:
    """The opt-in file store and the locks, where Windows keeps a user's data."""
    wenv.env["GIT_CREDENTIAL_PAT_STORE"] = "file"
    wenv.config("credential.helper", "pat")
    wenv.git("credential", "approve",
             input="url=https://files.example.com/\nusername=fay\npassword=in-a-file\n\n")
    store = windows.folders["APPDATA"] / "git-credential-pat" / "credentials.json"
    assert "in-a-file" in "".join(json.loads(store.read_text()).values())
    locks = windows.folders["LOCALAPPDATA"] / "git-credential-pat" / "git-credential-pat-locks"
    assert list(locks.glob("*.lock"))


# What keyring's Windows backend writes, the direct reader reads, under both of keyring's
# target names and whatever the text; one Windows process for all of it.
READER_AGAINST_KEYRING = """\
import ctypes, json
from keyring.backends import Windows
from git_credential_pat.edges import wincred
backend = Windows.WinVaultKeyring()
values = {"first": "PAT-0123456789abcdef", "second": "pässwörd ✓ 密码 🔑", "empty": "",
          "third": "x" * 1000}
for key, value in values.items():  # each moves the one before to a compound name
    backend.set_password("reader-test", key, value)
backend.set_password("reader-test", "first", "PAT-updated")  # now under the bare name again
backend.set_password("another-tool", "mine", "theirs")
utf8 = "café".encode()  # as other tools write; five bytes, so not UTF-16
item = wincred._Credential(Type=1, TargetName="utf8@reader-test", UserName="utf8", Persist=2,
                           CredentialBlobSize=len(utf8),
                           CredentialBlob=ctypes.cast(ctypes.c_char_p(utf8), ctypes.c_void_p))
assert ctypes.WinDLL("advapi32").CredWriteW(ctypes.byref(item), 0)

# The store reads through the reader, chunks included, and takes keyring's road for what the
# reader cannot read: a blob that is neither UTF-16 nor UTF-8, which keyring cannot read either.
from git_credential_pat.core.errors import StoreError
from git_credential_pat.edges.keyringstore import KeyringStore
KeyringStore().write("https://dev.azure.com/reader", "token-cache " * 500)
store = KeyringStore()
chunked = store.read("https://dev.azure.com/reader")
loaded = store._loaded_backend is not None
bad = bytes([0xff])
item = wincred._Credential(Type=1, TargetName="bad@git-credential-pat", UserName="bad",
                           Persist=2, CredentialBlobSize=1,
                           CredentialBlob=ctypes.cast(ctypes.c_char_p(bad), ctypes.c_void_p))
assert ctypes.WinDLL("advapi32").CredWriteW(ctypes.byref(item), 0)
try:
    store.read("bad")
    failed = None
except StoreError as error:
    failed = str(error)
print(json.dumps({
    "keyring": {key: backend.get_password("reader-test", key) for key in [*values, "utf8"]},
    "reader": {key: wincred.lookup("reader-test", key) for key in [*values, "utf8"]},
    "missing": wincred.lookup("reader-test", "nobody"),
    "other service": wincred.lookup("reader-test", "mine"),
    "chunked": chunked, "keyring loaded to read": loaded,
    "unreadable": failed, "keyring loaded after that": store._loaded_backend is not None,
}))
"""


def test_the_reader_reads_what_keyring_wrote_and_serves_the_store(windows: Windows) -> None:
    seen = json.loads(windows.py("-c", READER_AGAINST_KEYRING).stdout)
    assert seen["reader"] == seen["keyring"]
    assert seen["reader"]["first"] == "PAT-updated"
    assert seen["reader"]["second"] == "pässwörd ✓ 密码 🔑"
    assert seen["reader"]["utf8"] == "café"
    assert seen["chunked"] == "token-cache " * 500 and not seen["keyring loaded to read"]
    assert seen["unreadable"].startswith("the keyring failed (UnicodeDecodeError)")
    assert seen["keyring loaded after that"]
    assert seen["missing"] is None and seen["other service"] is None


def test_a_hit_imports_nothing_heavy(wenv: GitEnv, windows: Windows) -> None:
    """A stored, valid PAT is read through `wincred`, and git run without `subprocess`: none
    of what a Linux hit must not import, nor keyring's Windows dependencies. The installed
    launcher's own program runs here as its `#!` line has pip's launcher run it, with
    `-X importtime` added."""
    azure_configured(wenv)
    wenv.git("credential", "approve", input="url=https://dev.azure.com/budget/p/_git/r\n"
             "username=pat\npassword=PAT-budget\n\n")
    assert b'python.exe" -IS\r\n' in windows.exe.read_bytes()
    done = wenv.run(str(windows.wine), str(windows.python), "-X", "importtime", "-IS",
                    windows_path(windows.exe), "get",
                    input=b"protocol=https\nhost=dev.azure.com\npath=budget/p/_git/r\n\n")
    assert b"password=PAT-budget\n" in done.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.decode().splitlines()
                if line.startswith("import time:") and "imported package" not in line}
    assert "git_credential_pat.edges.wincred" in imported
    assert {name.split(".")[0] for name in imported} & NOT_ON_A_WINDOWS_HIT == set()


@pytest.fixture
def azure_wenv(wenv: GitEnv, windows: Windows, relay: GitRelay, azure: FakeAzure,
               contoso: Contoso) -> Iterator[GitEnv]:
    """`wenv` whose network is the fake Azure, reached as on a corporate machine through git's
    proxy and CA settings, with the fake browser as the Windows user's browser: Windows
    Python's `webbrowser` starts `browser.exe`, which the relay turns into the fake browser."""
    azure.add_repo(ORG, "proj", "repo")
    wenv.config("http.proxy", azure.proxy_url)
    wenv.config("http.sslCAInfo", str(azure.ca_path))  # Z: makes it a Windows path too
    browser = "Z:" + str(windows.stand_in_dir / "browser.exe")  # `/`: webbrowser splits it
    wenv.env.update(GIT_CREDENTIAL_PAT_SIGNIN_TIMEOUT="30", GIT_CREDENTIAL_PAT_TIMEOUT="10",
                    BROWSER=f"{browser} %s")
    relay.programs["browser"] = ([sys.executable, str(BROWSER_SCRIPT)], {
        "PATH": windows.env["PATH"], "HTTPS_PROXY": azure.proxy_url,
        "SSL_CERT_FILE": str(azure.ca_path), "FAKEAZURE_BROWSER_LOG": str(azure.browser_log)})
    yield wenv
    del relay.programs["browser"]


def windows_command(env: GitEnv, windows: Windows, *args: str
                    ) -> subprocess.CompletedProcess[bytes]:
    """`git-credential-pat ARGS` as a Windows user runs the installed command."""
    return env.run(str(windows.wine), str(windows.exe), *args, check=False)


def test_a_first_clone_signs_in_and_mints_a_pat(azure_wenv: GitEnv, windows: Windows,
                                                azure: FakeAzure) -> None:
    """The Windows route, after `pip install`: `configure`, then a clone signs in once through
    the browser and mints a PAT, kept in Credential Manager within its limits."""
    assert windows_command(azure_wenv, windows, "configure").returncode == 0
    azure_wenv.git("clone", REPO_URL, "repo")
    assert (azure_wenv.home / "repo" / "README.md").exists()
    [pat] = azure.pats
    assert pat.org == ORG and pat.user == ALICE and not pat.all_orgs
    assert azure.authorize_count == 1
    items = windows.credentials()
    assert f"{ORG_URL}" in ours(windows)
    assert max(item.blob_bytes for item in items) <= MAX_BLOB


def test_configure_status_doctor_logout_unconfigure(azure_wenv: GitEnv,
                                                    windows: Windows) -> None:
    """The commands a Windows user runs, each under Windows Python with its git calls going
    to real git. git's credential-cache does not start for the Windows helper here (no
    HOME), as on Git for Windows builds without Unix sockets: `configure` leaves it out."""
    before = (azure_wenv.home / ".gitconfig").read_bytes()
    done = windows_command(azure_wenv, windows, "configure")
    assert done.returncode == 0, done.stderr
    assert b"Set up for https://dev.azure.com" in done.stdout
    helpers = azure_wenv.git("config", "--get-all", f"credential.{ORG_HOST_URL}.helper")
    assert helpers.stdout == b"pat\n"
    azure_wenv.git("credential", "approve", input=f"url={REPO_URL}\nusername=pat\n"
                   "password=PAT-stored\n\n")
    done = windows_command(azure_wenv, windows, "status")
    assert done.returncode == 0 and ORG.encode() in done.stdout, done
    done = windows_command(azure_wenv, windows, "doctor")
    checks = {line.split()[1]: line.split()[0] for line in done.stdout.decode().splitlines()
              if line[:1].isalpha()}
    assert checks["store"] == "ok" and checks["helper"] == "ok", done.stdout.decode()
    assert b"WinVaultKeyring" in done.stdout and b"git-credential-pat.exe" in done.stdout
    done = windows_command(azure_wenv, windows, "logout", "--all")
    assert done.returncode == 0, done.stderr
    assert ORG_URL not in ours(windows)
    done = windows_command(azure_wenv, windows, "unconfigure")
    assert done.returncode == 0, done.stderr
    assert (azure_wenv.home / ".gitconfig").read_bytes() == before


# The Windows git runner (`_winapi`, no `subprocess`): arguments arrive as given whatever their
# quotes and backslashes, stdin arrives, an exit status is reported, a `git.exe` in the current
# directory (a repository's) is not the one run, and a git that never ends is given up on.
RUNNER = """\
import json, os, sys
from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import git
odd = ["with space", 'a "quoted" word', "ends in \\\\\\\\", 'back\\\\\\\\"slash', "", "tab\\tand"]
seen = {"argv": git.run("rev-parse", "--sq-quote", *odd), "odd": odd,
        "stdin": git.run("hash-object", "--stdin", stdin="sent on stdin\\n").strip(),
        "in a repository": git.run("--version", cwd=sys.argv[1]).strip()}
try:
    git.run("config", "--get", "no.such.key")
except HelperError as error:
    seen["status"] = str(error)
git.set_timeout(1)
os.environ["GIT_CONFIG_GLOBAL"] = sys.argv[2]  # a FIFO nobody writes: git waits for ever
try:
    git.run("config", "--global", "--get", "user.name")
except HelperError as error:
    seen["hang"] = str(error)
print(json.dumps(seen))
"""


def test_git_runs_as_asked_and_within_its_time(windows: Windows, relay: GitRelay,
                                               tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / "git.exe").write_bytes(launcher.windows_program(
        windows_path(windows.python), "print('a planted git.exe')", launcher.console_launcher()))
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    try:
        done = windows.py("-c", RUNNER, windows_path(repository), str(fifo),
                          env={RELAY_VARIABLE: str(relay.port), "GIT_CONFIG_NOSYSTEM": "1"})
    finally:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # lets the waiting git go
    seen = json.loads(done.stdout)
    assert seen["argv"] == subprocess.run(["git", "rev-parse", "--sq-quote", *seen["odd"]],
                                          capture_output=True, text=True, check=True).stdout
    assert seen["stdin"] == subprocess.run(["git", "hash-object", "--stdin"], check=True,
                                           input=b"sent on stdin\n",
                                           capture_output=True).stdout.decode().strip()
    assert seen["in a repository"].startswith("git version ")
    assert seen["status"] == "`git config` failed (exit status 1)"
    assert seen["hang"].startswith("`git config` did not finish within 1 s")
