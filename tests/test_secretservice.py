"""The direct Secret Service reader against the real gnome-keyring, and the hit path it serves.

What `keyring` writes, the reader must read back exactly; whatever the reader cannot answer (a
locked keyring, no bus, no Secret Service, a bus that never answers) must reach `keyring`,
whose message the person sees, and never pass for "no item" or hang. A hit must import none of
the heavy or slow modules; that is checked from `-X importtime`, not by timing.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_credential_pat import launcher
from git_credential_pat.core.constants import SERVICE
from git_credential_pat.edges import secretservice
from git_credential_pat.edges.keyringstore import KeyringStore
from tests.gitenv import GitEnv
from tests.privatekeyring import PrivateKeyring

ORG_KEY = "https://dev.azure.com/contoso"
REQUEST = b"protocol=https\nhost=dev.azure.com\npath=contoso/proj/_git/repo\n\n"
APPROVE = b"url=https://dev.azure.com/contoso/proj/_git/repo\nusername=pat\npassword=PAT-1234\n\n"
NOT_ON_THE_HIT_PATH = frozenset({
    "keyring", "msal", "requests", "jeepney", "secretstorage", "cryptography", "re", "json",
    "subprocess", "dataclasses", "typing", "enum", "os", "_collections_abc",
})


def keyring_backend():
    from keyring.backends import SecretService

    return SecretService.Keyring()


@pytest.fixture
def private_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateKeyring]:
    """A Secret Service of this test's own, which it may lock; this process uses it too."""
    with PrivateKeyring(tmp_path / "keyring") as keyring:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", keyring.address)
        yield keyring


def configured(env: GitEnv, bus: dict[str, str] | None = None) -> GitEnv:
    """The configuration install.sh writes, with the OS keyring (on `bus`) as the store."""
    env.with_keyring()
    env.env.update(bus or {})
    env.config("credential.https://dev.azure.com.helper", "pat")
    env.config("credential.https://dev.azure.com.useHttpPath", "true")
    return env


# What keyring writes, the reader reads.

@pytest.mark.parametrize("value", [
    "PAT-0123456789abcdef",
    "pässwörd ✓ 密码 🔑",
    "x" * 200_000,  # many reads from the socket for one message
], ids=["ascii", "utf-8", "long"])
def test_reads_what_keyring_wrote(keyring_clean: None, value: str) -> None:
    keyring_backend().set_password(SERVICE, ORG_KEY, value)
    assert secretservice.lookup(SERVICE, ORG_KEY) == value


def test_no_item_is_none_and_other_services_are_not_read(keyring_clean: None) -> None:
    keyring_backend().set_password("another-tool", ORG_KEY, "theirs")
    try:
        assert secretservice.lookup(SERVICE, ORG_KEY) is None
        assert secretservice.lookup(SERVICE, "https://dev.azure.com/nobody") is None
    finally:
        keyring_backend().delete_password("another-tool", ORG_KEY)


def test_a_chunked_value_is_read_without_loading_keyring(keyring_clean: None) -> None:
    value = "token-cache " * 500  # longer than one keyring item holds on Windows
    KeyringStore().write(ORG_KEY, value)
    store = KeyringStore()
    assert store.read(ORG_KEY) == value
    assert store._loaded_backend is None


def test_only_the_default_collection_is_read(private_keyring: PrivateKeyring) -> None:
    """keyring reads the `default` alias's collection; an item elsewhere is not its item."""
    subprocess.run(
        ["secret-tool", "store", "--label=elsewhere",
         "--collection=/org/freedesktop/secrets/collection/session",
         "service", SERVICE, "username", ORG_KEY],
        input=b"not-this-one", check=True, timeout=20)
    assert secretservice.lookup(SERVICE, ORG_KEY) is None
    assert keyring_backend().get_password(SERVICE, ORG_KEY) is None


# What it cannot answer goes to keyring, which says what is wrong.

def test_a_locked_keyring_is_not_a_miss(private_keyring: PrivateKeyring, genv: GitEnv) -> None:
    env = configured(genv, private_keyring.env)
    env.git("credential", "approve", input=APPROVE)
    private_keyring.lock()
    with pytest.raises(secretservice.Locked):
        secretservice.lookup(SERVICE, ORG_KEY)
    started = time.monotonic()
    done = env.helper("get", REQUEST)
    assert time.monotonic() - started < 20
    assert done.returncode == 1 and done.stdout == b"quit=1\n"  # no password prompt from git
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("git-credential-pat: the keyring is locked; unlock it")


def test_the_item_is_read_while_unlocked(private_keyring: PrivateKeyring, genv: GitEnv) -> None:
    env = configured(genv, private_keyring.env)
    env.git("credential", "approve", input=APPROVE)
    assert b"password=PAT-1234\n" in env.helper("get", REQUEST).stdout


@pytest.mark.parametrize("address", ["", "tcp:host=localhost,port=1", "unix:path=/nonexistent"],
                         ids=["unset", "no-unix-transport", "no-socket"])
def test_without_a_bus_keyring_explains(address: str, genv: GitEnv) -> None:
    with pytest.raises(secretservice.Unavailable):
        secretservice.lookup(SERVICE, ORG_KEY, {"DBUS_SESSION_BUS_ADDRESS": address})
    env = configured(genv)
    env.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    done = env.helper("get", REQUEST, extra_env={"DBUS_SESSION_BUS_ADDRESS": address}
                      if address else None)
    assert done.returncode == 1 and done.stdout == b"quit=1\n"  # no password prompt from git
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("git-credential-pat: no Secret Service keyring is running")


def test_a_bus_without_a_secret_service(tmp_path: Path, genv: GitEnv) -> None:
    with PrivateKeyring(tmp_path / "bus", secret_service=False) as bus:
        with pytest.raises(secretservice.Unavailable, match="ServiceUnknown"):
            secretservice.lookup(SERVICE, ORG_KEY, bus.env)
        with pytest.raises(secretservice.NotRunning):  # what the read-ahead asks for
            secretservice.lookup(SERVICE, ORG_KEY, bus.env, start_service=False)
        done = configured(genv, bus.env).helper("get", REQUEST)
    assert done.returncode == 1 and done.stdout == b"quit=1\n"  # no password prompt from git
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("git-credential-pat: no Secret Service keyring is running")


def test_a_bus_that_never_answers_is_given_up_on(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secretservice, "TIMEOUT", 0.5)
    path = tmp_path / "wedged"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wedged:
        wedged.bind(str(path))
        wedged.listen()  # accepts connections into the backlog, never reads a byte
        started = time.monotonic()
        with pytest.raises(secretservice.Unavailable, match="no answer"):
            secretservice.lookup(SERVICE, ORG_KEY, {"DBUS_SESSION_BUS_ADDRESS": f"unix:{path=!s}"})
        assert time.monotonic() - started < 2


def test_a_bus_that_refuses_us(tmp_path: Path) -> None:
    path = tmp_path / "refusing"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()

        def refuse() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"REJECTED EXTERNAL\r\n")

        thread = threading.Thread(target=refuse)
        thread.start()
        with pytest.raises(secretservice.Unavailable, match="refused"):
            secretservice.lookup(SERVICE, ORG_KEY, {"DBUS_SESSION_BUS_ADDRESS": f"unix:{path=!s}"})
        thread.join()


# The wire format.

@pytest.mark.parametrize(("address", "expected"), [
    ("unix:path=/run/user/1000/bus", "/run/user/1000/bus"),
    ("unix:path=/tmp/dbus-x,guid=0123abcd", "/tmp/dbus-x"),
    ("unix:abstract=/tmp/dbus-Ab12,guid=0123abcd", "\0/tmp/dbus-Ab12"),
    ("tcp:host=localhost,port=4;unix:path=/tmp/with%20space%2c", "/tmp/with space,"),
    ("unix:path=/tmp/caf%c3%a9", "/tmp/café"),
])
def test_bus_addresses(address: str, expected: str) -> None:
    assert secretservice.bus_socket(address) == expected


def test_an_abstract_socket_bus(tmp_path: Path) -> None:
    name = f"git-credential-pat-test-{os.getpid()}"
    with PrivateKeyring(tmp_path, secret_service=False, listen=f"unix:abstract={name}") as bus:
        assert secretservice.bus_socket(bus.address) == f"\0{name}"
        with pytest.raises(secretservice.Unavailable, match="ServiceUnknown"):
            secretservice.lookup(SERVICE, ORG_KEY, bus.env)


def test_a_method_call_reads_back_as_written() -> None:
    data = secretservice.method_call(7, "org.example", "/a/b", "org.example.I", "M", "sa{ss}vo",
                                     ("x", {"k": "v", "k2": "v2"}, ("s", "inner"), "/p"))
    assert len(data) == secretservice.message_size(data[:16])
    kind, fields, body = secretservice.parse_message(data)
    assert kind == 1
    assert fields == {1: "/a/b", 2: "org.example.I", 3: "M", 6: "org.example", 8: "sa{ss}vo"}
    assert body == ("x", {"k": "v", "k2": "v2"}, "inner", "/p")


def big_endian_secret_reply(reply_to: int, secret: bytes) -> bytes:
    """The Secret Service's answer to GetSecret, `(oayays)`, as a big-endian machine sends it."""
    body = b""
    for data, text in ((b"/session/1", True), (b"", False), (secret, False), (b"text/plain", True)):
        body += bytes(-len(body) % 4) + struct.pack(">I", len(data)) + data + b"\0" * text
    fields = (struct.pack(">BBBBI", 5, 1, ord("u"), 0, reply_to)  # REPLY_SERIAL
              + struct.pack(">BBBBB", 8, 1, ord("g"), 0, 8) + b"(oayays)\0")  # SIGNATURE
    head = b"B" + bytes((2, 0, 1)) + struct.pack(">III", len(body), 99, len(fields))
    return head + fields + bytes(-len(fields) % 8) + body


def test_a_big_endian_reply() -> None:
    data = big_endian_secret_reply(5, "sécret".encode())
    assert secretservice.message_size(data[:16]) == len(data)
    kind, fields, body = secretservice.parse_message(data)
    assert (kind, fields[5], fields[8]) == (2, 5, "(oayays)")
    assert body == (("/session/1", b"", "sécret".encode(), "text/plain"),)


@pytest.mark.parametrize("cut", [17, 40, -1])
def test_a_truncated_reply_is_refused(cut: int) -> None:
    data = big_endian_secret_reply(5, b"secret")
    with pytest.raises(ValueError, match=r"truncated|bad string"):
        secretservice.parse_message(data[:cut])


# The hit path, structurally.

def test_a_hit_imports_nothing_heavy(kenv: GitEnv, tmp_path: Path) -> None:
    """A stored, valid PAT is answered without keyring, msal, requests, `re`, `json` and the
    rest, as the installed launcher runs it (`-I -S`)."""
    env = configured(kenv)
    env.git("credential", "approve", input=APPROVE)
    command = tmp_path / "git-credential-pat"
    command.write_text(launcher.script(sys.executable, launcher.search_path()))
    done = env.run(sys.executable, "-X", "importtime", "-I", "-S", str(command), "get",
                   input=REQUEST)
    assert b"password=PAT-1234\n" in done.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.decode().splitlines()
                if line.startswith("import time:") and "imported package" not in line}
    assert "git_credential_pat.edges.secretservice" in imported
    assert {name.split(".")[0] for name in imported} & NOT_ON_THE_HIT_PATH == set()


@pytest.mark.parametrize("where", ["environment", "git config"])
def test_a_traced_hit_shows_the_lookup_and_the_answer_but_not_the_pat(
        kenv: GitEnv, tmp_path: Path, where: str) -> None:
    """Tracing covers the hit path, switched on either way; what it shows never includes the
    PAT, while git still gets it."""
    env = configured(kenv)
    env.git("credential", "approve", input=APPROVE)
    log = tmp_path / "trace.log"
    if where == "environment":
        done = env.helper("get", REQUEST, extra_env={"GIT_CREDENTIAL_PAT_TRACE": "1"})
        text = done.stderr.decode()
    else:
        env.config("credential.patTrace", str(log))
        done = env.helper("get", REQUEST)
        assert done.stderr == b""
        text = log.read_text()
    assert b"password=PAT-1234\n" in done.stdout
    lines = text.splitlines()
    assert any("get: protocol=https host=dev.azure.com path=contoso/proj/_git/repo" in line
               for line in lines)
    assert any(f"{ORG_KEY}: read" in line and "an item" in line for line in lines)
    assert any("get answered: username=pat password=<redacted>" in line for line in lines)
    assert "PAT-1234" not in text


def test_a_hit_answered_by_git_s_cache_is_traced_where_the_helper_sees_it(kenv: GitEnv) -> None:
    """With git's credential-cache in front (as configure writes it), git never asks the
    helper's `get` on a hit, only sends `store` after it; the trace says what that was."""
    env = configured(kenv)
    url = "credential.https://dev.azure.com.helper"
    env.config("--replace-all", url, "cache --timeout=60")
    env.config("--add", url, "pat")
    try:
        env.git("credential", "approve", input=APPROVE)
        traced = {"GIT_CREDENTIAL_PAT_TRACE": "1"}
        fill = env.git("credential", "fill", input=REQUEST, extra_env=traced)
        assert b"password=PAT-1234\n" in fill.stdout
        assert b"git-credential-pat" not in fill.stderr  # the cache answered
        done = env.git("credential", "approve", input=APPROVE, extra_env=traced)
        text = done.stderr.decode()
        assert "store: git used the stored PAT that get answers with; nothing to change" in text
        assert "PAT-1234" not in text
    finally:
        env.git("credential-cache", "exit", check=False)


def test_an_untraced_hit_says_nothing(kenv: GitEnv) -> None:
    env = configured(kenv)
    env.git("credential", "approve", input=APPROVE)
    done = env.helper("get", REQUEST)
    assert b"password=PAT-1234\n" in done.stdout and done.stderr == b""
