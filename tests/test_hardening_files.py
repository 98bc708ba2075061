"""Hardening of the files and directories the helper makes: modes whatever the umask, no
secret written through a planted symlink, no directory another user can write, and a full disk
or a read-only HOME failing in one line that names the path, with no partial file left.

The disk faults are real filesystems: a 64 KiB tmpfs filled up, and a read-only bind mount of
HOME (mounting needs root; elsewhere these tests skip and say so).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitenv import GitEnv
from tests.hardening import assert_one_clean_line
from tests.test_install import source, user, wheelhouse  # noqa: F401 - fixtures

PLAIN = "protocol=https\nhost=git.example.com\n"


def store(env: GitEnv, n: int = 0, shell: str = "", **kwargs: object
          ) -> subprocess.CompletedProcess[bytes]:
    """The helper's `store` of a password for git.example.com (user `u{n}`), as git sends it;
    `shell` runs first in the same shell (a umask, say)."""
    request = f"{PLAIN}username=u{n}\npassword=secret-{n}-0123456789\n\n"
    return env.run("sh", "-c", f"{shell}\nexec git-credential-pat store", input=request,
                   check=False, **kwargs)  # type: ignore[arg-type]


def stored_users(env: GitEnv) -> list[str]:
    """The user names the file store holds for git.example.com, read from the file."""
    item = json.loads(json.loads(env.store_file.read_text())["https://git.example.com"])
    return [f"username={c['username']}" for c in item["credentials"]]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- modes, whatever the umask -------------------------------------------------------------

def test_under_umask_000_every_directory_and_file_is_private(genv: GitEnv) -> None:
    genv.env.pop("XDG_RUNTIME_DIR", None)  # the locks then live under ~/.cache
    done = store(genv, shell="umask 000")
    assert done.returncode == 0, done.stderr
    made = [genv.home / ".config", genv.home / ".config/git-credential-pat",
            genv.home / ".cache", genv.home / ".cache/git-credential-pat",
            genv.home / ".cache/git-credential-pat/git-credential-pat-locks"]
    assert {str(p.relative_to(genv.home)): oct(mode(p)) for p in made} == {
        str(p.relative_to(genv.home)): "0o700" for p in made}
    locks = list(made[-1].iterdir())
    assert locks and {oct(mode(p)) for p in locks} == {"0o600"}
    assert mode(genv.store_file) == 0o600
    assert sorted(p.name for p in genv.store_file.parent.iterdir()) == ["credentials.json"]


def test_installed_files_are_not_world_writable_under_umask_000(
        tmp_path: Path, source: Path, wheelhouse: Path) -> None:  # noqa: F811 - fixtures
    env = user(tmp_path, wheelhouse=wheelhouse)
    done = env.run("dash", "-c", f"umask 000; exec dash {source / 'install.sh'}", check=False,
                   timeout=300, input=b"")
    assert done.returncode == 0, done.stderr
    written = [p for p in (env.home / ".local").rglob("*") if not p.is_symlink()]
    assert written
    open_to_all = [str(p) for p in written if mode(p) & 0o002]
    assert open_to_all == []


# -- symlinks and directories others can write ----------------------------------------------

def test_a_planted_symlink_never_receives_a_secret(genv: GitEnv, tmp_path: Path) -> None:
    """The helper runs as PID 1 of a PID namespace of its own, so the temporary name an
    attacker would predict (credentials.json.1.tmp) is known; a symlink waits there, and one
    in place of the file itself."""
    if not shutil.which("unshare") or subprocess.run(
            ["unshare", "--pid", "--fork", "true"], check=False, timeout=20).returncode:
        pytest.skip("needs unshare with PID namespaces (root)")
    assert store(genv, 0).returncode == 0
    loot = tmp_path / "loot"
    loot.write_text("")
    directory = genv.store_file.parent
    (directory / "credentials.json.1.tmp").symlink_to(loot)
    done = genv.run("unshare", "--pid", "--fork", "git-credential-pat", "store",
                    input=f"{PLAIN}username=u1\npassword=secret-1-0123456789\n\n", check=False)
    assert done.returncode == 0, done.stderr
    assert loot.read_text() == ""
    assert not genv.store_file.is_symlink() and mode(genv.store_file) == 0o600
    assert stored_users(genv) == ["username=u0", "username=u1"]
    loot.write_text("{}")
    genv.store_file.unlink()
    genv.store_file.symlink_to(loot)
    assert store(genv, 2).returncode == 0
    assert loot.read_text() == "{}"
    assert not genv.store_file.is_symlink() and mode(genv.store_file) == 0o600


@pytest.mark.parametrize("which", ["store", "locks"])
def test_a_directory_others_can_write_is_refused_in_one_line(genv: GitEnv, which: str) -> None:
    genv.env.pop("XDG_RUNTIME_DIR", None)
    assert store(genv, 0).returncode == 0
    directory = (genv.store_file.parent if which == "store"
                 else genv.home / ".cache/git-credential-pat/git-credential-pat-locks")
    directory.chmod(0o777)
    before = genv.store_file.read_bytes()
    done = store(genv, 1)
    assert done.returncode == 1
    assert_one_clean_line(done.stderr, f"refusing to use {directory}: other users can write "
                                       "to it (mode 777); run: chmod go-w")
    assert genv.store_file.read_bytes() == before


# -- a full disk, a read-only HOME ----------------------------------------------------------

@contextlib.contextmanager
def mounted(where: Path, *options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *options, str(where)], capture_output=True, check=False,
                          timeout=20)
    if done.returncode:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=20)


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing_behind(
        genv: GitEnv) -> None:
    directory = genv.store_file.parent
    with mounted(directory, "-t", "tmpfs", "-o", "size=64k,mode=700", "tmpfs"):
        for n in range(6):
            assert store(genv, n).returncode == 0
        before = genv.store_file.read_bytes()
        filler = directory / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as stream:
            while True:
                stream.write(b"\0" * 4096)
                stream.flush()
        done = store(genv, 6)
        assert done.returncode == 1
        assert_one_clean_line(done.stderr, f"cannot write {genv.store_file}: "
                                           "No space left on device; nothing was changed")
        assert sorted(p.name for p in directory.iterdir()) == ["credentials.json", "filler"]
        assert genv.store_file.read_bytes() == before
        filler.unlink()
        assert store(genv, 6).returncode == 0
        assert len(stored_users(genv)) == 7


def test_a_temporary_file_a_killed_process_left_is_removed_by_the_next_write(
        genv: GitEnv) -> None:
    assert store(genv, 0).returncode == 0
    leftover = genv.store_file.parent / "credentials.json.4242.0badc0de.tmp"
    leftover.write_text('{"https://git.example.com": "secret-9-0123456789"}')
    assert genv.run("git-credential-pat", "logout", "--all", check=False).returncode == 0
    assert sorted(p.name for p in genv.store_file.parent.iterdir()) == ["credentials.json"]
    assert "secret-" not in genv.store_file.read_text()


@pytest.mark.parametrize("locks", ["runtime dir", "home"])
def test_a_read_only_home_is_one_line_naming_the_directory(genv: GitEnv, locks: str) -> None:
    if locks == "home":
        genv.env.pop("XDG_RUNTIME_DIR", None)
    with mounted(genv.home, "--bind", str(genv.home)):
        done = subprocess.run(["mount", "-o", "remount,bind,ro", str(genv.home)],
                              capture_output=True, check=False, timeout=20)
        if done.returncode:
            pytest.skip(f"cannot remount read-only: {done.stderr.decode().strip()}")
        done = store(genv, 0)
        assert done.returncode == 1
        first = genv.home / ".cache"  # the locks' place, wherever XDG_RUNTIME_DIR points
        assert_one_clean_line(done.stderr, f"cannot create the directory {first}: "
                                           "Read-only file system")
        assert not first.exists()
