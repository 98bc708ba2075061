"""Cross-process locks, so parallel git processes mint one PAT instead of sixteen.

The lock is an OS file lock (flock on POSIX, msvcrt on Windows): the kernel drops it when its
holder exits, even by SIGKILL, so a killed helper never leaves a lock behind. The lock files hold
nothing; their names are hashes, so they do not even reveal which organizations are in use.

Every process of the user must find the same lock file, wherever it runs: a desktop session, cron,
ssh or a service see different XDG_RUNTIME_DIR, TMPDIR and login sessions, and two lock files for
one organization would let two processes mint at once. So the directory depends on the home
directory alone (LOCALAPPDATA on Windows, which is the user's own whatever the session).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import files

POLL_SECONDS = 0.05


def lock_dir() -> str:
    local = os.environ.get("LOCALAPPDATA") if sys.platform == "win32" else ""
    base = local or os.path.join(os.path.expanduser("~"), ".cache")
    return files.private_dir(os.path.join(base, "git-credential-pat", "git-credential-pat-locks"))


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        """Windows frees the locks of a closed handle only when it gets round to it, so the
        next process could find the lock still held; it is given back before the close."""
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def held(name: str, timeout: float) -> Iterator[None]:
    """Hold the lock called `name`, waiting at most `timeout` seconds for it."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    path = os.path.join(lock_dir(), digest + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as error:
        raise HelperError(f"cannot create the lock file {path}: {files.problem(error)}") from None
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise HelperError(
                    f"another git-credential-pat process has been busy for {timeout:.0f}s "
                    "(signing in?); try again when it is done"
                )
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)
