"""The executable git runs: `git credential-pat get|store|erase`, and the commands people run.

git's three actions take the short road: read the request, decide, answer, and leave without
the interpreter's teardown. Everything else (`login`, `status`, ...) lives in `commands` and is
imported only when asked for. Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys

from git_credential_pat import __version__
from git_credential_pat.core.constants import NAME

HELPER_ACTIONS = ("get", "store", "erase")


def fail(message: str, status: int = 1) -> None:
    from git_credential_pat.core.redact import show

    sys.stdout.flush()
    sys.stderr.write(f"{NAME}: {show(message)}\n")
    sys.stderr.flush()
    os._exit(status)


def run_helper(action: str) -> None:
    from git_credential_pat.actions import helper
    from git_credential_pat.actions.context import Runtime
    from git_credential_pat.core import protocol, redact
    from git_credential_pat.core.errors import HelperError
    from git_credential_pat.edges import trace

    trace.configure(os.environ.get("GIT_CREDENTIAL_PAT_TRACE", ""))
    try:
        request = protocol.parse(protocol.read_request(sys.stdin.buffer))
        for key in ("password", "oauth_refresh_token", "credential"):
            redact.secret(request.get(key))
        answer = protocol.format(helper.handle(action, request, Runtime()))
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
    from git_credential_pat.commands import main as commands

    sys.exit(commands.main(args))
