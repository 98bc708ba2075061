"""A `keyring` backend that fails on demand, for making the OS keyring fail inside the real helper.

The helper process loads it like any third-party backend: `PYTHON_KEYRING_BACKEND=
tests.failingkeyring.FailingKeyring` with the repository on `PYTHONPATH` (see `env()`). It keeps
secrets in `FAILING_KEYRING_DIR/data.json` and, before every operation, reads the rules in
`FAILING_KEYRING_DIR/rules`, one per line:

    OP KEY-PREFIX OUTCOME [AFTER]

OP is get, set, delete or * (any); KEY-PREFIX is the start of the helper's key (`*` for every
key); AFTER (default 0) lets that many matching operations through first; OUTCOME is
`locked` (KeyringLocked, a locked collection), `unavailable` (NoKeyringError, no keyring at
all), `failed` (PasswordSetError/KeyringError, a refused write) or `hang` (block until killed,
at most a minute: a window to kill the helper in). The first matching rule wins.
Every operation is appended to `FAILING_KEYRING_DIR/log` (`get KEY`, `set KEY`, `hang set KEY`,
...) so a test can wait for an event instead of sleeping.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from keyring import errors
from keyring.backend import KeyringBackend

BACKEND = "tests.failingkeyring.FailingKeyring"
REPO = Path(__file__).resolve().parent.parent
HANG_SECONDS = 60


def env(directory: Path) -> dict[str, str]:
    """The environment that makes the helper use this backend, keeping secrets in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    return {"PYTHON_KEYRING_BACKEND": BACKEND, "PYTHONPATH": str(REPO),
            "FAILING_KEYRING_DIR": str(directory)}


def set_rules(directory: Path, *rules: str) -> None:
    (directory / "rules").write_text("".join(f"{rule}\n" for rule in rules))


def contents(directory: Path) -> dict[str, str]:
    """What the backend holds, by the helper's key."""
    path = directory / "data.json"
    return json.loads(path.read_text()) if path.exists() else {}


def log_lines(directory: Path) -> list[str]:
    path = directory / "log"
    return path.read_text().splitlines() if path.exists() else []


class FailingKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment] - a plain number is what keyring reads

    @property
    def _dir(self) -> Path:
        return Path(os.environ["FAILING_KEYRING_DIR"])

    def _check(self, op: str, key: str) -> None:
        rules = self._dir / "rules"
        lines = rules.read_text().splitlines() if rules.exists() else []
        for line in lines:
            words = line.split()
            if len(words) not in (3, 4):
                continue
            rule_op, prefix, outcome = words[:3]
            if rule_op not in ("*", op) or not (prefix == "*" or key.startswith(prefix)):
                continue
            if len(words) == 4 and log_lines(self._dir).count(f"{op} {key}") < int(words[3]):
                continue
            self._log(f"{outcome} {op} {key}")
            if outcome == "locked":
                raise errors.KeyringLocked("the collection is locked")
            if outcome == "unavailable":
                raise errors.NoKeyringError("no recommended backend was available")
            if outcome == "failed":
                raise errors.PasswordSetError("the keyring refused the write") if op == "set" \
                    else errors.KeyringError("the keyring failed")
            if outcome == "hang":
                time.sleep(HANG_SECONDS)
            return
        self._log(f"{op} {key}")

    def _log(self, line: str) -> None:
        with open(self._dir / "log", "a", encoding="utf-8") as stream:
            stream.write(f"{line}\n")

    @contextlib.contextmanager
    def _data(self) -> Iterator[dict[str, str]]:
        path = self._dir / "data.json"
        with open(self._dir / "data.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(path.read_text()) if path.exists() else {}
            before = dict(data)
            yield data
            if data != before:
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(json.dumps(data))
                os.replace(temporary, path)

    def get_password(self, service: str, username: str) -> str | None:
        self._check("get", username)
        with self._data() as data:
            return data.get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check("set", username)
        with self._data() as data:
            data[username] = password

    def delete_password(self, service: str, username: str) -> None:
        self._check("delete", username)
        with self._data() as data:
            if data.pop(username, None) is None:
                raise errors.PasswordDeleteError("no such item")
