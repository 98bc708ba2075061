"""The wire format on its own: what a helper may accept and what it may write."""

from __future__ import annotations

import pytest

from git_credential_pat.core import protocol
from git_credential_pat.core.protocol import ProtocolError


def test_reads_every_attribute_git_defines_and_keeps_lists_in_order() -> None:
    message = protocol.parse(
        b"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=example.com:8443\n"
        b"path=a/b.git\nusername=u\npassword=p\npassword_expiry_utc=1700000000\n"
        b"oauth_refresh_token=r\nwwwauth[]=Basic realm=x\nwwwauth[]=Bearer a=b\nauthtype=Bearer\n"
        b"credential=c\nephemeral=1\nstate[]=helper:1\ncontinue=1\nquit=0\nfuture=ignored\n"
    )
    assert message.get("host") == "example.com:8443"
    assert message.get("password_expiry_utc") == "1700000000"
    assert message.values("wwwauth[]") == ["Basic realm=x", "Bearer a=b"]
    assert message.values("capability[]") == ["authtype", "state"]
    assert message.get("ephemeral") == "1"


def test_splits_at_the_first_equals_and_stops_at_a_blank_line() -> None:
    message = protocol.parse(b"protocol=https\nhost=h\npassword=a=b=c\n\nhost=evil\n")
    assert message.get("password") == "a=b=c"
    assert message.get("host") == "h"


def test_an_empty_list_value_clears_the_list() -> None:
    message = protocol.parse(b"protocol=https\nhost=h\nwwwauth[]=a\nwwwauth[]=\nwwwauth[]=b\n")
    assert message.values("wwwauth[]") == ["b"]


@pytest.mark.parametrize("data", [
    b"protocol=https\nhost=h\r\n",
    b"protocol=https\nhost=h\npassword=a\rhost=evil\n",
    b"protocol=https\nhost=h\x00evil\n",
    b"protocol=https\n",
    b"host=h\n",
    b"protocol=https\nhost=\n",
    b"protocol=https\nhost=h\nnot a pair\n",
    b"protocol=https\nhost=h\n=value\n",
    b"url=https://h/%0ahost=evil\n",
    b"protocol=https\nhost=h\npath=" + b"a" * 65536 + b"\n",
])
def test_refuses_input_git_would_never_send(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse(data)


def test_url_expands_like_git_does() -> None:
    message = protocol.parse(b"host=old\nurl=https://a%40b.com:p%3Ax@h.example:8443/x/y%20z.git\n")
    assert message.attrs == {"protocol": "https", "host": "h.example:8443", "username": "a@b.com",
                             "password": "p:x", "path": "x/y z.git"}


def test_a_long_line_just_under_the_limit_is_fine() -> None:
    value = "a" * (protocol.MAX_LINE - len("wwwauth[]="))
    message = protocol.parse(f"protocol=https\nhost=h\nwwwauth[]={value}\n".encode())
    assert message.values("wwwauth[]") == [value]


@pytest.mark.parametrize("value", ["a\nhost=evil", "a\rb", "a\0b"])
def test_never_writes_a_value_that_breaks_a_line(value: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.format([("username", "u"), ("password", value)])


def test_writes_key_value_lines() -> None:
    written = protocol.format([("username", "u"), ("password", "p=q")])
    assert written == b"username=u\npassword=p=q\n"
