"""Coverage-guided fuzzing of what the helper does with stdin, for longer runs than CI's.

CI runs the bounded hypothesis fuzzer in `test_hardening_input.py`; this harness is for a person
with time to spare, and needs atheris (`pip install atheris`, not a test dependency):

    python -m tests.fuzz_atheris -max_total_time=300 tests/regressions

It feeds each input to the same in-process `parse -> handle -> format` path the executable
takes, with one plain credential and one organization PAT stored, and crashes on anything but
a clean answer or a one-line refusal (and on an answer that hands a secret to the wrong host).
libFuzzer writes a crashing input as `crash-*`: keep it as `tests/regressions/NAME.bin`, where
`test_kept_fuzz_findings_replay_cleanly` replays it through the real executable.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from git_credential_pat.actions import helper, mint as minting
    from git_credential_pat.actions.context import Runtime
    from git_credential_pat.core import protocol

from tests.test_hardening_input import (
    ALICE,
    PAT_SECRET,
    PLAIN_HOST,
    PLAIN_SECRET,
    run_in_process,
)

ACTIONS = ("get", "get", "store", "erase")


def make_world() -> Runtime:
    home = Path(tempfile.mkdtemp(prefix="fuzz-atheris-"))
    (home / ".gitconfig").write_text("")
    os.environ.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
                      GIT_CONFIG_NOSYSTEM="1", XDG_RUNTIME_DIR=str(home))
    minting.obtain = lambda context, *_: [("minted-for", context.org.name)]  # type: ignore[assignment]
    world = Runtime(environ={"GIT_CREDENTIAL_PAT_STORE": "file",
                                  "GIT_CREDENTIAL_PAT_STORE_FILE": str(home / "c.json")},
                         say=lambda _line: None)
    for request in (
        f"protocol=https\nhost={PLAIN_HOST}\nusername=u\npassword={PLAIN_SECRET}\n",
        f"protocol=https\nhost=dev.azure.com\npath=contoso/p\nusername={ALICE}\n"
        f"password={PAT_SECRET}\npassword_expiry_utc=4102444800\n",
    ):
        helper.handle("store", protocol.parse(request.encode()), world)
    saved = (home / "c.json").read_bytes()
    world.restore = lambda: (home / "c.json").write_bytes(saved)  # type: ignore[attr-defined]
    return world


WORLD = make_world()


def one_input(data: bytes) -> None:
    if not data:
        return
    WORLD.restore()  # type: ignore[attr-defined]
    run_in_process(WORLD, ACTIONS[data[0] % len(ACTIONS)], data[1:])


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
