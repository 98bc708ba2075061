"""The launcher the installer puts on PATH: it runs the helper with `-I -S` from any interpreter
path, and runs nothing from PYTHONPATH or the current directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from git_credential_pat import __version__, launcher

REPO = Path(__file__).resolve().parent.parent
VERSION = f"git-credential-pat {__version__}\n".encode()


def run(command: Path, *args: str, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(command), *args], capture_output=True, timeout=60, check=False,
                          cwd=cwd, env={**os.environ, **(env or {})})


def test_installed_by_module_it_runs_the_helper(tmp_path: Path) -> None:
    target = tmp_path / "git-credential-pat"
    # As install.sh runs it, less `-I`: this checkout may be importable only from here.
    subprocess.run([sys.executable, "-m", "git_credential_pat.launcher", str(target)],
                   cwd=REPO, check=True, timeout=60)
    assert target.read_text().startswith(f"#!{sys.executable} -IS\n")
    assert target.stat().st_mode & 0o777 == 0o755
    assert run(target, "--version").stdout == VERSION


def test_a_long_interpreter_path_goes_through_sh(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "with space"
    deep.mkdir(parents=True)
    python = deep / "python3"
    python.symlink_to(sys.executable)
    target = tmp_path / "git-credential-pat"
    launcher.install(str(target), str(python))
    assert target.read_text().startswith("#!/bin/sh\n")
    assert run(target, "--version").stdout == VERSION


def test_pythonpath_and_the_current_directory_are_ignored(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    (planted / "git_credential_pat").mkdir(parents=True)
    (planted / "git_credential_pat" / "__init__.py").write_text("raise SystemExit('planted')\n")
    target = tmp_path / "git-credential-pat"
    launcher.install(str(target))
    done = run(target, "--version", cwd=planted, env={"PYTHONPATH": str(planted)})
    assert done.stdout == VERSION
