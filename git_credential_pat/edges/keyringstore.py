"""The OS keyring through `keyring`, with the backend chosen explicitly.

Letting `keyring` auto-detect costs time on every call and, without D-Bus, can silently pick a
plaintext backend; so the platform's own keyring is named here (Secret Service, macOS Keychain,
Windows Credential Manager) unless the user names one in `PYTHON_KEYRING_BACKEND`.
Windows Credential Manager caps a secret at 2,560 bytes, so long values (the sign-in token cache)
are split across numbered items.

Reads go first to a reader of the platform's own that answers from the same items without
importing `keyring`: `secretservice` on the Secret Service, `wincred` on Credential Manager.
`keyring` (75 to 150 ms to import) is loaded only to write, delete, list, or when that reader
cannot answer (a locked keyring, no D-Bus), so that its prompt to unlock and its errors are the
ones a person sees. On macOS every read goes through `keyring`'s Keychain backend, imported by
name so that no backend discovery runs; it is the one platform where nothing here can be run.
"""

from __future__ import annotations

import sys

from git_credential_pat.core.constants import DEFAULT_STORE_TIMEOUT, FILE_STORE_HINT, SERVICE
from git_credential_pat.core.errors import StoreError
from git_credential_pat.edges import trace
from git_credential_pat.edges.system import environ

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from types import ModuleType
    from typing import Any

CHUNK = 1000  # characters; UTF-16 on Windows, so 2,000 of the 2,560 bytes allowed
CHUNKED = "chunked:"
MAX_CHUNKS = 1000  # a megabyte: far more than a token cache of many accounts
INDEX_KEY = "index"


def _chunk_count(value: str | None) -> int:
    """How many chunks a stored value says it was split into; 0 for a whole value, or for a
    count that is not a number from 1 to MAX_CHUNKS (never a loop of a billion reads)."""
    if not value or not value.startswith(CHUNKED):
        return 0
    digits = value[len(CHUNKED):]
    count = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 4 else 0
    return count if count <= MAX_CHUNKS else 0


class NoAnswer(Exception):
    """A keyring call outlasted its bound."""


def bounded(work: Callable[[], Any], seconds: float) -> Any:
    """`work()` on a daemon thread, abandoned after `seconds` (`NoAnswer`): a D-Bus call to a
    stopped daemon or an unanswered unlock prompt cannot be interrupted, and the process
    leaves without it. What `work` raises is raised here."""
    import threading

    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as error:  # noqa: BLE001 - handed to the caller as it is
            outcome.append((False, error))

    worker = threading.Thread(target=target, name="keyring", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise NoAnswer
    done, value = outcome[0]
    if not done:
        raise value
    return value


class NotReadAhead(Exception):
    """`read_ahead` cannot answer; `read` can, or can say why not."""


def _direct_reader() -> ModuleType | None:
    """The reader of the items `_platform_backend`'s backend keeps, where there is one: the
    module, whose `lookup(service, username, start_service=)` raises its `Unavailable` (or
    `NotRunning`) when it cannot answer."""
    if environ().get("PYTHON_KEYRING_BACKEND") or sys.platform == "darwin":
        return None
    if sys.platform == "win32":
        from git_credential_pat.edges import wincred

        return wincred
    from git_credential_pat.edges import secretservice

    return secretservice


def _platform_backend() -> Any:
    if environ().get("PYTHON_KEYRING_BACKEND"):
        import keyring

        return keyring.get_keyring()
    if sys.platform == "darwin":
        from keyring.backends import macOS

        return macOS.Keyring()
    if sys.platform == "win32":
        from keyring.backends import Windows

        return Windows.WinVaultKeyring()
    from keyring.backends import SecretService

    try:
        SecretService.Keyring.priority  # noqa: B018 - raises when no Secret Service answers
    except (RuntimeError, OSError):  # OSError: a bus address whose socket is gone
        raise StoreError(
            "no Secret Service keyring is running (is D-Bus up? start gnome-keyring or KeePassXC), "
            f"or opt into the plaintext file store: {FILE_STORE_HINT}"
        ) from None
    return SecretService.Keyring()


def _one_writer() -> AbstractContextManager[None]:
    """Writes take turns across processes: each is a read-modify-write of the key index, and
    gnome-keyring 42 has been seen to crash under many parallel writes, coming back locked."""
    from git_credential_pat.edges import lock

    return lock.held("keyring-write", timeout=30)


class KeyringStore:
    def __init__(self) -> None:
        self._direct_read = _direct_reader()
        self._why_not_direct = ""  # for the trace, once it is known whether there is one
        self._loaded_backend: Any = None
        self.timeout = DEFAULT_STORE_TIMEOUT

    @property
    def _backend(self) -> Any:
        if self._loaded_backend is None:
            self._loaded_backend = _platform_backend()
        return self._loaded_backend

    @property
    def description(self) -> str:
        return f"OS keyring ({self._backend.name})"

    def _call(self, method: str, *args: str) -> Any:
        from keyring.errors import KeyringError, KeyringLocked, PasswordDeleteError

        try:  # the backend is opened on the worker too: finding the Secret Service can hang
            return bounded(lambda: getattr(self._backend, method)(SERVICE, *args), self.timeout)
        except StoreError:
            raise  # the backend's own, saying what is missing
        except PasswordDeleteError:
            return None
        except KeyringLocked:
            raise StoreError(
                "the keyring is locked; unlock it (log in to the desktop, or run "
                "`gnome-keyring-daemon --unlock`) and try again"
            ) from None
        except NoAnswer:
            raise StoreError(
                f"the keyring did not answer within {self.timeout:g} s (is its daemon stopped "
                "or hung, or an unlock prompt waiting?); restart it, or set "
                f"credential.patStoreTimeout to wait longer, or opt into {FILE_STORE_HINT}"
            ) from None
        except (KeyringError, RuntimeError, OSError) as error:
            raise StoreError(
                f"the keyring failed ({error.__class__.__name__}); "
                f"check `git credential-pat doctor`, or opt into {FILE_STORE_HINT}"
            ) from None
        except Exception as error:  # noqa: BLE001 - D-Bus and platform errors of every backend
            raise StoreError(f"the keyring failed ({error.__class__.__name__})") from None

    def _direct(self, key: str, start_service: bool) -> str | None:
        """The Secret Service's answer without `keyring`. Whatever stops it, except a service
        that was not to be started, stops it for the rest of the process: one bounded wait per
        process, not one per read."""
        reader = self._direct_read
        try:
            return reader.lookup(SERVICE, key, start_service=start_service)
        except reader.NotRunning:
            raise
        except reader.Unavailable as error:
            self._direct_read = None
            self._why_not_direct = str(error)
            raise

    def _get(self, key: str) -> str | None:
        reader = self._direct_read
        if reader is not None:
            try:
                return self._direct(key, start_service=True)
            except reader.Unavailable:
                pass
        if self._why_not_direct:
            trace.log(f"reading through keyring instead: {self._why_not_direct}")
            self._why_not_direct = ""
        return self._call("get_password", key)

    def read(self, key: str) -> str | None:
        return self._read(key, self._get)

    def read_ahead(self, key: str) -> str | None:
        """What `read` would answer, asked of a running Secret Service directly, for a caller
        that may not need it: `get` reads ahead while `git config` tells it which store to use,
        and the file store's users must not have a Secret Service started for nothing. Raises
        `NotReadAhead` when it cannot answer so."""
        reader = self._direct_read
        if reader is None:
            raise NotReadAhead
        try:
            return self._read(key, lambda part: self._direct(part, start_service=False))
        except reader.Unavailable:
            raise NotReadAhead from None

    @staticmethod
    def _read(key: str, get: Callable[[str], str | None]) -> str | None:
        value = get(key)
        count = _chunk_count(value)
        if not count:
            return value  # a count out of range is left for the item's reader to refuse
        parts = [get(f"{key}#{n}") for n in range(count)]
        return None if None in parts else "".join(parts)

    def write(self, key: str, value: str) -> None:
        with _one_writer():
            old = self._call("get_password", key)
            if old is None and key != INDEX_KEY:
                # First, so that a failure here leaves nothing stored: a caller that then
                # revokes the secret it could not store must not leave it in the keyring.
                self._index(add=key)
            if len(value) > CHUNK:
                parts = [value[i:i + CHUNK] for i in range(0, len(value), CHUNK)]
                for n, part in enumerate(parts):
                    self._call("set_password", f"{key}#{n}", part)
                self._call("set_password", key, f"{CHUNKED}{len(parts)}")
                self._drop_chunks(key, old, keep=len(parts))
            else:
                self._call("set_password", key, value)
                self._drop_chunks(key, old, keep=0)

    def delete(self, key: str) -> None:
        with _one_writer():
            old = self._call("get_password", key)
            self._call("delete_password", key)
            self._drop_chunks(key, old, keep=0)
            if key != INDEX_KEY:
                self._index(remove=key)

    def keys(self) -> list[str]:
        import json

        return sorted(json.loads(self._call("get_password", INDEX_KEY) or "[]"))

    def _drop_chunks(self, key: str, old: str | None, keep: int) -> None:
        if old:
            for n in range(keep, _chunk_count(old)):
                self._call("delete_password", f"{key}#{n}")

    def _index(self, add: str = "", remove: str = "") -> None:
        """Keep the list of keys `status` and `logout` walk; the `get` path never reads it.
        Called by a writer, so the read-modify-write is not interleaved."""
        import json

        keys = set(self.keys())
        keys = (keys | {add} if add else keys) - {remove}
        self._call("set_password", INDEX_KEY, json.dumps(sorted(keys)))
