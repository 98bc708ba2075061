"""The executable git runs: `git credential-pat get|store|erase`, and the commands people run.

git's three actions take the short road: read the request, decide, answer, and leave without
the interpreter's teardown. Everything else (`login`, `status`, ...) lives in `commands` and is
imported only when asked for.
"""

from __future__ import annotations

import os
import sys

from git_credential_pat import __version__

HELPER_ACTIONS = ("get", "store", "erase")
MAX_LINES = 4096
NAME = "git-credential-pat"


def _read_request() -> bytes:
    """Read up to the blank line that ends git's message, bounded in line length and count."""
    from git_credential_pat.protocol import MAX_LINE, ProtocolError

    lines = []
    stdin = sys.stdin.buffer
    for _ in range(MAX_LINES):
        line = stdin.readline(MAX_LINE + 2)
        if len(line) > MAX_LINE + 1 or (len(line) == MAX_LINE + 1 and not line.endswith(b"\n")):
            raise ProtocolError("a line is longer than 65535 bytes")
        if line in (b"", b"\n"):
            break
        lines.append(line)
    else:
        raise ProtocolError(f"more than {MAX_LINES} lines")
    return b"".join(lines)


def fail(message: str, status: int = 1) -> None:
    from git_credential_pat.trace import redact

    sys.stdout.flush()
    sys.stderr.write(f"{NAME}: {redact(message)}\n")
    sys.stderr.flush()
    os._exit(status)


def run_helper(action: str) -> None:
    from git_credential_pat import helper, protocol, trace
    from git_credential_pat.errors import HelperError

    trace.configure(os.environ.get("GIT_CREDENTIAL_PAT_TRACE", ""))
    try:
        request = protocol.parse(_read_request())
        for key in ("password", "oauth_refresh_token", "credential"):
            trace.secret(request.get(key))
        answer = protocol.format(helper.handle(action, request, helper.World()))
    except protocol.ProtocolError as error:
        fail(f"ignoring the request: {error}")
    except HelperError as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001 - a traceback could show a secret
        if trace.enabled():
            import traceback

            trace.log(traceback.format_exc())
        fail(f"internal error ({error.__class__.__name__}); "
             "set GIT_CREDENTIAL_PAT_TRACE=1 to see where")
    sys.stdout.buffer.write(answer)
    sys.stdout.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1 and args[0] in HELPER_ACTIONS:
        run_helper(args[0])
    if args in (["--version"], ["version"]):
        print(f"{NAME} {__version__}")
        return
    from git_credential_pat import commands

    sys.exit(commands.main(args))
