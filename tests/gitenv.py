"""A test's view of a user's environment: a HOME, git config, and ways to run git and the helper."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PASSTHROUGH = ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "LANG", "LC_ALL", "TMPDIR")


@dataclass
class GitEnv:
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, tmp: Path, bin_dir: Path) -> GitEnv:
        home = tmp / "home"
        home.mkdir()
        env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
        env.update(
            HOME=str(home),
            PATH=f"{bin_dir}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
            GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_STATE_HOME=str(home / ".local/state"),
            XDG_CACHE_HOME=str(home / ".cache"),
            GIT_TERMINAL_PROMPT="0",
            GIT_CREDENTIAL_PAT_STORE="file",
            GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
            GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
        )
        (home / ".gitconfig").write_text("")
        return cls(home, env)

    def with_keyring(self) -> GitEnv:
        self.env.pop("GIT_CREDENTIAL_PAT_STORE", None)
        return self

    @property
    def store_file(self) -> Path:
        return self.home / ".config/git-credential-pat/credentials.json"

    def run(self, *args: str, input: bytes | str = b"", check: bool = True,
            extra_env: dict[str, str] | None = None, timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        data = input.encode() if isinstance(input, str) else input
        done = subprocess.run(
            list(args), input=data, capture_output=True, timeout=timeout,
            env={**self.env, **(extra_env or {})}, cwd=cwd or self.home, check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{args} exited {done.returncode}\nstdout: {done.stdout!r}\nstderr: {done.stderr!r}"
            )
        return done

    def git(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        return self.run("git", *args, **kwargs)  # type: ignore[arg-type]

    def helper(self, action: str, request: bytes | str, **kwargs: object
               ) -> subprocess.CompletedProcess[bytes]:
        """Run the helper as git would, feeding it a request directly."""
        return self.run("git-credential-pat", action, input=request, check=False,
                        **kwargs)  # type: ignore[arg-type]

    def config(self, *args: str) -> None:
        self.git("config", "--global", *args)

    def fill(self, url: str, **kwargs: object) -> dict[str, str]:
        """`git credential fill` for a URL, parsed as git prints it."""
        done = self.git("credential", "fill", input=f"url={url}\n\n", **kwargs)  # type: ignore[arg-type]
        return parse_answer(done.stdout)


def parse_answer(data: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
