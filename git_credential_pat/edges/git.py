"""Running git: the one place the helper starts it, with one timeout and one set of messages.

The helper asks git for its config (settings, helpers, proxies), and has git erase from its
credential-cache; each call must end, and a failure must say what it was. `get` runs on every
fetch, and importing `subprocess` costs more than the git process itself, so on POSIX git is
started with `os.posix_spawnp` and its pipes are read with `select` against a deadline, and on
Windows with `_winapi`, its pipes polled against the deadline.
"""

from __future__ import annotations

import os
import sys
import time

from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import show

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_TIMEOUT = 10.0
SIGPIPE = 13  # the same on Linux and macOS; `signal` itself would import `enum`
_timeout = DEFAULT_TIMEOUT


def set_timeout(seconds: float) -> None:
    """The bound for every later call (the `patGitTimeout` setting, once settings are read)."""
    global _timeout
    _timeout = seconds


def run(*args: str, cwd: str | None = None, stdin: str = "", ok: Sequence[int] = (0,)) -> str:
    """git's stdout, for an exit status in `ok`; otherwise git's own first line of complaint.

    Text is passed through undecodable bytes and all (`surrogateescape`), so a path or a value
    git holds in another encoding survives the round trip.
    """
    what = f"`git {args[0]}`" if args else "git"
    try:
        status, out, err = _run(["git", *args], cwd, stdin.encode("utf-8", "surrogateescape"),
                                _timeout)
    except FileNotFoundError:
        raise HelperError("git is not installed or not on PATH") from None
    except TimeoutError:
        raise HelperError(f"{what} did not finish within {_timeout:g} s "
                          "(set credential.patGitTimeout to wait longer)") from None
    if status not in ok:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise HelperError(show(lines[0] if lines else f"{what} failed (exit status {status})"))
    return out.decode("utf-8", "surrogateescape")


def config_section(section: str, url: str) -> dict[str, str]:
    """The values of one config section that apply to `url`, as git's own URL matching decides;
    keys in lower case."""
    output = run("config", "-z", "--get-urlmatch", section, url, ok=(0, 1))  # 1: none set
    values: dict[str, str] = {}
    for record in output.split("\0"):
        key, _, value = record.partition("\n")
        if key:
            values[key.lower()] = value
    return values


if sys.platform == "win32":
    import _winapi

    class _StartupInfo:
        """What `_winapi.CreateProcess` reads of STARTUPINFO: the three standard handles."""

        dwFlags = 0x100  # STARTF_USESTDHANDLES
        wShowWindow = 0
        lpAttributeList = None

        def __init__(self, stdin: int, stdout: int, stderr: int) -> None:
            self.hStdInput, self.hStdOutput, self.hStdError = stdin, stdout, stderr

    def _find(program: str) -> str:
        """`program`.exe from PATH alone. CreateProcess would also try the current directory
        first, which is the repository git runs the helper in: its own git.exe must not run."""
        for entry in os.environ.get("PATH", "").split(os.pathsep):
            folder = entry.strip('"')
            candidate = os.path.join(folder, f"{program}.exe")
            if os.path.isabs(folder) and os.path.isfile(candidate):  # "." would be the same
                return candidate
        raise FileNotFoundError(program)

    def _command_line(argv: list[str]) -> str:
        """The command line the C runtime splits back into `argv` (its quoting rules)."""
        words = []
        for arg in argv:
            if arg and not any(c in arg for c in ' \t"'):
                words.append(arg)
                continue
            word, backslashes = '"', 0
            for c in arg:
                if c == "\\":
                    backslashes += 1
                    continue
                word += "\\" * (backslashes * 2 + 1 if c == '"' else backslashes) + c
                backslashes = 0
            words.append(word + "\\" * (backslashes * 2) + '"')
        return " ".join(words)

    def _inheritable(handle: int) -> int:
        process = _winapi.GetCurrentProcess()
        return _winapi.DuplicateHandle(process, handle, process, 0, True,
                                       _winapi.DUPLICATE_SAME_ACCESS)

    def _run(argv: list[str], cwd: str | None, stdin: bytes,
             timeout: float) -> tuple[int, bytes, bytes]:
        """`subprocess` would cost more to import than git takes to run: the same with
        `_winapi`, polling the pipes (PeekNamedPipe) against the deadline, so that neither a
        full pipe nor a git that never ends can hang the helper."""
        deadline = time.monotonic() + timeout
        executable = _find(argv[0])
        in_read, in_write = _winapi.CreatePipe(None, max(len(stdin), 4096))  # all of stdin fits
        out_read, out_write = _winapi.CreatePipe(None, 0)
        err_read, err_write = _winapi.CreatePipe(None, 0)
        child = [_inheritable(handle) for handle in (in_read, out_write, err_write)]
        for handle in (in_read, out_write, err_write):
            _winapi.CloseHandle(handle)
        try:
            process, thread, _, _ = _winapi.CreateProcess(
                executable, _command_line(argv), None, None, True, 0, None, cwd,
                _StartupInfo(*child))
        except BaseException:
            for handle in (in_write, out_read, err_read):
                _winapi.CloseHandle(handle)
            raise
        finally:
            for handle in child:
                _winapi.CloseHandle(handle)
        _winapi.CloseHandle(thread)
        chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
        reading = [out_read, err_read]
        try:
            try:
                if stdin:
                    _winapi.WriteFile(in_write, stdin)
            except BrokenPipeError:  # git exited without reading it all
                pass
            finally:
                _winapi.CloseHandle(in_write)
            while reading:
                waiting = True
                for handle in list(reading):
                    try:
                        available = _winapi.PeekNamedPipe(handle, 0)[0]
                        if available:
                            chunks[handle].append(_winapi.ReadFile(handle, available)[0])
                            waiting = False
                    except BrokenPipeError:  # git has closed it
                        reading.remove(handle)
                        _winapi.CloseHandle(handle)
                if waiting:
                    if time.monotonic() >= deadline:
                        raise TimeoutError
                    time.sleep(0.001)
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if _winapi.WaitForSingleObject(process, left) != _winapi.WAIT_OBJECT_0:
                raise TimeoutError
            status = _winapi.GetExitCodeProcess(process)
        except BaseException:
            import contextlib

            with contextlib.suppress(OSError):  # it has exited already
                _winapi.TerminateProcess(process, 1)
            raise
        finally:
            for handle in reading:
                _winapi.CloseHandle(handle)
            _winapi.CloseHandle(process)
        return status, b"".join(chunks[out_read]), b"".join(chunks[err_read])

else:

    def _run(argv: list[str], cwd: str | None, stdin: bytes,
             timeout: float) -> tuple[int, bytes, bytes]:
        import select

        deadline = time.monotonic() + timeout
        pipes = [os.pipe() for _ in range(3)]  # (read, write) for stdin, stdout, stderr
        (in_read, in_write), (out_read, out_write), (err_read, err_write) = pipes
        actions = [(os.POSIX_SPAWN_DUP2, in_read, 0), (os.POSIX_SPAWN_DUP2, out_write, 1),
                   (os.POSIX_SPAWN_DUP2, err_write, 2)]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in (in_write, out_read, err_read)]
        if cwd:
            argv = [argv[0], "-C", cwd, *argv[1:]]
        try:
            pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions,
                                  setsigdef=(SIGPIPE,))
        except BaseException:
            for fd in (in_write, out_read, err_read):
                os.close(fd)
            raise
        finally:
            for fd in (in_read, out_write, err_write):
                os.close(fd)
        chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
        reading = [out_read, err_read]
        writing = [in_write] if stdin else []
        if not stdin:
            os.close(in_write)
        try:
            while reading or writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                readable, writable, _ = select.select(reading, writing, [], left)
                for fd in writable:
                    try:
                        stdin = stdin[os.write(fd, stdin[:65536]):]
                    except BrokenPipeError:  # git exited without reading it all
                        stdin = b""
                    if not stdin:
                        writing.remove(fd)
                        os.close(fd)
                for fd in readable:
                    chunk = os.read(fd, 65536)
                    if chunk:
                        chunks[fd].append(chunk)
                    else:
                        reading.remove(fd)
                        os.close(fd)
            status = _reap(pid, deadline)
        except BaseException:
            _kill(pid)
            raise
        finally:
            for fd in (*writing, *reading):
                os.close(fd)
        return status, b"".join(chunks[out_read]), b"".join(chunks[err_read])

    def _reap(pid: int, deadline: float) -> int:
        """git has closed its output; wait for its exit status, within what is left."""
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= deadline:
                raise TimeoutError
            time.sleep(0.002)

    def _kill(pid: int) -> None:
        try:
            os.kill(pid, 9)  # SIGKILL
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
