"""The opt-in plaintext store: one JSON file readable only by its owner, for machines with no
keyring. Never chosen on its own: `credential.patStore file` says the user accepts it."""

from __future__ import annotations

import os
import sys

from git_credential_pat.core.constants import DEFAULT_STORE_TIMEOUT
from git_credential_pat.core.errors import HelperError, StoreError
from git_credential_pat.edges import files


def default_file() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or (
        os.environ.get("APPDATA") if sys.platform == "win32" else None
    ) or os.path.expanduser("~/.config")
    return os.path.join(base, "git-credential-pat", "credentials.json")


class FileStore:
    """A JSON file readable only by its owner, for servers with no keyring; opt-in and warned."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.timeout = DEFAULT_STORE_TIMEOUT
        self.description = f"file {path} (plaintext, mode 0600)"

    def _load(self) -> dict[str, str]:
        from git_credential_pat.core.entries import parse_json

        try:
            with open(self.path, encoding="utf-8") as stream:
                data = parse_json(stream.read())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, StopIteration, SystemError) as error:
            raise StoreError(f"cannot read {self.path}: {error.__class__.__name__}") from None
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, str]) -> None:
        import json

        try:  # under the file's lock, which every writer holds
            files.remove_leftovers(self.path)
            files.write_secret(self.path, json.dumps(data, indent=1, sort_keys=True))
        except HelperError as error:
            raise StoreError(str(error)) from None

    def read(self, key: str) -> str | None:
        return self._load().get(key)

    def write(self, key: str, value: str) -> None:
        from git_credential_pat.edges import lock

        with lock.held(f"file:{self.path}", timeout=self.timeout):
            data = self._load()
            data[key] = value
            self._save(data)

    def delete(self, key: str) -> None:
        from git_credential_pat.edges import lock

        with lock.held(f"file:{self.path}", timeout=self.timeout):
            data = self._load()
            if data.pop(key, None) is not None:
                self._save(data)

    def keys(self) -> list[str]:
        return sorted(self._load())
