"""The executable git runs: `git credential-pat get|store|erase`, and the commands people run.

git's three actions take the short road: read the request, decide, answer, and leave without
the interpreter's teardown. Everything else (`login`, `status`, ...) lives in `commands` and is
imported only when asked for. Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys

from git_credential_pat import __version__
from git_credential_pat.core.constants import NAME
from git_credential_pat.edges import system

HELPER_ACTIONS = ("get", "store", "erase")


def fail(message: str, status: int = 1) -> None:
    from git_credential_pat.core.redact import show

    sys.stdout.flush()
    sys.stderr.write(f"{NAME}: {show(message)}\n")
    sys.stderr.flush()
    system.calls._exit(status)


def run_helper(action: str) -> None:
    """git's `get`, `store` or `erase`. The `git config` its settings come from is started as
    soon as the request names the URL, and runs while the rest of the helper is imported."""
    from git_credential_pat.core import protocol, redact
    from git_credential_pat.core.errors import HelperError
    from git_credential_pat.edges import git, trace

    trace.configure(system.environ().get("GIT_CREDENTIAL_PAT_TRACE", ""))
    try:
        request = protocol.parse(protocol.read_request(sys.stdin.buffer))
        for key in protocol.SECRET_KEYS:
            redact.secret(request.get(key))
        url = protocol.request_url(request)
        config = git.start_config_section("credential", url)
        try:
            from git_credential_pat.actions import helper
            from git_credential_pat.actions.context import Runtime

            pairs = helper.handle(action, request, Runtime(config_ahead=(url, config)))
        finally:
            config.cancel()  # when the request needed no settings
        if trace.enabled():
            trace.log(f"{action} answered: {protocol.described(pairs)}")
        answer = protocol.format(pairs)
    except protocol.ProtocolError as error:
        fail(f"ignoring the request: {error}")
    except HelperError as error:
        if error.quit_git:
            sys.stdout.buffer.write(b"quit=1\n")
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
    system.calls._exit(0)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1 and args[0] in HELPER_ACTIONS:
        run_helper(args[0])
    if args in (["--version"], ["version"]):
        print(f"{NAME} {__version__}")
        return
    from git_credential_pat.commands import main as commands

    sys.exit(commands.main(args))
