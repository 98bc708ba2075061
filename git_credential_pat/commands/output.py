"""How the commands talk to people and scripts: tables, colour, a progress line, JSON.

Colour only reaches a terminal and never when `NO_COLOR` is set (no-color.org); the progress
line is drawn on stderr only when stderr is a terminal, so logs and pipes get plain lines.
Anything that came from outside (a server, the store, a remote URL) goes through `show`, which
escapes control characters and masks secrets before it can reach the screen.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

from git_credential_pat.core.constants import DAY, NAME, WARN_DAYS
from git_credential_pat.core.redact import printable, printable_lines, show

_COLOURS = {"ok": "32", "warn": "33", "fail": "31", "dim": "2", "bold": "1"}


def when(seconds: float) -> str:
    """A moment in local time, to the minute, as people read it."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def iso(seconds: float) -> str:
    """A moment in UTC, ISO 8601, as scripts parse it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def days_left(expiry: float, now: float) -> int:
    """Whole days to go, rounded as people count them: a fresh 30-day PAT has 30."""
    return round((expiry - now) / DAY)


def expiry_note(expiry: float | None, now: float) -> tuple[str, str]:
    """How an expiry reads, and its level: ok, warn (within WARN_DAYS, as Azure DevOps warns)
    or fail (already expired)."""
    if expiry is None:
        return "no expiry known", "ok"
    if expiry <= now:
        return f"expired {when(expiry)}", "fail"
    left = days_left(expiry, now)
    if left < 1:
        return f"expires within a day ({when(expiry)})", "warn"
    text = f"expires in {left} day{'s' if left != 1 else ''} ({when(expiry)})"
    return text, "warn" if left <= WARN_DAYS else "ok"


class Terminal:
    """The two output streams, and what each of them can show."""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        env = os.environ if environ is None else environ
        self.colour = (_isatty(self.out) and not env.get("NO_COLOR")
                       and env.get("TERM", "") != "dumb")
        self.live = _isatty(self.err)
        self._progress = ""

    def muted(self) -> Terminal:
        """This terminal for a `--json` run: messages still reach stderr, lines go nowhere, so
        that stdout holds the JSON alone."""
        return _Muted(self.out, self.err)

    def _paint(self, text: str, style: str) -> str:
        text = printable(text)
        if not self.colour or style not in _COLOURS:
            return text
        return f"\x1b[{_COLOURS[style]}m{text}\x1b[0m"

    def line(self, *parts: str | tuple[str, str]) -> None:
        """Output, which may span lines. Its text may hold what a server, a URL or the store
        said, so every control character in it is escaped but line breaks; colour goes only
        to the parts given as `(text, style)`."""
        self.out.write("".join(self._paint(*part) if isinstance(part, tuple)
                               else printable_lines(part) for part in parts) + "\n")
        self.out.flush()

    def script(self, text: str) -> None:
        """A shell script the helper made from its own parser (completion): written as it is,
        since its tabs are the shell's, and nothing in it came from a server, a URL or the
        store."""
        self.out.write(text + "\n")
        self.out.flush()

    def say(self, text: str) -> None:
        """A message for the person (sign-in prompts, warnings), around the progress line."""
        self._clear()
        self.err.write(f"{NAME}: {show(text)}\n")
        self._draw()

    def json(self, value: object) -> None:
        self.line(json.dumps(value, indent=2, sort_keys=True))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]],
              styles: Sequence[Sequence[str]] | None = None) -> None:
        """Aligned columns; `styles` colours cells after padding, so colour never breaks
        the alignment."""
        rows = [[printable(cell) for cell in row] for row in rows]  # escaped before measured
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(headers)]
        self.line((_join(headers, widths), "bold"))
        for n, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths)]
            if not styles or not self.colour:
                self.line("  ".join(cells).rstrip())
                continue
            parts: list[str | tuple[str, str]] = []
            for cell, style in zip(cells, styles[n]):
                parts += ["  ", (cell, style)] if parts else [(cell, style)]
            self.line(*parts)

    @contextmanager
    def progress(self, text: str) -> Iterator[None]:
        """A status line on stderr while the command waits on sign-in or the network."""
        self._clear()
        self._progress = f"{text}..."
        self._draw()
        try:
            yield
        finally:
            self._clear()
            self._progress = ""

    def _draw(self) -> None:
        if self.live and self._progress:
            self.err.write(self._paint(self._progress, "dim"))
        self.err.flush()

    def _clear(self) -> None:
        if self.live and self._progress:
            self.err.write("\r\x1b[K")
            self.err.flush()


class _Muted(Terminal):
    def line(self, *parts: str | tuple[str, str]) -> None:
        del parts  # a `--json` run prints its JSON through the unmuted terminal


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _join(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
