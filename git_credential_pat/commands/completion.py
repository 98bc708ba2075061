"""`completion bash|zsh|fish`: shell completion, generated from the parser `--help` prints.

Every command, option and help topic comes from `build_parser`, so completion offers exactly
what the parser accepts. For bash the script also defines `_git_credential_pat`, the function
git's own completion calls for `git credential-pat <TAB>`.
"""

from __future__ import annotations

import argparse

from git_credential_pat.commands.main import (
    COMMANDS,
    EXIT_OK,
    HELP_SUMMARY,
    build_parser,
    options,
    subcommands,
)
from git_credential_pat.commands.output import Terminal

SHELLS = ("bash", "zsh", "fish")
EMPTY = '""'  # bash's `case` pattern for no command yet
# Where each shell reads a completion file without being told (bash-completion loads it when
# the command is first completed, and for `git credential-pat` too, through git's completion).
INSTALL_HINTS = {
    "bash": "~/.local/share/bash-completion/completions/git-credential-pat "
            "(install.sh puts it there), or: source <(git credential-pat completion bash)",
    "zsh": "a file _git-credential-pat in a directory on $fpath, or, after compinit: "
           "source <(git credential-pat completion zsh)",
    "fish": "~/.config/fish/completions/git-credential-pat.fish",
}


def run(args: argparse.Namespace, term: Terminal) -> int:
    term.script({"bash": bash, "zsh": zsh, "fish": fish}[args.shell]())
    return EXIT_OK


def words() -> dict[str, list[tuple[str, str]]]:
    """What can follow each command (the empty name: what can follow the program), as (word,
    description) pairs: the commands, each command's options, `help`'s topics (the commands,
    `settings` among them), the shells."""
    parser = build_parser()
    commands = subcommands(parser)
    summaries = {c.name: c.summary for c in COMMANDS} | {"help": HELP_SUMMARY}
    found: dict[str, list[tuple[str, str]]] = {
        "": [(name, summaries.get(name, "")) for name in commands]
        + [(flag, text) for flag, text, _ in options(parser)]}
    for name, sub in commands.items():
        found[name] = [(flag, text) for flag, text, _ in options(sub)]
    found["help"] += [(name, summaries.get(name, "")) for name in commands if name != "help"]
    found["completion"] += [(shell, f"completion for {shell}") for shell in SHELLS]
    return found


def bash() -> str:
    table = words()
    cases = "\n".join(f"\t{name or EMPTY}) echo '{' '.join(w for w, _ in pairs)}' ;;"
                      for name, pairs in table.items())
    commands = " ".join(name for name in table if name)
    return f"""\
# bash completion for git-credential-pat, made by `git credential-pat completion bash`.
# Put it in {INSTALL_HINTS["bash"]}.
__git_credential_pat_commands='{commands}'

__git_credential_pat_words ()
{{
	case "$1" in
{cases}
	esac
}}

# The command being completed: the first word after the program that names one.
__git_credential_pat_command ()
{{
	local i
	for ((i = $1; i < $2; i++)); do
		case " $__git_credential_pat_commands " in
		*" ${{COMP_WORDS[i]}} "*) echo "${{COMP_WORDS[i]}}"; return ;;
		esac
	done
}}

# `git-credential-pat ...` typed as it is.
_git_credential_pat_command_line ()
{{
	local cur="${{COMP_WORDS[COMP_CWORD]}}" command
	command="$(__git_credential_pat_command 1 "$COMP_CWORD")"
	if [ "$command" = migrate ] && [ "${{cur#-}}" = "$cur" ]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
	fi
	mapfile -t COMPREPLY < <(compgen -W "$(__git_credential_pat_words "$command")" -- "$cur")
}}
complete -F _git_credential_pat_command_line git-credential-pat

# `git credential-pat ...`: git's completion calls this, with its own cur, words and cword.
_git_credential_pat ()
{{
	local command
	command="$(__git_find_on_cmdline "$__git_credential_pat_commands")"
	if [ "$command" = migrate ] && [ "${{cur#-}}" = "$cur" ]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
	fi
	__gitcomp "$(__git_credential_pat_words "$command")"
}}"""


def _zsh_pair(word: str, text: str) -> str:
    described = f"{word.replace(':', chr(92) + ':')}:{text}".replace("'", "'\\''")
    return f"'{described}'"


def zsh() -> str:
    table = words()
    commands = "\n\t\t".join(_zsh_pair(w, t) for w, t in table[""] if not w.startswith("-"))
    cases = "\n".join(f"\t{name}) items=({' '.join(_zsh_pair(w, t) for w, t in pairs)}) ;;"
                      for name, pairs in table.items() if name)
    return f"""\
#compdef git-credential-pat
# zsh completion for git-credential-pat, made by `git credential-pat completion zsh`.
# Put it in {INSTALL_HINTS["zsh"]}.
# zsh's git completion uses it for `git credential-pat` too.
_git-credential-pat ()
{{
	local -a commands items
	commands=(
		{commands}
	)
	if (( CURRENT == 2 )); then
		_describe -t commands 'git-credential-pat command' commands
		return
	fi
	case $words[2] in
{cases}
	esac
	if [[ $words[2] == migrate && $PREFIX != -* ]]; then
		_directories
		return
	fi
	_describe -t options 'option' items
}}
compdef _git-credential-pat git-credential-pat"""


def _fish_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish() -> str:
    table = words()
    commands = " ".join(name for name in table if name)
    lines = [
        "# fish completion for git-credential-pat, made by "
        "`git credential-pat completion fish`.",
        f"# Put it in {INSTALL_HINTS['fish']}.",
        f"set -l commands {commands}",
        "complete -c git-credential-pat -f",
    ]
    for program, seen in (("git-credential-pat", ""),
                          ("git", "__fish_seen_subcommand_from credential-pat; and ")):
        for name, pairs in table.items():
            where = (f"{seen}not __fish_seen_subcommand_from $commands" if not name
                     else f"{seen}__fish_seen_subcommand_from {name}")
            for word, text in pairs:
                if word.startswith("--"):
                    what = f"-l {word[2:]}"
                elif word.startswith("-"):
                    what = f"-s {word[1:]}"
                else:
                    what = f"-a {word}"
                lines.append(f"complete -c {program} -n '{where}' {what} -d {_fish_text(text)}")
    return "\n".join(lines)
