"""Read one `keyring` item straight from the Secret Service: `get`'s hit path on Linux.

Importing `keyring` with its Secret Service stack (secretstorage, jeepney, cryptography) takes
150 ms or more, and a look-up through them spends another 9 ms on a Diffie-Hellman key exchange,
on every fetch. This module speaks just enough of the D-Bus wire protocol to do the same look-up
over the session bus socket with nothing but `_socket` (the C module: `socket` itself imports
`enum` and `selectors`), and only reads. Writes, deletes, prompts to unlock, and every error
message stay with `keyring`, so the items remain ordinary `keyring` items and a person sees one
set of messages: whenever this reader cannot answer it raises `Unavailable`, and the caller
takes the `keyring` road.

It asks what `keyring`'s SecretService backend asks: items of the collection behind the
`default` alias (never another collection, which `keyring` would not read) whose attributes
include `service` and `username`, and takes the first. A locked collection or item raises
`Locked` rather than answering "no item", so a locked keyring never passes for a miss, which
would mint a PAT.

The secret travels with the "plain" algorithm, not "dh-ietf1024-sha256-aes128-cbc-pkcs7". The
session bus is a socket that only its user (and root) can connect to, and only they can watch;
anything able to read the traffic can as well connect and ask the Secret Service for the item
itself. The exchange is also unauthenticated Diffie-Hellman, so it would not stop a process that
sits on the bus in between. It would cost, measured on the 2-core machines here with Python
3.11: two 1024-bit modular exponentiations (14 ms), importing `hashlib` and `hmac` for HKDF
(6 ms), and AES-CBC, which the standard library lacks (importing `cryptography`: 34 ms); about
54 ms, more than twice what a whole hit costs now.

The conversation is bounded: every socket operation shares one deadline (`TIMEOUT`), so a
wedged bus or a Secret Service that stops answering turns into a fallback within seconds, never
a hang.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TIMEOUT = 2.0  # seconds for the whole conversation, connect included
SECRETS = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
MAX_MESSAGE = 1 << 27  # the D-Bus specification's limit
LOCKED_ERROR = "org.freedesktop.Secret.Error.IsLocked"

_METHOD_CALL, _METHOD_RETURN, _ERROR = 1, 2, 3
_PATH, _INTERFACE, _MEMBER, _ERROR_NAME, _REPLY_SERIAL, _DESTINATION = 1, 2, 3, 4, 5, 6
_SIGNATURE = 8
_SIZE = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "h": 4, "x": 8, "t": 8, "d": 8}
_ALIGN = {**_SIZE, "s": 4, "o": 4, "g": 1, "v": 1, "a": 4, "(": 8, "{": 8}


class Unavailable(Exception):
    """This reader cannot answer (no bus, no Secret Service, an unexpected reply); `keyring`
    can, or can at least explain why not."""


class Locked(Unavailable):
    """The item or its collection is locked; `keyring` can ask the Secret Service to unlock."""


def bus_socket(address: str) -> str:
    """The socket of a D-Bus address (`DBUS_SESSION_BUS_ADDRESS`), as `jeepney` finds it:
    the first `unix:path=` or `unix:abstract=` among `;`-separated addresses, values unescaped.
    An abstract name comes back with its leading NUL, as `connect` wants it."""
    for entry in address.split(";"):
        transport, _, options = entry.partition(":")
        if transport != "unix":
            continue
        pairs = dict(option.partition("=")[::2] for option in options.split(","))
        if "abstract" in pairs:
            return "\0" + _unescape(pairs["abstract"])
        if "path" in pairs:
            return _unescape(pairs["path"])
    raise Unavailable("no unix: session bus address")


def _unescape(value: str) -> str:
    """D-Bus addresses %-escape bytes (`%2f`); decoded without `urllib`, which imports `re`."""
    head, *rest = value.split("%")
    data = head.encode()
    for part in rest:
        data += bytes.fromhex(part[:2]) + part[2:].encode()
    return data.decode()


# Marshalling: the few types these calls need, always little-endian on the way out.

def _type_end(signature: str, start: int) -> int:
    """The index just past the single complete type that starts at `signature[start]`."""
    code = signature[start]
    if code == "a":
        return _type_end(signature, start + 1)
    if code in "({":
        close, index = ")" if code == "(" else "}", start + 1
        while signature[index] != close:
            index = _type_end(signature, index)
        return index + 1
    return start + 1


def _types(signature: str) -> list[str]:
    """Split a signature into its complete types."""
    types, index = [], 0
    while index < len(signature):
        end = _type_end(signature, index)
        types.append(signature[index:end])
        index = end
    return types


def _put(out: bytearray, kind: str, value: Any) -> None:
    """Append `value` as the complete type `kind`: y, u, s, o, g, v (a (signature, value)
    pair), arrays (a dict for a{..}) and structs (a tuple). Alignment is counted from the start
    of `out`, which must sit at a multiple of 8 bytes into the message."""
    code = kind[0]
    out += bytes(-len(out) % _ALIGN[code])
    if code in "so":
        data = value.encode()
        out += len(data).to_bytes(4, "little") + data + b"\0"
    elif code == "g":
        out += bytes((len(value),)) + value.encode() + b"\0"
    elif code == "y":
        out.append(value)
    elif code == "u":
        out += value.to_bytes(4, "little")
    elif code == "v":
        inner, data = value
        _put(out, "g", inner)
        _put(out, inner, data)
    elif code == "a":
        at = len(out)
        out += bytes(4)
        out += bytes(-len(out) % _ALIGN[kind[1]])  # padding before the first element: not counted
        start = len(out)
        for element in value.items() if kind[1] == "{" else value:
            _put(out, kind[1:], element)
        out[at:at + 4] = (len(out) - start).to_bytes(4, "little")
    elif code in "({":
        for member, item in zip(_types(kind[1:-1]), value):
            _put(out, member, item)
    else:
        raise ValueError(f"cannot marshal {kind}")


class _Reader:
    """Unmarshals one message part in either byte order; arrays of bytes come back as bytes,
    a{..} as dicts, structs as tuples, variants as their value."""

    def __init__(self, data: bytes, order: str, offset: int = 0) -> None:
        self.data, self.order, self.pos = data, order, offset

    def uint(self, size: int) -> int:
        self.pos += -self.pos % size
        end = self.pos + size
        if end > len(self.data):
            raise ValueError("message truncated")
        value = int.from_bytes(self.data[self.pos:end], self.order)
        self.pos = end
        return value

    def _text(self, length: int) -> str:
        end = self.pos + length
        if end >= len(self.data) or self.data[end] != 0:
            raise ValueError("bad string")
        text = self.data[self.pos:end].decode()
        self.pos = end + 1
        return text

    def read(self, kind: str) -> Any:
        code = kind[0]
        if code in _SIZE:
            value = self.uint(_SIZE[code])
            return bool(value) if code == "b" else value
        if code in "so":
            return self._text(self.uint(4))
        if code == "g":
            return self._text(self.uint(1))
        if code == "v":
            return self.read(self.read("g"))
        if code == "a":
            length = self.uint(4)
            self.pos += -self.pos % _ALIGN[kind[1]]
            end = self.pos + length
            if end > len(self.data):
                raise ValueError("message truncated")
            if kind == "ay":
                self.pos = end
                return self.data[end - length:end]
            items = []
            while self.pos < end:
                items.append(self.read(kind[1:]))
            return dict(items) if kind[1] == "{" else items
        if code in "({":
            self.pos += -self.pos % 8
            return tuple(self.read(member) for member in _types(kind[1:-1]))
        raise ValueError(f"cannot unmarshal {kind}")


def method_call(serial: int, destination: str, path: str, interface: str, member: str,
                signature: str = "", args: tuple[Any, ...] = ()) -> bytes:
    """A METHOD_CALL message, little-endian, that expects a reply."""
    fields = [(_PATH, ("o", path)), (_INTERFACE, ("s", interface)), (_MEMBER, ("s", member)),
              (_DESTINATION, ("s", destination))]
    if signature:
        fields.append((_SIGNATURE, ("g", signature)))
    body = bytearray()
    _put(body, f"({signature})", args)
    message = bytearray(b"l")  # little-endian
    message += bytes((_METHOD_CALL, 0, 1))  # type, no flags, protocol version 1
    message += len(body).to_bytes(4, "little") + serial.to_bytes(4, "little")
    _put(message, "a(yv)", fields)
    message += bytes(-len(message) % 8)
    return bytes(message + body)


def message_size(head: bytes) -> int:
    """The whole length of the message whose first 16 bytes are `head`."""
    reader = _Reader(head, _byte_order(head), 4)
    body_length, _serial, fields_length = reader.uint(4), reader.uint(4), reader.uint(4)
    size = 16 + fields_length + (-fields_length % 8) + body_length
    if size > MAX_MESSAGE:
        raise Unavailable("the session bus sent an oversized message")
    return size


def parse_message(data: bytes) -> tuple[int, dict[int, Any], tuple[Any, ...]]:
    """A whole message's type, header fields (by code) and body (a tuple of its values)."""
    order = _byte_order(data)
    header = _Reader(data, order, 12)
    fields = dict(header.read("a(yv)"))
    header.pos += -header.pos % 8
    body = _Reader(data[header.pos:], order).read(f"({fields.get(_SIGNATURE, '')})")
    return data[1], fields, body


def _byte_order(data: bytes) -> str:
    if data[0] not in b"lB":
        raise Unavailable("the session bus speaks an unknown byte order")
    return "little" if data[0] == ord("l") else "big"


class _Bus:
    """One authenticated session bus connection that sends method calls and collects replies."""

    def __init__(self, address: str, deadline: float) -> None:
        import _socket

        self.deadline = deadline
        self.serial = 0
        # AUTH and BEGIN go out with the first calls, as sd-bus sends them: the bus reads
        # messages only after a BEGIN that followed a successful AUTH, and a refusal closes
        # the connection. `replies` checks the answer to AUTH first.
        uid = str(os.geteuid()).encode().hex().encode()
        self.outgoing = bytearray(b"\0AUTH EXTERNAL " + uid + b"\r\nBEGIN\r\n")
        self.authenticated = False
        self.buffer = b""
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            self._bound()
            self.sock.connect(address)
        except BaseException:
            self.sock.close()
            raise
        self.call("/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                  destination="org.freedesktop.DBus")

    def close(self) -> None:
        self.sock.close()

    def _bound(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Unavailable(f"no answer from the session bus within {TIMEOUT:g}s")
        self.sock.settimeout(left)

    def _send(self, data: bytes) -> None:
        self._bound()
        self.sock.sendall(data)

    def _receive(self) -> None:
        self._bound()
        data = self.sock.recv(65536)
        if not data:
            raise Unavailable("the session bus closed the connection")
        self.buffer += data

    def call(self, path: str, interface: str, member: str, signature: str = "",
             *args: Any, destination: str = SECRETS) -> int:
        """Queue a method call; `replies` sends what is queued. Returns its serial."""
        self.serial += 1
        self.outgoing += method_call(self.serial, destination, path, interface, member,
                                     signature, args)
        return self.serial

    def replies(self, *serials: int) -> dict[int, tuple[Any, ...]]:
        """Send what is queued and wait for these calls' replies (their bodies as tuples).
        Signals such as NameAcquired, and replies nobody waits for, are skipped."""
        if self.outgoing:
            self._send(bytes(self.outgoing))
            self.outgoing.clear()
        if not self.authenticated:
            self._authenticated()
        wanted, found = set(serials), {}
        while wanted:
            kind, fields, body = parse_message(self._message())
            serial = fields.get(_REPLY_SERIAL)
            if kind not in (_METHOD_RETURN, _ERROR) or serial not in wanted:
                continue
            if kind == _ERROR:
                name = fields.get(_ERROR_NAME, "")
                raise (Locked if name == LOCKED_ERROR else Unavailable)(
                    f"the Secret Service answered {name}")
            wanted.discard(serial)
            found[serial] = body
        return found

    def _authenticated(self) -> None:
        while b"\r\n" not in self.buffer:
            self._receive()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        if not line.startswith(b"OK "):
            raise Unavailable("the session bus refused EXTERNAL authentication")
        self.authenticated = True

    def _message(self) -> bytes:
        while len(self.buffer) < 16:
            self._receive()
        size = message_size(self.buffer[:16])
        while len(self.buffer) < size:
            self._receive()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def lookup(service: str, username: str, environ: dict[str, str] | None = None) -> str | None:
    """The secret `keyring.get_password(service, username)` would return, or None for no item.

    Raises `Locked` when the default collection or the item is locked, and `Unavailable` when
    the session bus or the Secret Service cannot be asked, or answers unexpectedly.
    """
    env = os.environ if environ is None else environ
    address = bus_socket(env.get("DBUS_SESSION_BUS_ADDRESS") or "")
    try:
        bus = _Bus(address, time.monotonic() + TIMEOUT)
        try:
            value = _ask(bus, {"service": service, "username": username})
        finally:
            bus.close()
        return None if value is None else value.decode()
    except TimeoutError:
        raise Unavailable(f"no answer from the session bus within {TIMEOUT:g}s") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError, RecursionError) as error:
        raise Unavailable(f"the session bus failed ({error.__class__.__name__})") from None


def _ask(bus: _Bus, attributes: dict[str, str]) -> bytes | None:
    """Three round trips: the default collection, then the session and the search, then the
    secret.

    gnome-keyring records a client when its first message arrives, but under load it now and
    then handles that message before the record exists. `OpenSession` then aborts the whole
    daemon (an upstream bug, seen here about once in 3,000 look-ups with 16 at a time), so the
    first call is `ReadAlias`, which merely answers `/` then, and is asked once more.
    `OpenSession` goes out only after a real answer, from a client gnome-keyring knows.

    The collection comes from `ReadAlias` rather than by calling its alias path
    (`/org/freedesktop/secrets/aliases/default`) as `secretstorage` does: gnome-keyring 42
    now and then resolves that path to a garbage collection name (4 calls in 3,000 here),
    while `ReadAlias` never failed. Item paths are children of their collection's path, as
    the specification lays them out, which is how the search results are narrowed to it.
    """
    service = "org.freedesktop.Secret.Service"
    for _ in range(2):
        alias = bus.call(SERVICE_PATH, service, "ReadAlias", "s", "default")
        collection = bus.replies(alias)[alias][0]
        if collection != "/":
            break
    else:
        raise Unavailable("there is no default keyring collection yet")
    session = bus.call(SERVICE_PATH, service, "OpenSession", "sv", "plain", ("s", ""))
    search = bus.call(SERVICE_PATH, service, "SearchItems", "a{ss}", attributes)
    answers = bus.replies(session, search)
    unlocked, locked = ([path for path in paths if path.startswith(collection + "/")]
                        for paths in answers[search])
    if unlocked:
        secret = bus.call(unlocked[0], "org.freedesktop.Secret.Item", "GetSecret", "o",
                          answers[session][1])
        return bus.replies(secret)[secret][0][2]
    if not locked:
        # Some services hide a locked collection's items: no item is a miss only when the
        # collection is unlocked.
        state = bus.call(collection, "org.freedesktop.DBus.Properties", "Get", "ss",
                         "org.freedesktop.Secret.Collection", "Locked")
        if not bus.replies(state)[state][0]:
            return None
    raise Locked("the default keyring collection is locked")
