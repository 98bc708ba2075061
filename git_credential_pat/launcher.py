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

On Windows git runs helpers only as `.exe` files, and what pip writes there is its console
launcher (distlib's, a small native program) followed by a `#!` line naming the interpreter and
a zip holding `__main__.py`; the launcher runs that interpreter with the words of the `#!` line
and the program's own path, which Python runs as a zip application. The launcher written for
Windows is the same, taken from this environment's pip, with `-IS` on the `#!` line and this
module's script in the zip.
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


def body(paths: list[str]) -> str:
    """The Python the launcher runs, after its `#!` line."""
    return ("# Written by git-credential-pat's installer: Python without `site`, so the paths\n"
            "# it would add are listed here (git_credential_pat/launcher.py says why).\n"
            "import sys\n"
            f"sys.path += {paths!r}\n"
            "from git_credential_pat.cli import main\n"
            "main()\n")


def script(python: str, paths: list[str]) -> str:
    """The launcher's text for an interpreter and the directories it must search."""
    shebang = f"#!{python} -IS\n"  # the kernel passes one argument: the flags go together
    if len(shebang) > MAX_SHEBANG or " " in python:
        shebang = f"#!/bin/sh\n'''exec' \"{python}\" -IS \"$0\" \"$@\"\n' '''\n"
    return shebang + body(paths)


def console_launcher() -> bytes:
    """pip's Windows console launcher for this machine, from the pip of this environment."""
    from pip._vendor import distlib

    arm = os.environ.get("PROCESSOR_ARCHITECTURE", "").upper() == "ARM64"
    with open(os.path.join(os.path.dirname(distlib.__file__),
                           "t64-arm.exe" if arm else "t64.exe"), "rb") as stream:
        return stream.read()


def windows_program(python: str, code: str, console: bytes) -> bytes:
    """A Windows program as pip writes one: `console` (pip's launcher), the `#!` line it reads,
    and a zip whose `__main__.py` is `code`."""
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:  # stored, not deflated: no zlib at start-up
        zipped.writestr("__main__.py", code)
    return console + f'#!"{python}" -IS\r\n'.encode() + archive.getvalue()


def install(target: str, python: str | None = None) -> None:
    """Write the launcher for this interpreter at `target`, replacing what is there at once."""
    interpreter = python or sys.executable
    if sys.platform == "win32":
        data = windows_program(interpreter, body(search_path()), console_launcher())
    else:
        data = script(interpreter, search_path()).encode()
    temporary = f"{target}.{os.getpid()}.tmp"
    with open(temporary, "wb") as stream:
        stream.write(data)
    os.chmod(temporary, 0o755)
    os.replace(temporary, target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -I -m git_credential_pat.launcher PATH")
    install(sys.argv[1])
