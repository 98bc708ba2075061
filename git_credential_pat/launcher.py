"""The `git-credential-pat` command itself: a launcher that starts Python the quick way.

git runs the helper on every fetch, pull and push, and the interpreter's start-up is half of a
stored credential's cost. The console script pip writes runs `site`, which reads every `.pth`
file of the environment (setuptools' own imports `_distutils_hack`; an editable install's
imports `pathlib` and so `re`), and pip before 24 also has it import `re` before calling `main`.
This launcher runs the interpreter with `-IS` (`-I -S`) and hands it its search path instead:

- `-S` skips `site`, 3 to 5 ms of a 12 to 18 ms start-up on the 2-core machines measured; the
  paths `site` would add are written in here. With pip 23's script gone too, a hit through
  `git credential fill` took 24 ms instead of 34 ms.
- `-I` keeps the helper from importing code named by PYTHONPATH or the current directory,
  which a repository's own tooling may set; a credential helper should run only its own code.

Install it over the console script with `python -I -m git_credential_pat.launcher PATH`, run
by the environment's own Python; `-I` matters, because without it an installer run from the
source folder would import this module from there and point the launcher at the sources.
POSIX only: on Windows git runs pip's `.exe`.
"""

from __future__ import annotations

import os
import sys

# Linux reads at most 255 bytes of a `#!` line (127 before 5.1); longer ones are cut, so a long
# interpreter path goes through `sh`, as pip's own scripts do.
MAX_SHEBANG = 127


def search_path() -> list[str]:
    """Where this package and its dependencies are found: the package's own directory (an
    editable install is found only through a `.pth` file, which `-S` skips) and the
    site-packages directories `site` gives this interpreter (a venv's own, and the base
    Python's too when the venv includes system site-packages)."""
    import site

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [package_parent, *site.getsitepackages()]
    return [path for path in dict.fromkeys(paths) if os.path.isdir(path)]


def script(python: str, paths: list[str]) -> str:
    """The launcher's text for an interpreter and the directories it must search."""
    shebang = f"#!{python} -IS\n"  # the kernel passes one argument: the flags go together
    if len(shebang) > MAX_SHEBANG or " " in python:
        shebang = f"#!/bin/sh\n'''exec' \"{python}\" -IS \"$0\" \"$@\"\n' '''\n"
    return (f"{shebang}"
            "# Written by git-credential-pat's installer: Python without `site`, so the paths\n"
            "# it would add are listed here (git_credential_pat/launcher.py says why).\n"
            "import sys\n"
            f"sys.path += {paths!r}\n"
            "from git_credential_pat.cli import main\n"
            "main()\n")


def install(target: str, python: str | None = None) -> None:
    """Write the launcher for this interpreter at `target`, replacing what is there at once."""
    text = script(python or sys.executable, search_path())
    temporary = f"{target}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, 0o755)
    os.replace(temporary, target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -I -m git_credential_pat.launcher PATH")
    install(sys.argv[1])
