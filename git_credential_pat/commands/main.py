"""The commands people run (`git credential-pat login`, `status`, ...): parsing and dispatch.

Each command's options, help and examples are declared once in `COMMANDS`; its work lives in
the module of this package named there and is imported only when that command runs. Exit
status: 0 success, 1 failure, 2 usage error. An unknown word is a mistyped command, answered
with the closest one, unless it is what a newer git sends its helpers (`ACTION_RULE`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import importlib
import os
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from git_credential_pat import __version__
from git_credential_pat.commands.output import Terminal
from git_credential_pat.core.constants import NAME
from git_credential_pat.core.errors import HelperError, UsageError
from git_credential_pat.core.redact import printable_lines, show
from git_credential_pat.core.settings import SETTINGS
from git_credential_pat.edges import trace

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ORG_URL_HELP = ("the organization: a clone URL, https://dev.azure.com/ORG, "
                "https://ORG.visualstudio.com or ORG (default: the current repository's, "
                "or the only one stored)")


@dataclass(frozen=True)
class Command:
    name: str
    handler: str  # "module:function" in this package
    summary: str
    examples: str
    arguments: Callable[[argparse.ArgumentParser], None]
    notes: str = ""

    @property
    def description(self) -> str:
        text = f"{self.summary[:1].upper()}{self.summary[1:]}."
        return f"{text}\n\n{self.notes}" if self.notes else text


# -- arguments ---------------------------------------------------------------------------------

def _setting_type(name: str) -> Callable[[str], object]:
    """Parse an option the way its setting is parsed from git config, with the same errors."""
    setting = next(s for s in SETTINGS if s.name == name)

    def parse(value: str) -> object:
        try:
            return setting.parse(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _org_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("org_url", nargs="?", metavar="ORG_URL", help=ORG_URL_HELP)


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print JSON for scripts (what was found, or what was done)")


def _login_arguments(parser: argparse.ArgumentParser) -> None:
    _org_url(parser)
    parser.add_argument("--scope", type=_setting_type("scope"),
                        help="space-separated PAT scopes (default: credential.patScope)")
    parser.add_argument("--lifespan", dest="lifespan_days", metavar="DAYS",
                        type=_setting_type("lifespan_days"),
                        help="days the PAT is valid (default: credential.patLifespanDays)")
    parser.add_argument("--device-code", action="store_true",
                        help="sign in with a code shown here, on any other device's browser")
    parser.add_argument("--account", metavar="UPN", type=_setting_type("account"),
                        help="the Entra account to sign in with")
    _json(parser)


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    _org_url(parser)
    parser.add_argument("--all", action="store_true", help="include expired and revoked PATs")
    _json(parser)


def _revoke_arguments(parser: argparse.ArgumentParser) -> None:
    _org_url(parser)
    parser.add_argument("--id", metavar="AUTHORIZATION_ID",
                        help="the PAT to revoke (see `list`); default: the one in use")
    _json(parser)


def _rotate_arguments(parser: argparse.ArgumentParser) -> None:
    _org_url(parser)
    _json(parser)


def _logout_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("org_url", nargs="?", metavar="ORG_URL", help=ORG_URL_HELP)
    which.add_argument("--all", action="store_true",
                       help="every organization, the sign-in cache, and the passwords stored "
                            "for other hosts: the store is left empty")
    _json(parser)


def _scope_arguments(parser: argparse.ArgumentParser, configure: bool = False) -> None:
    scope = parser.add_mutually_exclusive_group()
    for name, where in (("global", "your ~/.gitconfig (the default)"),
                        ("system", "the system-wide git config"),
                        ("local", "the current repository's .git/config")):
        scope.add_argument(f"--{name}", dest="scope", action="store_const", const=name,
                           help=where)
    parser.set_defaults(scope="global")
    if configure:
        parser.add_argument("--exclusive", action="store_true",
                            help="also stop helpers configured earlier (Git Credential "
                                 "Manager, store) from answering for Azure DevOps")
        parser.add_argument("--no-cache", dest="cache", action="store_false",
                            help="do not put git's credential-cache in front: every request "
                                 "then starts git-credential-pat")
    _json(parser)


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", metavar="PATH",
                        help="a repository, or a folder searched for repositories "
                             "(default: the current one)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would change, with the secrets masked")
    _json(parser)


def _completion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh", "fish"), metavar="SHELL",
                        help="bash, zsh or fish")


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true",
                        help="print the table the README carries")


COMMANDS: tuple[Command, ...] = (
    Command("login", "pats:login", "sign in and mint a PAT ahead of time",
            "git credential-pat login https://dev.azure.com/contoso\n"
            "git credential-pat login contoso --device-code --account alice@contoso.com\n"
            "git credential-pat login contoso --scope 'vso.code_write vso.packaging' "
            "--lifespan 90", _login_arguments,
            "Reuses the stored PAT when it already has the scope and lifespan asked for, so\n"
            "scripts and IDE start-up tasks can run it every time. Signs in even when\n"
            "credential.patInteractive is never.\n\n"
            "Machines sign in as themselves: with credential.patIdentity (or\n"
            "GIT_CREDENTIAL_PAT_IDENTITY) set to service-principal, managed-identity or\n"
            "workload-identity, git gets that identity's Entra access token on every request\n"
            "and no PAT is minted (those identities cannot have one). Their details come\n"
            "from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,\n"
            "AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, GitHub Actions' OIDC\n"
            "variables, or the machine's managed-identity endpoint; login then only checks\n"
            "that a token can be had."),
    Command("status", "status:run", "each organization's account, PAT scope and expiry, store, "
            "and whether git uses the helper (no network)",
            "git credential-pat status\ngit credential-pat status --json | jq .", _json),
    Command("list", "pats:list_pats", "your PATs in an organization, marking the ones minted "
            "here and the one in use",
            "git credential-pat list\ngit credential-pat list https://dev.azure.com/contoso "
            "--all --json", _list_arguments),
    Command("rotate", "pats:rotate", "mint a replacement PAT now and revoke the old one",
            "git credential-pat rotate\ngit credential-pat rotate https://contoso.visualstudio.com",
            _rotate_arguments),
    Command("revoke", "pats:revoke", "revoke the PAT in use, or any of yours by id",
            "git credential-pat revoke contoso\n"
            "git credential-pat revoke contoso --id 7d1e0c36-1f7e-4a58-9c56-0c2a9e5e2b41",
            _revoke_arguments),
    Command("logout", "pats:logout", "revoke the PATs minted here, forget them, and sign out",
            "git credential-pat logout contoso\ngit credential-pat logout --all",
            _logout_arguments),
    Command("doctor", "doctor:run", "check git, its config, the store, the network, the clock "
            "and each organization's tenant; exits 1 if anything fails",
            "git credential-pat doctor\ngit credential-pat doctor --json", _json),
    Command("configure", "configure:run", "make git use the helper for Azure DevOps",
            "git credential-pat configure\ngit credential-pat configure --exclusive\n"
            "git credential-pat configure --local",
            lambda parser: _scope_arguments(parser, configure=True)),
    Command("unconfigure", "configure:undo", "remove exactly what configure wrote",
            "git credential-pat unconfigure\ngit credential-pat unconfigure --system",
            _scope_arguments,
            "Lines you had before configure ran (such as Git Credential Manager's\n"
            "useHttpPath = true) stay byte for byte: configure notes them as patKeep."),
    Command("migrate", "migrate:run", "move PATs out of remote URLs and ~/.git-credentials "
            "into the store",
            "git credential-pat migrate --dry-run ~/src\ngit credential-pat migrate",
            _migrate_arguments,
            "Looks in the remotes of the repositories at or under PATH, and in git's\n"
            "plaintext credential files (~/.git-credentials, ~/.config/git/credentials).\n"
            "Each PAT is shown to its organization first: one it refuses is removed and not\n"
            "kept; one it accepts is kept for its owner; one that cannot be checked (the\n"
            "organization is out of reach) is kept unverified, and said to be. None is kept\n"
            "when the store already holds the PAT git gets for that organization."),
    Command("settings", "configure:settings_help", "every setting: git config key, environment "
            "variable, default",
            "git credential-pat settings\ngit credential-pat help settings\n"
            "git credential-pat settings --markdown",
            _settings_arguments),
    Command("completion", "completion:run", "print shell completion for bash, zsh or fish",
            "git credential-pat completion fish > ~/.config/fish/completions/"
            "git-credential-pat.fish\n"
            "source <(git credential-pat completion bash)", _completion_arguments,
            "Made from the same parser as --help. For bash it also defines\n"
            "_git_credential_pat, which git's own completion calls, so that\n"
            "`git credential-pat <TAB>` completes too; install.sh installs it where\n"
            "bash-completion finds it (~/.local/share/bash-completion/completions)."),
)
NAMES = frozenset(c.name for c in COMMANDS) | {"help"}
HELP_SUMMARY = "show help for a command, or `help settings`"
# git-credential(1) asks helpers to ignore an action they do not know, so a newer git can add
# one; a person who mistypes a command deserves to hear so. What git sends tells them apart.
ACTION_RULE = ("An unknown word alone, with a credential request (key=value lines) arriving\n"
               "on stdin, is an action from a newer git: it is ignored, exit 0, as git asks.\n"
               "Any other unknown word is a mistyped command: one line, exit 2.")
# How long git may take to start writing the request after starting the helper.
REQUEST_WAIT_SECONDS = 2.0


class _Parser(argparse.ArgumentParser):
    """argparse's own messages quote what was typed (`invalid choice: '...'`), so they are
    escaped like every other line the helper prints. Sub-parsers are of the same class."""

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        super()._print_message(printable_lines(message), file)


def build_parser(width: int | None = None) -> argparse.ArgumentParser:
    """The one parser: `--help`, `help`, the manual page and shell completion come from it.
    `width` fixes the help's line length, which is otherwise the terminal's."""
    formatter: Callable[..., argparse.HelpFormatter] = (
        functools.partial(argparse.RawDescriptionHelpFormatter, width=width) if width
        else argparse.RawDescriptionHelpFormatter)
    parser = _Parser(
        prog="git credential-pat", formatter_class=formatter,
        description="A git credential helper that keeps Azure DevOps remotes signed in with "
                    "scoped, expiring PATs.\ngit runs it as `git credential-pat get|store|erase`;"
                    " these commands are for you.",
        epilog="exit status: 0 success, 1 failure, 2 usage error\n"
               "`git credential-pat COMMAND --help` or `git credential-pat help COMMAND`\n"
               "shows a command's options and examples;\n"
               "`git credential-pat help settings` lists every setting.\n\n"
               f"unknown words:\n{textwrap.indent(ACTION_RULE, '  ')}")
    parser.add_argument("--version", action="version", version=f"{NAME} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name, help=command.summary, description=command.description,
            epilog="examples:\n" + textwrap.indent(command.examples, "  "),
            formatter_class=formatter)
        command.arguments(sub)
        sub.set_defaults(handler=command.handler)
    helps = commands.add_parser("help", help=HELP_SUMMARY, formatter_class=formatter)
    helps.add_argument("topic", nargs="?", metavar="COMMAND")
    helps.add_argument("--man", action="store_true",
                       help="print the manual page, git-credential-pat(1), in roff")
    helps.set_defaults(handler="manual:help_topic")
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's own parser, by name, for the manual page and shell completion."""
    # argparse names its subcommands' parsers only in these (stable, if underscored) fields.
    commands = next(action for action in parser._actions
                    if isinstance(action, argparse._SubParsersAction))
    return dict(commands.choices)


def options(parser: argparse.ArgumentParser) -> list[tuple[str, str, bool]]:
    """A parser's options as (option string, help, whether it takes a value), long ones
    first as people type them."""
    found = []
    for action in parser._actions:
        for flag in sorted(action.option_strings, key=lambda f: (not f.startswith("--"), f)):
            found.append((flag, action.help or "", action.nargs != 0))
    return found


# -- running -----------------------------------------------------------------------------------

def main(args: list[str]) -> int:
    trace.configure(os.environ.get("GIT_CREDENTIAL_PAT_TRACE", ""))
    if args and not args[0].startswith("-") and args[0] not in NAMES:
        if len(args) == 1 and _git_sent_a_request():
            return EXIT_OK
        return _fail(unknown_command(args[0]), EXIT_USAGE)
    parser = build_parser()
    try:
        options = parser.parse_args(args)
    except SystemExit as done:  # argparse: 0 after --help, 2 for a usage error
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if not options.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run(options)


def _git_sent_a_request() -> bool:
    """Whether stdin brings what git sends a helper: a `key=value` line, arriving within
    REQUEST_WAIT_SECONDS (`os.read` in a thread, so a silent pipe cannot hold the exit)."""
    if not sys.stdin or sys.stdin.isatty():
        return False
    first: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(OSError):
            first.append(os.read(sys.stdin.fileno(), 4096))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(REQUEST_WAIT_SECONDS)
    key, equals, _ = (first[0] if first else b"").partition(b"\n")[0].partition(b"=")
    return bool(equals and key and key.replace(b"_", b"").replace(b"[]", b"").isalnum())


def unknown_command(word: str) -> str:
    """One line for a command that does not exist, naming the closest one."""
    close = difflib.get_close_matches(word, sorted(NAMES), n=1)
    hint = (f"did you mean `git credential-pat {close[0]}`?" if close
            else f"commands: {', '.join(c.name for c in COMMANDS)}, help")
    return f"no command {word!r}; {hint}"


def run(options: argparse.Namespace) -> int:
    """Run the chosen command, turning every failure into one line and an exit status."""
    module, _, function = options.handler.partition(":")
    term = Terminal()
    try:
        handler = getattr(importlib.import_module(f"git_credential_pat.commands.{module}"),
                          function)
        return handler(options, term)
    except UsageError as error:
        return _fail(error, EXIT_USAGE)
    except HelperError as error:
        return _fail(error, EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader went away (`| head`): nobody is left to tell
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as error:  # noqa: BLE001 - a traceback could show a secret
        if trace.enabled():
            import traceback

            trace.log(traceback.format_exc())
        return _fail(f"internal error ({error.__class__.__name__}); "
                     "set GIT_CREDENTIAL_PAT_TRACE=1 to see where", EXIT_FAILURE)


def _fail(message: object, status: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"{NAME}: {show(message)}\n")
    return status
