"""Hardening of what the helper prints: text from a remote URL, a server or the store may hold
terminal escapes (clear screen, cursor moves, a window title, `ESC c` resetting the terminal),
and none may reach the terminal unescaped, on any path: git's actions, the commands' output,
argparse's usage errors. The escaping has one place (`core.redact`); these tests look only at
what comes out of the processes (or a `Terminal`'s streams).
"""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings, strategies as st

from git_credential_pat.commands.output import Terminal
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv
from tests.hardening import assert_one_clean_line, helper_lines
from tests.netfixtures import ALICE

HOSTILE_USER = "%1b%5b2J%1b%5bHfake%1b%5d0%3btitle%07%40x"  # clear, home, "fake", a title
HOSTILE_URL = f"https://{HOSTILE_USER}@dev.azure.com/contoso/proj/_git/repo"
OUR_COLOURS = re.compile(r"\x1b\[(?:0|1|2|31|32|33)m")  # what `Terminal` paints with


def control_characters(text: str, colour: bool = False) -> list[str]:
    """The control characters in output, less line breaks (and our own colours, if on)."""
    if colour:
        text = OUR_COLOURS.sub("", text)
    return [c for c in text if not c.isprintable() and c != "\n"]


@pytest.mark.parametrize("how", ["login", "login --device-code", "ls-remote"])
def test_a_hostile_user_name_in_the_remote_url_is_shown_escaped(
        hardened: GitEnv, azure: FakeAzure, how: str) -> None:
    if how.startswith("login"):
        azure.device_flow(approve_after=1)
        done = hardened.run("git-credential-pat", "login", HOSTILE_URL, *how.split()[1:],
                            check=False, timeout=120)
        out = done.stdout.decode() + done.stderr.decode()
    else:
        done = hardened.git("ls-remote", HOSTILE_URL, check=False, timeout=120)
        out = "".join(f"{line}\n" for line in done.stderr.decode().splitlines()
                      if line.startswith("git-credential-pat: "))
    assert out and control_characters(out) == [], out


@pytest.mark.parametrize(("location", "shown"), [
    ("https://\x1bc\x1b7\x07.evil.test/_apis/tokens/pats",
     "redirected to \\x1bc\\x1b7\\x07.evil.test"),
    ("https://\x1b]0;pwned\x07.evil.test/", "redirected to a malformed address"),
], ids=["reset", "malformed"])
def test_a_hostile_location_header_is_shown_escaped(hardened: GitEnv, azure: FakeAzure,
                                                    location: str, shown: str) -> None:
    azure.redirect("pat_create", location)
    done = hardened.git("ls-remote", "https://dev.azure.com/contoso/proj/_git/repo", check=False)
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, shown, "not following it")
    assert azure.minted_count() == 0


def test_command_output_escapes_what_the_server_said(hardened: GitEnv, azure: FakeAzure) -> None:
    assert hardened.git("ls-remote", "https://dev.azure.com/contoso/proj/_git/repo").returncode == 0
    azure.issue_pat("contoso", ALICE, display_name="made by hand\x1b[2J\x1b]0;title\x07\x1bc")
    done = hardened.run("git-credential-pat", "list", "https://dev.azure.com/contoso",
                        check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "made by hand\\x1b[2J" in out
    assert control_characters(out) == [] and helper_lines(done.stderr) == []


def test_a_usage_error_escapes_what_was_typed(hardened: GitEnv) -> None:
    done = hardened.run("git-credential-pat", "list", "--x\x1b[2J\x07", check=False)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "--x\\x1b[2J\\x07" in err and control_characters(err) == []


# Properties: whatever text reaches a Terminal, what it writes holds no control character of
# its own but line breaks (and, when colour is on, its own colours).

class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


hostile_text = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["\x1b[2J", "\x1bc", "\x1b]0;t\x07", "\r\x1b[K", "\x9b2J", "a\tb", "\u2028", "\x00"])


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_text, min_size=1, max_size=4), st.booleans())
def test_every_terminal_output_escapes_control_characters(texts: list[str],
                                                           colour: bool) -> None:
    out, err = (Tty(), Tty()) if colour else (io.StringIO(), io.StringIO())
    term = Terminal(out, err, environ={"TERM": "xterm"})
    assert term.colour == colour
    for text in texts:
        term.line(text)
        term.line((text, "ok"), text)
        term.say(text)
        with term.progress(text):
            term.say(text)
        term.json({"value": text})
    term.table(["A", "B"], [[text, text] for text in texts],
               styles=[["ok", "warn"] for _ in texts])
    term.table(["A"], [[text] for text in texts])
    for stream in (out, err):
        written = stream.getvalue().replace("\r\x1b[K", "")  # the progress line's own clearing
        assert control_characters(written, colour) == [], written
