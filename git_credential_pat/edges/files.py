"""The directories and files the helper makes, with modes that do not depend on the umask.

Under `umask 000` Python's own `makedirs` leaves every parent it creates writable by everyone,
and a directory someone else can write lets them swap a symlink in where a secret is about to
be written. So each directory is created 0700, parents included; one that another user owns or
can write is refused; and a secret is written to a fresh 0600 file that cannot be a symlink
(`O_EXCL`, `O_NOFOLLOW`), then renamed over the old one, never written through a link. A full
disk or a read-only HOME is one line naming the path and the problem, and leaves no partial
file behind.
"""

from __future__ import annotations

import os
import sys

from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import printable

PRIVATE_DIR = 0o700
SECRET_FILE = 0o600


def problem(error: OSError) -> str:
    """What went wrong, in the words of the OS ("No space left on device")."""
    return error.strerror or error.__class__.__name__


def private_dir(path: str) -> str:
    """`path`, a directory only its owner can use: created 0700 with every missing parent, or
    refused when another user owns it or can write to it."""
    missing = []
    head = path
    while head and not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR)  # the umask can only take bits away from 0700
        except FileExistsError:
            continue  # made meanwhile by a parallel process, checked below
        except OSError as error:
            raise HelperError(f"cannot create the directory {printable(directory)}: "
                              f"{problem(error)}") from None
    check_private(path)
    return path


def check_private(path: str) -> None:
    """Refuse a directory another user could put files (or symlinks) into."""
    if sys.platform == "win32":
        return  # ACLs, not modes: the profile directories the helper uses are the user's
    try:
        found = os.stat(path)
    except OSError as error:
        raise HelperError(f"cannot use the directory {printable(path)}: {problem(error)}") from None
    if found.st_uid != os.geteuid():
        raise HelperError(f"refusing to use {printable(path)}: it belongs to another user "
                          f"(uid {found.st_uid}); remove it, and the helper makes its own")
    if found.st_mode & 0o022:
        raise HelperError(f"refusing to use {printable(path)}: other users can write to it "
                          f"(mode {found.st_mode & 0o777:o}); run: chmod go-w {printable(path)}")


def write_secret(path: str, text: str) -> None:
    """Replace the file at `path` with `text`, readable only by its owner, in a directory only
    its owner can use (`replace_file`)."""
    private_dir(os.path.dirname(path) or ".")
    replace_file(path, text.encode("utf-8"), SECRET_FILE)


def replace_file(path: str, data: bytes, mode: int) -> None:
    """Replace the file at `path` with `data`, all or nothing: a fresh temporary file beside it
    (never a symlink someone planted), synced, then renamed; on failure the temporary file,
    which may hold secrets, is removed and the old file is left as it was."""
    import secrets

    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
        os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temporary, flags, mode)
    except OSError as error:
        raise HelperError(f"cannot write {printable(path)}: {problem(error)}") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        try:  # noqa: SIM105 - the one clean-up, whatever state the file was left in
            os.unlink(temporary)
        except OSError:
            pass
        raise HelperError(f"cannot write {printable(path)}: {problem(error)}; "
                          "nothing was changed") from None


def remove_leftovers(path: str) -> None:
    """Remove the temporary files of `write_secret` for `path` that a killed process left, which
    may hold secrets. Only for a caller holding the lock that every writer of `path` takes,
    so that none of them is still being written."""
    import glob

    for leftover in glob.glob(f"{glob.escape(path)}.*.tmp"):
        try:  # noqa: SIM105 - gone already is as good
            os.unlink(leftover)
        except OSError:
            pass
