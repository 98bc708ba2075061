"""Every secret store keeps the one contract the helper is written against (`edges.store`).

The same cases run against the opt-in file store, the OS keyring (the real Secret Service)
read through the helper's own D-Bus reader, and the same keyring read through `keyring` alone;
a store added later joins the `store` fixture and must pass them all.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_credential_pat.core.constants import SERVICE
from git_credential_pat.edges import secretservice
from git_credential_pat.edges.filestore import FileStore
from git_credential_pat.edges.keyringstore import CHUNK, KeyringStore
from git_credential_pat.edges.store import SecretStore

LONG = "".join(chr(0x41 + n % 26) for n in range(3 * CHUNK + 17))  # three chunks and a bit
ODD = 'quotes " and \\ backslashes, a\nnewline, tabs\t, ünïcödé and 🔑'


def keyring_through_keyring() -> KeyringStore:
    store = KeyringStore()
    store._direct_read = None  # every read goes through `keyring`, as on macOS and Windows
    return store


@pytest.fixture(params=["file", "keyring", "keyring-only"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecretStore]:
    if request.param == "file":
        yield FileStore(str(tmp_path / "private" / "credentials.json"))
        return
    request.getfixturevalue("keyring_clean")
    yield KeyringStore() if request.param == "keyring" else keyring_through_keyring()


def test_an_absent_key_reads_as_none(store: SecretStore) -> None:
    assert store.read("https://git.example.com") is None
    assert store.keys() == []


@pytest.mark.parametrize("value", ["short", ODD, LONG, ""])
def test_what_is_written_reads_back_exactly(store: SecretStore, value: str) -> None:
    store.write("https://dev.azure.com/contoso", value)
    assert store.read("https://dev.azure.com/contoso") == value


def test_a_write_replaces_and_a_long_value_can_shrink(store: SecretStore) -> None:
    store.write("k", LONG)
    store.write("k", "short again")
    assert store.read("k") == "short again"
    store.write("k", LONG[::-1])
    assert store.read("k") == LONG[::-1]


def test_keys_lists_what_is_stored_and_nothing_else(store: SecretStore) -> None:
    for key in ("https://dev.azure.com/contoso", "https://git.example.com", "long"):
        store.write(key, LONG if key == "long" else "v")
    store.delete("https://git.example.com")
    assert store.keys() == ["https://dev.azure.com/contoso", "long"]


def test_delete_forgets_and_deleting_nothing_is_fine(store: SecretStore) -> None:
    store.write("k", LONG)
    store.delete("k")
    store.delete("k")
    store.delete("never-written")
    assert (store.read("k"), store.keys()) == (None, [])


def test_keys_do_not_collide(store: SecretStore) -> None:
    store.write("https://dev.azure.com/contoso", "org")
    store.write("https://dev.azure.com/contoso#0", "not a chunk of it")
    assert store.read("https://dev.azure.com/contoso") == "org"
    assert store.read("https://dev.azure.com/contoso#0") == "not a chunk of it"


def test_the_store_says_where_secrets_live(store: SecretStore) -> None:
    assert store.description.startswith(("file ", "OS keyring ("))


def test_the_file_store_is_private(tmp_path: Path) -> None:
    path = tmp_path / "private" / "credentials.json"
    FileStore(str(path)).write("k", "v")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_direct_reader_reads_what_keyring_writes(keyring_clean: None) -> None:
    keyring_through_keyring().write("https://dev.azure.com/contoso", ODD)
    assert secretservice.lookup(SERVICE, "https://dev.azure.com/contoso") == ODD
    assert secretservice.lookup(SERVICE, "https://dev.azure.com/other") is None
