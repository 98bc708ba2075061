"""The commands people run, without the network: help, exit codes, status, settings,
configure/unconfigure and migrate, through the real executable in a throwaway HOME.

The commands that sign in are in `test_commands_azure.py`, against the fake Azure.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from git_credential_pat import __version__
from git_credential_pat.commands.configure import TABLE_MARKERS, settings_markdown
from git_credential_pat.commands.main import COMMANDS, build_parser, options, subcommands
from git_credential_pat.commands.manual import MANUAL_WIDTH
from git_credential_pat.core.settings import SETTINGS
from tests.gitenv import GitEnv
from tests.netfixtures import PTY_RUN
from tests.test_gitconfig import EXPECTED, OTHER_CONFIG

README = Path(__file__).resolve().parent.parent / "README.md"
DAY = 86400


def command(env: GitEnv, *args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return env.run("git-credential-pat", *args, check=False, **kwargs)  # type: ignore[arg-type]


def at_terminal(env: GitEnv, *args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """Run the helper with a pseudo-terminal as its stdin, stdout, stderr and controlling
    terminal, as from a person's shell; what it wrote there comes back as stdout."""
    return env.run(sys.executable, "-c", PTY_RUN, "git-credential-pat", *args, check=False,
                   **kwargs)  # type: ignore[arg-type]


def new_pat() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(52))


def store_pat(env: GitEnv, org: str, pat: str, days: float) -> None:
    """A PAT as git hands it to `store` after a person typed it at the prompt."""
    expiry = int(time.time() + days * DAY)
    done = env.helper("store", f"protocol=https\nhost=dev.azure.com\npath={org}/p/_git/r\n"
                               f"username={org}\npassword={pat}\npassword_expiry_utc={expiry}\n\n")
    assert done.returncode == 0, done.stderr


# -- the command line --------------------------------------------------------------------------


def test_every_command_has_help_with_examples(genv: GitEnv) -> None:
    for name in [c.name for c in COMMANDS]:
        done = command(genv, name, "--help")
        assert done.returncode == 0, name
        assert b"examples:\n  git credential-pat " + name.encode() in done.stdout, name
    assert command(genv, "help", "rotate").stdout == command(genv, "rotate", "--help").stdout
    top = command(genv, "--help")
    assert top.returncode == 0
    assert b"exit status: 0 success, 1 failure, 2 usage error" in top.stdout


def test_version(genv: GitEnv) -> None:
    for args in (["--version"], ["version"]):
        done = command(genv, *args)
        assert (done.returncode, done.stdout) == (0, f"git-credential-pat {__version__}\n".encode())


def test_usage_errors_exit_2_with_one_line(genv: GitEnv) -> None:
    for args in (["login", "--lifespan", "0"], ["login", "https://github.com/x/y"],
                 ["logout", "contoso", "--all"], ["status", "--bogus"], ["help", "nope"]):
        done = command(genv, *args)
        assert done.returncode == 2, args
        assert done.stdout == b"", args
        assert b"Traceback" not in done.stderr, args
    done = command(genv, "login", "https://github.com/x/y")
    assert done.stderr == (b"git-credential-pat: 'https://github.com/x/y' is not an Azure DevOps "
                           b"organization; give https://dev.azure.com/ORG or "
                           b"https://ORG.visualstudio.com\n")


def test_no_organization_to_act_on_is_a_usage_error(genv: GitEnv) -> None:
    done = command(genv, "rotate")
    assert done.returncode == 2
    assert done.stderr == (b"git-credential-pat: name the organization "
                           b"(https://dev.azure.com/ORG or https://ORG.visualstudio.com)\n")


def test_an_action_from_a_newer_git_is_ignored_but_a_typo_at_a_terminal_is_not(
        genv: GitEnv) -> None:
    piped = command(genv, "frobnicate", input=b"protocol=https\nhost=h.example\n\n")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, b"", b"")
    typed = at_terminal(genv, "xyzzy")
    assert typed.returncode == 2
    assert typed.stdout == (b"git-credential-pat: no command 'xyzzy'; commands: login, "
                            b"status, list, rotate, revoke, logout, doctor, configure, "
                            b"unconfigure, migrate, settings, completion, help\r\n")


STAUTS = b"git-credential-pat: no command 'stauts'; did you mean `git credential-pat status`?\n"


def test_a_mistyped_command_names_the_closest_one_in_one_line(genv: GitEnv) -> None:
    """Without a request from git on stdin (here /dev/null's nothing, then a pipe that stays
    silent), an unknown word is a typo, wherever stdin comes from."""
    empty = command(genv, "stauts")
    assert (empty.returncode, empty.stdout, empty.stderr) == (2, b"", STAUTS)
    started = time.monotonic()
    silent = subprocess.run(["git-credential-pat", "stauts"], stdin=subprocess.PIPE,
                            capture_output=True, env=genv.env, timeout=30, check=False)
    assert (silent.returncode, silent.stderr) == (2, STAUTS)
    assert time.monotonic() - started < 10
    typed = at_terminal(genv, "stauts")
    assert (typed.returncode, typed.stdout) == (2, STAUTS.replace(b"\n", b"\r\n"))
    assert command(genv, "help", "stauts").stderr == STAUTS
    assert command(genv, "stauts", "--json").stderr == STAUTS


def test_help_names_the_rule_for_unknown_words(genv: GitEnv) -> None:
    text = command(genv, "--help").stdout.decode()
    assert "action from a newer git: it is ignored" in text
    assert "mistyped command: one line, exit 2" in text
    assert command(genv, "help").stdout.decode().rstrip() == text.rstrip()


@pytest.mark.skipif(not shutil.which("man"), reason="man is not installed (tests/run installs "
                                                     "man-db)")
def test_the_manual_renders_every_command_s_help_as_help_prints_it(genv: GitEnv,
                                                                   tmp_path: Path) -> None:
    """The manual is made from the parser: each command's `--help`, at the manual's width
    (argparse takes COLUMNS less 2), is in the page man renders, line for line."""
    page = tmp_path / "git-credential-pat.1"
    page.write_bytes(command(genv, "help", "--man").stdout)
    rendered = genv.run("man", "-l", str(page), extra_env={"MANWIDTH": "100", "MANPAGER": "cat",
                                                           "LANG": "C.UTF-8"}).stdout.decode()
    lines = {line.strip() for line in rendered.splitlines()}
    assert rendered.startswith("GIT-CREDENTIAL-PAT(1)")
    width = {"COLUMNS": str(MANUAL_WIDTH + 2)}
    for name in [None, *(c.name for c in COMMANDS)]:
        shown = command(genv, *([name] if name else []), "--help", extra_env=width).stdout
        for line in shown.decode().splitlines():
            assert line.strip() in lines, (name, line)
    for setting in SETTINGS:
        assert f"credential.{setting.config_key}" in lines


GIT_COMPLETION = Path("/usr/share/bash-completion/completions/git")
COMPLETE = r"""
source "$1"
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$COMP_LINE"
case $COMP_LINE in *" ") COMP_WORDS+=("") ;; esac
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
$3
printf '%s\n' "${COMPREPLY[@]}"
"""


def complete(env: GitEnv, tmp_path: Path, line: str) -> list[str]:
    """What bash offers at the end of `line`: through git's own completion script, as a person
    with bash-completion has it, for `git ...`; through the generated one for the command."""
    script = tmp_path / "completion.bash"
    script.write_bytes(command(env, "completion", "bash").stdout)
    if line.startswith("git "):
        loader = tmp_path / "both.bash"
        loader.write_text(f'source "{GIT_COMPLETION}"\nsource "{script}"\n')
        script, run = loader, "__git_wrap__git_main"
    else:
        run = "_git_credential_pat_command_line"
    done = env.run("bash", "-c", COMPLETE, "bash", str(script), line, run)
    return sorted(word.strip() for word in done.stdout.decode().splitlines() if word.strip())


@pytest.mark.parametrize(("line", "offered"), [
    ("git-credential-pat lo", ["login", "logout"]),
    ("git-credential-pat configure --ex", ["--exclusive"]),
    ("git-credential-pat help sta", ["status"]),
    ("git-credential-pat completion ", ["--help", "-h", "bash", "fish", "zsh"]),
    ("git credential-pat sta", ["status"]),
    ("git credential-pat rotate --j", ["--json"]),
    ("git credential-pat migrate --d", ["--dry-run"]),
])
def test_bash_completes_commands_and_options_also_through_git(
        genv: GitEnv, tmp_path: Path, line: str, offered: list[str]) -> None:
    if line.startswith("git ") and not GIT_COMPLETION.exists():
        pytest.skip("git's bash completion is not installed")
    assert complete(genv, tmp_path, line) == offered


def test_bash_completion_offers_every_command_and_option_the_parser_takes(
        genv: GitEnv, tmp_path: Path) -> None:
    parser = build_parser()
    commands = subcommands(parser)
    assert complete(genv, tmp_path, "git-credential-pat ") == sorted(
        [*commands, "--help", "-h", "--version"])
    for name, sub in commands.items():
        flags = sorted(flag for flag, _, _ in options(sub))
        assert [w for w in complete(genv, tmp_path, f"git-credential-pat {name} -")
                ] == flags, name


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_name_every_command_and_option(genv: GitEnv,
                                                               shell: str) -> None:
    """No zsh or fish runs here: the generated script must at least carry the parser's words."""
    text = command(genv, "completion", shell).stdout.decode()
    for name, sub in subcommands(build_parser()).items():
        assert (f"'{name}:" if shell == "zsh" else f"-a {name} ") in text, name
        for flag, _, _ in options(sub):
            long = flag.startswith("--")
            word = (f"'{flag}:" if shell == "zsh"
                    else f"-{'l' if long else 's'} {flag.lstrip('-')} ")
            assert word in text, (name, flag)


def test_settings_help_lists_every_setting(genv: GitEnv) -> None:
    text = command(genv, "help", "settings").stdout.decode()
    for setting in SETTINGS:
        assert re.search(rf"^credential\.{setting.config_key}  {setting.env_var}  default: ",
                         text, re.M), setting.name
    assert command(genv, "settings", "--markdown").stdout.decode() == settings_markdown() + "\n"


def test_the_readme_carries_the_generated_settings_table() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = (text.index(marker) for marker in TABLE_MARKERS)
    assert text[start + len(TABLE_MARKERS[0]):end].strip() == settings_markdown(), \
        "regenerate it: git credential-pat settings --markdown"


# -- status ------------------------------------------------------------------------------------


def test_status_with_nothing_stored(genv: GitEnv) -> None:
    done = command(genv, "status")
    assert done.returncode == 0
    assert done.stdout.startswith(b"No Azure DevOps organization is stored yet.")
    assert json.loads(command(genv, "status", "--json").stdout)["organizations"] == []


@pytest.mark.parametrize("store", ["file", "keyring"])
def test_status_shows_each_organization_and_warns_a_week_ahead(
        request: pytest.FixtureRequest, genv: GitEnv, store: str) -> None:
    if store == "keyring":
        request.getfixturevalue("kenv")
    store_pat(genv, "contoso", new_pat(), days=40)
    store_pat(genv, "fabrikam", new_pat(), days=3)
    command(genv, "configure")
    genv.config("--add", "credential.https://dev.azure.com/fabrikam.helper", "")
    genv.config("--add", "credential.https://dev.azure.com/fabrikam.helper", "manager")

    text = command(genv, "status").stdout.decode()
    rows = {line.split()[0]: line for line in text.splitlines()[1:3]}
    assert "expires in 40 days" in rows["contoso"]
    assert rows["contoso"].endswith("yes")
    assert "expires in 3 days" in rows["fabrikam"]
    assert rows["fabrikam"].endswith("no")
    assert ("OS keyring" if store == "keyring" else "file ") in text
    assert "run: git credential-pat configure" in text

    report = json.loads(command(genv, "status", "--json").stdout)
    by_org = {o["organization"]: o for o in report["organizations"]}
    assert (by_org["contoso"]["level"], by_org["contoso"]["days_left"]) == ("ok", 40)
    assert (by_org["fabrikam"]["level"], by_org["fabrikam"]["days_left"]) == ("warn", 3)
    assert by_org["fabrikam"]["helpers"] == ["manager"]
    assert by_org["contoso"]["git_uses_helper"] and not by_org["fabrikam"]["git_uses_helper"]
    assert by_org["contoso"]["minted_here"] is False and by_org["contoso"]["scope"] is None


def test_colour_only_at_a_terminal_and_never_with_no_color(genv: GitEnv) -> None:
    store_pat(genv, "contoso", new_pat(), days=3)
    assert b"\x1b[" not in command(genv, "status").stdout
    assert b"\x1b[33m" in at_terminal(genv, "status").stdout
    assert b"\x1b[" not in at_terminal(genv, "status", extra_env={"NO_COLOR": "1"}).stdout


# -- configure / unconfigure -------------------------------------------------------------------


def test_configure_and_unconfigure_round_trip(genv: GitEnv) -> None:
    config = genv.home / ".gitconfig"
    done = command(genv, "configure")
    assert done.stdout == (b"Set up for https://dev.azure.com and https://*.visualstudio.com "
                           b"in the global git config.\n")
    assert config.read_bytes() == EXPECTED
    assert command(genv, "configure").stdout.startswith(b"Already set up ")
    assert command(genv, "unconfigure").stdout == \
        b"Removed git-credential-pat from the global git config.\n"
    assert config.read_bytes() == b""

    config.write_bytes(OTHER_CONFIG)
    done = command(genv, "configure")
    assert done.returncode == 0
    assert b"warning: credential helper 'store'" in done.stdout  # gitconfig's notice, passed on
    assert command(genv, "unconfigure").returncode == 0
    assert config.read_bytes() == OTHER_CONFIG


def test_configure_local_and_exclusive(genv: GitEnv) -> None:
    repo = genv.home / "repo"
    genv.git("init", "-q", str(repo))
    assert command(genv, "configure", "--local", "--exclusive", cwd=repo).returncode == 0
    local = repo / ".git" / "config"
    assert b"\thelper = \n\thelper = cache --timeout=900\n\thelper = pat\n" in local.read_bytes()
    assert (genv.home / ".gitconfig").read_bytes() == b""
    assert command(genv, "unconfigure", "--local", cwd=repo).returncode == 0
    assert b"helper" not in local.read_bytes()
