"""The OS keyring through `keyring`, with the backend chosen explicitly.

Letting `keyring` auto-detect costs time on every call and, without D-Bus, can silently pick a
plaintext backend; so the platform's own keyring is named here (Secret Service, macOS Keychain,
Windows Credential Manager) unless the user names one in `PYTHON_KEYRING_BACKEND`.
Windows Credential Manager caps a secret at 2,560 bytes, so long values (the sign-in token cache)
are split across numbered items.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from git_credential_pat.store import FILE_STORE_HINT, SERVICE, StoreError

CHUNK = 1000  # characters; UTF-16 on Windows, so 2,000 of the 2,560 bytes allowed
CHUNKED = "chunked:"
INDEX_KEY = "index"


def _platform_backend() -> Any:
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
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
    except RuntimeError:
        raise StoreError(
            "no Secret Service keyring is running (is D-Bus up? start gnome-keyring or KeePassXC), "
            f"or opt into the plaintext file store: {FILE_STORE_HINT}"
        ) from None
    return SecretService.Keyring()


class KeyringStore:
    def __init__(self) -> None:
        self._backend = _platform_backend()
        self.description = f"OS keyring ({self._backend.name})"

    def _call(self, method: str, *args: str) -> Any:
        from keyring.errors import KeyringError, KeyringLocked, PasswordDeleteError

        try:
            return getattr(self._backend, method)(SERVICE, *args)
        except PasswordDeleteError:
            return None
        except KeyringLocked:
            raise StoreError(
                "the keyring is locked; unlock it (log in to the desktop, or run "
                "`gnome-keyring-daemon --unlock`) and try again"
            ) from None
        except (KeyringError, RuntimeError, OSError) as error:
            raise StoreError(
                f"the keyring failed ({error.__class__.__name__}); "
                f"check `git credential-pat doctor`, or opt into {FILE_STORE_HINT}"
            ) from None
        except Exception as error:  # noqa: BLE001 - D-Bus and platform errors of every backend
            raise StoreError(f"the keyring failed ({error.__class__.__name__})") from None

    def read(self, key: str) -> str | None:
        value = self._call("get_password", key)
        if value is None or not value.startswith(CHUNKED):
            return value
        count = int(value[len(CHUNKED):])
        parts = [self._call("get_password", f"{key}#{n}") for n in range(count)]
        return None if None in parts else "".join(parts)

    def write(self, key: str, value: str) -> None:
        old = self._call("get_password", key)
        if len(value) > CHUNK:
            parts = [value[i:i + CHUNK] for i in range(0, len(value), CHUNK)]
            for n, part in enumerate(parts):
                self._call("set_password", f"{key}#{n}", part)
            self._call("set_password", key, f"{CHUNKED}{len(parts)}")
            self._drop_chunks(key, old, keep=len(parts))
        else:
            self._call("set_password", key, value)
            self._drop_chunks(key, old, keep=0)
        if old is None and key != INDEX_KEY:
            self._index(add=key)

    def delete(self, key: str) -> None:
        old = self._call("get_password", key)
        self._call("delete_password", key)
        self._drop_chunks(key, old, keep=0)
        if key != INDEX_KEY:
            self._index(remove=key)

    def keys(self) -> list[str]:
        return sorted(json.loads(self._call("get_password", INDEX_KEY) or "[]"))

    def _drop_chunks(self, key: str, old: str | None, keep: int) -> None:
        if old and old.startswith(CHUNKED):
            for n in range(keep, int(old[len(CHUNKED):])):
                self._call("delete_password", f"{key}#{n}")

    def _index(self, add: str = "", remove: str = "") -> None:
        """Keep the list of keys `status` and `logout` walk; the `get` path never reads it."""
        from git_credential_pat import lock

        with lock.held("keyring-index", timeout=30):
            keys = set(self.keys())
            keys = (keys | {add} if add else keys) - {remove}
            self._call("set_password", INDEX_KEY, json.dumps(sorted(keys)))
