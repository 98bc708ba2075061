"""Read one `keyring` item straight from Windows Credential Manager: `get`'s hit path on Windows.

Importing `keyring` with its Windows backend (jaraco's helpers, `importlib_metadata`,
pywin32-ctypes and through it `cffi`) costs 75 to 110 ms on every fetch, for what is one
`CredReadW` call. This module makes that call through `ctypes` and only reads. Writes, deletes
and every error message stay with `keyring`, so the items remain ordinary `keyring` items:
whenever this reader cannot answer it raises `Unavailable`, and the caller takes the `keyring`
road.

It reads what `keyring`'s WinVaultKeyring reads. That backend keeps one generic credential per
(service, user) pair although Credential Manager has one target name per item: the item written
last for a service sits under the bare service name with the user as its `UserName`, and an
earlier one, when a later one takes that name, moves to the compound target `{user}@{service}`.
So a look-up takes the bare name when its `UserName` is the user asked for, else the compound
name, whatever its `UserName`. The secret is the blob decoded as UTF-16, which `keyring`
writes, or as UTF-8, which `keyring` also accepts from other tools.
"""

from __future__ import annotations

import ctypes
from ctypes import wintypes

CRED_TYPE_GENERIC = 1
ERROR_NOT_FOUND = 1168


class Unavailable(Exception):
    """This reader cannot answer (no Credential Manager, an unreadable blob); `keyring` can, or
    can at least explain why not."""


class NotRunning(Unavailable):
    """Never raised: Credential Manager is part of Windows. Named so that both readers, this
    and `secretservice`, answer to one interface."""


class _Credential(ctypes.Structure):
    """CREDENTIALW, as advapi32 lays it out."""

    _fields_ = (
        ("Flags", wintypes.DWORD),
        ("Type", wintypes.DWORD),
        ("TargetName", wintypes.LPWSTR),
        ("Comment", wintypes.LPWSTR),
        ("LastWritten", wintypes.FILETIME),
        ("CredentialBlobSize", wintypes.DWORD),
        ("CredentialBlob", ctypes.c_void_p),
        ("Persist", wintypes.DWORD),
        ("AttributeCount", wintypes.DWORD),
        ("Attributes", ctypes.c_void_p),
        ("TargetAlias", wintypes.LPWSTR),
        ("UserName", wintypes.LPWSTR),
    )


_advapi32: ctypes.WinDLL | None = None


def _library() -> ctypes.WinDLL:
    global _advapi32
    if _advapi32 is None:
        try:
            library = ctypes.WinDLL("advapi32", use_last_error=True)
        except (AttributeError, OSError) as error:  # AttributeError: not Windows
            raise Unavailable(f"no advapi32 ({error.__class__.__name__})") from None
        library.CredReadW.argtypes = (wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD,
                                      ctypes.POINTER(ctypes.POINTER(_Credential)))
        library.CredReadW.restype = wintypes.BOOL
        library.CredFree.argtypes = (ctypes.c_void_p,)
        library.CredFree.restype = None
        _advapi32 = library
    return _advapi32


def read(target: str) -> tuple[str, bytes] | None:
    """The `UserName` and blob of the generic credential called `target`, or None."""
    library = _library()
    found = ctypes.POINTER(_Credential)()
    if not library.CredReadW(target, CRED_TYPE_GENERIC, 0, ctypes.byref(found)):
        error = ctypes.get_last_error()
        if error == ERROR_NOT_FOUND:
            return None
        raise Unavailable(f"CredReadW failed with error {error}")
    try:
        item = found.contents
        size = item.CredentialBlobSize
        blob = ctypes.string_at(item.CredentialBlob, size) if size else b""
        return item.UserName or "", blob
    finally:
        library.CredFree(found)


def decode(blob: bytes) -> str:
    try:
        return blob.decode("utf-16")
    except UnicodeDecodeError:
        pass
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        raise Unavailable("an item that is neither UTF-16 nor UTF-8") from None


def lookup(service: str, username: str, start_service: bool = True) -> str | None:
    """The secret `keyring.get_password(service, username)` returns on Windows, or None.
    `start_service` is the Secret Service reader's; Credential Manager is always running."""
    del start_service
    found = read(service)
    if found is None or (username and found[0] != username):
        found = read(f"{username}@{service}")
    return None if found is None else decode(found[1])
