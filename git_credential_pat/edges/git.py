"""Running git: the one place the helper starts it, with one timeout and one set of messages.

The helper asks git for its config (settings, helpers, proxies), and has git erase from its
credential-cache; each call must end, and a failure must say what it was. `get` runs on every
fetch, and importing `subprocess` costs more than the git process itself, so on POSIX git is
started with `os.posix_spawnp` and its pipes are read with `select` against a deadline (or
without, when git has already said everything by the time its answer is wanted); on Windows
with `_winapi`, its pipes polled against the deadline.

A call can also be started and finished later (`start`, then `Started.finish`): `get` starts its
`git config` as soon as it knows the URL and does its other work while git runs.
"""

from __future__ import annotations

import sys
import time

from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import show
from git_credential_pat.edges.system import calls, environ

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


class Started:
    """A git that is running. `finish` waits for its answer within the bound in force when it
    started; `cancel` stops it when the answer is no longer wanted."""

    def __init__(self, args: tuple[str, ...], cwd: str | None, stdin: str,
                 ok: Sequence[int]) -> None:
        self.what = f"`git {args[0]}`" if args else "git"
        self.ok = ok
        self.timeout = _timeout
        try:
            self._process: _Process | None = _Process(
                ["git", *args], cwd, stdin.encode("utf-8", "surrogateescape"),
                time.monotonic() + self.timeout)
        except FileNotFoundError:
            raise HelperError("git is not installed or not on PATH") from None

    def finish(self) -> str:
        """git's stdout, for an exit status in `ok`; otherwise git's own first line of complaint.

        Text is passed through undecodable bytes and all (`surrogateescape`), so a path or a
        value git holds in another encoding survives the round trip.
        """
        process, self._process = self._process, None
        if process is None:
            raise RuntimeError("a git call finishes once")
        try:
            status, out, err = process.communicate()
        except TimeoutError:
            raise HelperError(f"{self.what} did not finish within {self.timeout:g} s "
                              "(set credential.patGitTimeout to wait longer)") from None
        if status not in self.ok:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise HelperError(show(lines[0] if lines
                                   else f"{self.what} failed (exit status {status})"))
        return out.decode("utf-8", "surrogateescape")

    def cancel(self) -> None:
        """Stop git if it is still running, and reap it; nothing once finished."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()


def start(*args: str, cwd: str | None = None, stdin: str = "",
          ok: Sequence[int] = (0,)) -> Started:
    """Start git with `args`; `finish` the result for its output (`run` says what it is)."""
    return Started(args, cwd, stdin, ok)


def run(*args: str, cwd: str | None = None, stdin: str = "", ok: Sequence[int] = (0,)) -> str:
    """git's stdout, for an exit status in `ok`; otherwise git's own first line of complaint as
    a `HelperError`, as for any git that fails, cannot start, or outlasts the bound."""
    return start(*args, cwd=cwd, stdin=stdin, ok=ok).finish()


def start_config_section(section: str, url: str) -> Started:
    """`git config` for the values of one section that apply to `url`, as git's own URL
    matching decides; `section_values` reads its answer."""
    return start("config", "-z", "--get-urlmatch", section, url, ok=(0, 1))  # 1: none set


def section_values(output: str) -> dict[str, str]:
    """What `start_config_section`'s git answered, by key in lower case."""
    values: dict[str, str] = {}
    for record in output.split("\0"):
        key, _, value = record.partition("\n")
        if key:
            values[key.lower()] = value
    return values


def config_section(section: str, url: str) -> dict[str, str]:
    """The values of one config section that apply to `url`; keys in lower case."""
    return section_values(start_config_section(section, url).finish())


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
        import os

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

    class _Process:
        """git run to the end at once: Windows has neither `posix_spawn` nor `select` on pipes,
        and nothing on Windows starts a call to finish it later."""

        def __init__(self, argv: list[str], cwd: str | None, stdin: bytes,
                     deadline: float) -> None:
            try:
                self.result: tuple[int, bytes, bytes] | None = _run(
                    argv, cwd, stdin, max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.result = None

        def communicate(self) -> tuple[int, bytes, bytes]:
            if self.result is None:
                raise TimeoutError
            return self.result

        def kill(self) -> None:
            """Nothing is left running."""

else:

    class _Process:
        """git started with its three pipes; `communicate` feeds and reads them until the
        deadline."""

        def __init__(self, argv: list[str], cwd: str | None, stdin: bytes,
                     deadline: float) -> None:
            self.deadline = deadline
            self.stdin = stdin
            pipes = [calls.pipe() for _ in range(3)]  # (read, write) for stdin, stdout, stderr
            (in_read, in_write), (out_read, out_write), (err_read, err_write) = pipes
            actions = [(calls.POSIX_SPAWN_DUP2, in_read, 0), (calls.POSIX_SPAWN_DUP2, out_write, 1),
                       (calls.POSIX_SPAWN_DUP2, err_write, 2)]
            actions += [(calls.POSIX_SPAWN_CLOSE, fd) for fd in (in_write, out_read, err_read)]
            if cwd:
                argv = [argv[0], "-C", cwd, *argv[1:]]
            try:
                self.pid = calls.posix_spawnp(argv[0], argv, environ(), file_actions=actions,
                                           setsigdef=(SIGPIPE,))
            except BaseException:
                for fd in (in_write, out_read, err_read):
                    calls.close(fd)
                raise
            finally:
                for fd in (in_read, out_write, err_write):
                    calls.close(fd)
            self.out, self.err = out_read, err_read
            self.writing = [in_write] if stdin else []
            if not stdin:
                calls.close(in_write)
            self.reading = [out_read, err_read]

        def communicate(self) -> tuple[int, bytes, bytes]:
            chunks: dict[int, list[bytes]] = {self.out: [], self.err: []}
            try:
                for fd in self.reading:
                    calls.set_blocking(fd, False)
                self._read(self.reading, chunks)  # a git started earlier may be done already
                if self.reading or self.writing:
                    self._exchange(chunks)
                status = self._reap()
            except BaseException:
                self.kill()
                raise
            return status, b"".join(chunks[self.out]), b"".join(chunks[self.err])

        def _exchange(self, chunks: dict[int, list[bytes]]) -> None:
            """Feed git its input and read its output as each pipe is ready, until it closes
            them or the deadline passes."""
            import select

            reading, writing = self.reading, self.writing
            while reading or writing:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                readable, writable, _ = select.select(reading, writing, [], left)
                for fd in writable:
                    try:
                        self.stdin = self.stdin[calls.write(fd, self.stdin[:65536]):]
                    except BrokenPipeError:  # git exited without reading it all
                        self.stdin = b""
                    if not self.stdin:
                        writing.remove(fd)
                        calls.close(fd)
                self._read(readable, chunks)

        def _read(self, ready: list[int], chunks: dict[int, list[bytes]]) -> None:
            """Take what these (non-blocking) pipes hold; a pipe at its end is closed."""
            for fd in list(ready):
                while True:
                    try:
                        chunk = calls.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if not chunk:
                        self.reading.remove(fd)
                        calls.close(fd)
                        break
                    chunks[fd].append(chunk)

        def _reap(self) -> int:
            """git has closed its output; wait for its exit status, within what is left."""
            pause = 0.0002
            while True:
                done, status = calls.waitpid(self.pid, calls.WNOHANG)
                if done:
                    return calls.waitstatus_to_exitcode(status)
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if not _exit_seen(self.pid, left):
                    time.sleep(min(pause, left))
                    pause = min(pause * 2, 0.01)

        def kill(self) -> None:
            """Stop git and reap it, closing what is still open of its pipes."""
            for fd in (*self.writing, *self.reading):
                calls.close(fd)
            self.writing, self.reading = [], []
            try:
                calls.kill(self.pid, 9)  # SIGKILL
                calls.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    def _exit_seen(pid: int, left: float) -> bool:
        """Wait until the process exits or `left` seconds pass, through a pidfd (Linux 5.3 and
        later); False where there is none to wait on, so the caller polls instead."""
        try:
            pidfd = calls.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux, an older kernel, or a sandbox's refusal
            return False
        import select

        try:
            select.select([pidfd], [], [], left)
        finally:
            calls.close(pidfd)
        return True
