"""The commands people run (`git credential-pat login`, `status`, ...): parsing and dispatch.

Each command's options, help and examples are declared once in `COMMANDS`; its work lives in
the module of this package named there and is imported only when that command runs. Exit
status: 0 success, 1 failure, 2 usage error. A single unknown word with stdin not a terminal
is an action a newer git sends to its helpers; git asks helpers to ignore those, so it exits 0
without a word.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import textwrap
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
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


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


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    _org_url(parser)
    parser.add_argument("--all", action="store_true", help="include expired and revoked PATs")
    _json(parser)


def _revoke_arguments(parser: argparse.ArgumentParser) -> None:
    _org_url(parser)
    parser.add_argument("--id", metavar="AUTHORIZATION_ID",
                        help="the PAT to revoke (see `list`); default: the one in use")


def _logout_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("org_url", nargs="?", metavar="ORG_URL", help=ORG_URL_HELP)
    which.add_argument("--all", action="store_true",
                       help="every organization, the sign-in cache, and the passwords stored "
                            "for other hosts: the store is left empty")


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


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", metavar="PATH",
                        help="a repository, or a folder searched for repositories "
                             "(default: the current one)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would change, with the secrets masked")


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
            _org_url),
    Command("revoke", "pats:revoke", "revoke the PAT in use, or any of yours by id",
            "git credential-pat revoke contoso\n"
            "git credential-pat revoke contoso --id 7d1e0c36-1f7e-4a58-9c56-0c2a9e5e2b41",
            _revoke_arguments),
    Command("logout", "pats:logout", "revoke the PATs minted here, forget them, and sign out",
            "git credential-pat logout contoso\ngit credential-pat logout --all",
            _logout_arguments),
    Command("doctor", "doctor:run", "check git, its config, the store, the network and the "
            "clock; exits 1 if anything fails",
            "git credential-pat doctor\ngit credential-pat doctor --json", _json),
    Command("configure", "configure:run", "make git use the helper for Azure DevOps",
            "git credential-pat configure\ngit credential-pat configure --exclusive\n"
            "git credential-pat configure --local",
            lambda parser: _scope_arguments(parser, configure=True)),
    Command("unconfigure", "configure:undo", "remove exactly what configure wrote",
            "git credential-pat unconfigure\ngit credential-pat unconfigure --system",
            _scope_arguments),
    Command("migrate", "migrate:run", "move PATs out of remote URLs into the store",
            "git credential-pat migrate --dry-run ~/src\ngit credential-pat migrate",
            _migrate_arguments),
    Command("settings", "configure:settings_help", "every setting: git config key, environment "
            "variable, default",
            "git credential-pat settings\ngit credential-pat help settings\n"
            "git credential-pat settings --markdown",
            _settings_arguments),
)
NAMES = frozenset(c.name for c in COMMANDS) | {"help"}


class _Parser(argparse.ArgumentParser):
    """argparse's own messages quote what was typed (`invalid choice: '...'`), so they are
    escaped like every other line the helper prints. Sub-parsers are of the same class."""

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        super()._print_message(printable_lines(message), file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="git credential-pat", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A git credential helper that keeps Azure DevOps remotes signed in with "
                    "scoped, expiring PATs.\ngit runs it as `git credential-pat get|store|erase`;"
                    " these commands are for you.",
        epilog="exit status: 0 success, 1 failure, 2 usage error\n"
               "`git credential-pat COMMAND --help` shows a command's options and examples;\n"
               "`git credential-pat help settings` lists every setting.")
    parser.add_argument("--version", action="version", version=f"{NAME} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name, help=command.summary, description=command.description,
            epilog="examples:\n" + textwrap.indent(command.examples, "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        command.arguments(sub)
        sub.set_defaults(handler=command.handler)
    helps = commands.add_parser("help", help="show help for a command, or `help settings`")
    helps.add_argument("topic", nargs="?", metavar="COMMAND")
    helps.set_defaults(handler="main:help_topic")
    return parser


# -- running -----------------------------------------------------------------------------------

def main(args: list[str]) -> int:
    trace.configure(os.environ.get("GIT_CREDENTIAL_PAT_TRACE", ""))
    if is_newer_git_action(args):
        return EXIT_OK
    parser = build_parser()
    try:
        options = parser.parse_args(args)
    except SystemExit as done:  # argparse: 0 after --help, 2 for a usage error
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if not options.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run(options)


def is_newer_git_action(args: list[str]) -> bool:
    """An action git added after this helper was written: one word, sent by git (stdin is a
    pipe, not a person's terminal). git-credential(1) says to ignore it."""
    return (len(args) == 1 and not args[0].startswith("-") and args[0] not in NAMES
            and not (sys.stdin and sys.stdin.isatty()))


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


# -- the small commands ------------------------------------------------------------------------

def help_topic(options: argparse.Namespace, term: Terminal) -> int:
    parser = build_parser()
    if not options.topic:
        term.line(parser.format_help().rstrip())
        return EXIT_OK
    if options.topic == "settings":
        from git_credential_pat.commands.configure import settings_help

        return settings_help(argparse.Namespace(markdown=False), term)
    if options.topic not in NAMES:
        raise UsageError(f"no command {options.topic!r}; commands: "
                         f"{', '.join(c.name for c in COMMANDS)}")
    with contextlib.suppress(SystemExit):  # how argparse ends after printing a command's help
        parser.parse_args([options.topic, "--help"])
    return EXIT_OK
