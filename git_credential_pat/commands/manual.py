"""`help [COMMAND]` and the manual page, both made from the parser `--help` prints.

git turns `git credential-pat --help` into `git help credential-pat`, which opens the manual
page git-credential-pat(1); install.sh writes it from `help --man`. Each command's section
is that command's `--help` text as argparse formats it, at a fixed width, so the manual and
`--help` cannot say different things.
"""

from __future__ import annotations

import argparse
import contextlib

from git_credential_pat import __version__
from git_credential_pat.commands.main import (
    COMMANDS,
    EXIT_OK,
    NAMES,
    build_parser,
    subcommands,
    unknown_command,
)
from git_credential_pat.commands.output import Terminal
from git_credential_pat.core.constants import NAME
from git_credential_pat.core.errors import UsageError
from git_credential_pat.core.settings import SETTINGS

# The width the manual's copy of `--help` is formatted at: man indents it by 7 columns, and
# reads well in an 80-column terminal.
MANUAL_WIDTH = 72


def help_topic(options: argparse.Namespace, term: Terminal) -> int:
    if options.man:
        term.line(manual())
        return EXIT_OK
    parser = build_parser()
    if not options.topic:
        term.line(parser.format_help().rstrip())
        return EXIT_OK
    if options.topic == "settings":
        from git_credential_pat.commands.configure import settings_help

        return settings_help(argparse.Namespace(markdown=False), term)
    if options.topic not in NAMES:
        raise UsageError(unknown_command(options.topic))
    with contextlib.suppress(SystemExit):  # how argparse ends after printing a command's help
        parser.parse_args([options.topic, "--help"])
    return EXIT_OK


def command_help(name: str | None = None, width: int = MANUAL_WIDTH) -> str:
    """`--help` (or a command's `--help`) as argparse formats it at `width` columns."""
    parser = build_parser(width)
    return (subcommands(parser)[name] if name else parser).format_help()


def manual() -> str:
    """git-credential-pat(1) in roff (man's `-man` macros)."""
    top = build_parser(MANUAL_WIDTH)
    lines = [f'.TH GIT-CREDENTIAL-PAT 1 "" "{NAME} {__version__}" "Git Manual"',
             ".SH NAME", f"{NAME} \\- {_text(top.description.splitlines()[0])}",
             ".SH SYNOPSIS", *_verbatim(top.format_usage().removeprefix("usage: ")),
             ".SH DESCRIPTION", *_verbatim(command_help())]
    lines.append(".SH COMMANDS")
    for command in COMMANDS:
        lines += [f".SS {command.name}", *_verbatim(command_help(command.name))]
    lines.append(".SH SETTINGS")
    lines.append(_text("Each is a git config key, also per URL "
                       "(credential.https://dev.azure.com/ORG.KEY); its environment variable "
                       "wins over git config."))
    for setting in SETTINGS:
        default = setting.default if setting.default != "" else "(none)"
        lines += [".TP", f".B credential.{setting.config_key}",
                  _text(f"{setting.env_var}, default {default}. {setting.doc}")]
    lines += [".SH SEE ALSO", ".BR gitcredentials (7),", ".BR git-credential (1)"]
    return "\n".join(lines)


def _text(text: str) -> str:
    """Text for roff: backslashes and hyphens as themselves, and no line read as a request."""
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(f"\\&{line}" if line.startswith((".", "'")) else line
                     for line in escaped.splitlines())


def _verbatim(text: str) -> list[str]:
    """Preformatted text kept line for line, as `--help` laid it out."""
    return [".PP", ".nf", *(_text(line) if line else "" for line in text.rstrip().splitlines()),
            ".fi"]
