"""Where secrets live: the OS keyring by default, a 0600 file only when the user opts in.

Every backend is the same tiny key/value interface so everything above them is plain logic
(`filestore`, `keyringstore`; tests/test_stores.py holds each to the same contract).
Values are JSON text written by `entries`; keys are readable names such as
`https://dev.azure.com/contoso`, so a person browsing their keyring sees what each item is for.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object

class SecretStore(Protocol):
    description: str
    timeout: float  # seconds one call may wait: the keyring's answer, or the file's lock

    def read(self, key: str) -> str | None: ...

    def write(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> list[str]: ...


def open_store(kind: str, store_file: str = "") -> SecretStore:
    if kind == "file":
        from git_credential_pat.edges.filestore import FileStore, default_file

        return FileStore(store_file or default_file())
    from git_credential_pat.edges.keyringstore import KeyringStore

    return KeyringStore()
