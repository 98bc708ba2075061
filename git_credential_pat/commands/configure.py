"""`configure`, `unconfigure` and `settings`: how git is set up to use the helper.

`configure` writes only the entries below and `unconfigure` removes only those, so a person's
other helpers and keys survive both. `settings` prints every setting from `SETTINGS`, the same
source the README's table is generated from.
"""

from __future__ import annotations

import argparse
import textwrap

from git_credential_pat.commands.output import Terminal
from git_credential_pat.core.constants import CACHE_SECONDS
from git_credential_pat.core.settings import SETTINGS, Setting
from git_credential_pat.edges import gitconfig

# The URL patterns git should hand to this helper: Azure DevOps under both of its host names.
URLS = ("https://dev.azure.com", "https://*.visualstudio.com")
# What each of those sections gets, in order; `(name, value)` pairs for `git config --add`.
# useHttpPath: git then sends the path, which names the organization on dev.azure.com.
ENTRIES = (("helper", "pat"), ("useHttpPath", "true"))
# git's credential-cache, asked before the helper: a repeat request is answered from memory as
# fast as git's own C helpers, and git hands the cache whatever the helper answered. Its entries
# outlive their last use by at most this long, far less than the days a PAT has left when it is
# answered; `gitcache` takes out of it what the helper would no longer answer with.
CACHE = ("helper", f"cache --timeout={CACHE_SECONDS}")
# Where the README carries the table `settings --markdown` prints.
TABLE_MARKERS = ("<!-- settings-table -->", "<!-- /settings-table -->")
# An empty `helper` drops every helper configured before it for these URLs (`exclusive`).
RESET = ("helper", "")


def write(scope: str = "global", exclusive: bool = False, cache: bool = True) -> list[str]:
    """Write the helper entries for Azure DevOps into one config file; return notices to show.

    Rerunning is harmless: sections that already hold exactly these entries are left alone, and
    others get ours removed and rewritten in order, which also switches `exclusive` and `cache`
    on or off.
    """
    flag = gitconfig.scope_flag(scope)
    notices = []
    if cache and not gitconfig.cache_available():
        cache = False
        notices.append("git's credential-cache does not work here, so every request goes to "
                       "git-credential-pat.")
    wanted = [CACHE, *ENTRIES] if cache else list(ENTRIES)
    if exclusive:
        wanted.insert(0, RESET)
    changed = False
    for url in URLS:
        if _ours(flag, url) != [_canonical(entry) for entry in wanted]:
            _remove_ours(flag, url)
            for name, value in wanted:
                gitconfig.change(flag, "--add", f"credential.{url}.{name}", value)
            changed = True
    done = "Set up" if changed else "Already set up"
    return [f"{done} for {' and '.join(URLS)} in the {scope} git config.", *notices,
            *_conflicts()]


def remove(scope: str = "global") -> list[str]:
    """Remove exactly what `configure` writes from one config file; return notices to show.

    git drops a section once its last entry goes, so a file that had none of ours before
    `configure` is byte for byte the same after `unconfigure`.
    """
    flag = gitconfig.scope_flag(scope)
    removed = [url for url in URLS if _remove_ours(flag, url)]
    if removed:
        return [f"Removed git-credential-pat from the {scope} git config."]
    return [f"git-credential-pat was not in the {scope} git config."]


def _conflicts() -> list[str]:
    """Warn about other helpers git will also run for Azure DevOps URLs.

    One that runs first answers instead of this one (Git Credential Manager, `store`); one that runs
    after is still sent every PAT on `store`, which for `store` means a plain-text copy on disk.
    git's credential-cache is neither: it answers only with what a later helper answered.
    """
    ours = {value for name, value in ENTRIES if name == "helper"}
    notices = []
    for url in ("https://dev.azure.com/org/project/_git/repo",
                "https://org.visualstudio.com/project/_git/repo"):
        helpers = gitconfig.applicable_helpers(url)
        first = next((i for i, helper in enumerate(helpers) if helper in ours), None)
        if first is None:
            notices.append(f"warning: git will not use git-credential-pat for {url}: an empty "
                           "credential.helper configured after it resets the list (see "
                           "`git config --show-origin --get-all credential.helper`).")
            continue
        for i, other in enumerate(helpers):
            if other in ours or gitconfig.is_cache(other):
                continue
            what = ("runs before git-credential-pat and will answer instead" if i < first
                    else "is handed every PAT git-credential-pat makes")
            notices.append(f"warning: credential helper '{other}' {what} for {url}; remove it "
                           "or run `git credential-pat configure --exclusive`.")
    return notices


def _canonical(entry: tuple[str, str]) -> tuple[str, str]:
    """An entry as `git config --get-regexp` spells it: the variable name in lower case."""
    return entry[0].lower(), entry[1]


def _ours(flag: str, url: str) -> list[tuple[str, str]]:
    """The entries of ours (and the reset line) in one URL's section of one file, in order."""
    prefix = f"credential.{url}."
    mine = {_canonical(entry) for entry in (RESET, CACHE, *ENTRIES)}
    found = gitconfig.read_all("^" + gitconfig.ere_escape(prefix), flag)
    return [(key[len(prefix):], value) for key, value in found
            if (key[len(prefix):], value) in mine]


def _remove_ours(flag: str, url: str) -> bool:
    """Remove our entries (and the reset line) from one URL's section; whether any were there."""
    present = set(_ours(flag, url))
    for name, value in present:
        gitconfig.change(flag, "--unset-all", f"credential.{url}.{name}",
                    "^" + gitconfig.ere_escape(value) + "$")
    return bool(present)


def run(options: argparse.Namespace, term: Terminal) -> int:
    for notice in write(options.scope, options.exclusive, options.cache):
        term.line(notice)
    return 0


def undo(options: argparse.Namespace, term: Terminal) -> int:
    for notice in remove(options.scope):
        term.line(notice)
    return 0


def settings_help(options: argparse.Namespace, term: Terminal) -> int:
    if options.markdown:
        term.line(settings_markdown())
        return 0
    term.line("Each setting is a git config key, also per URL "
              "(credential.https://dev.azure.com/ORG.KEY);\nits environment variable wins "
              "over git config.\n")
    for setting in SETTINGS:
        term.line((f"credential.{setting.config_key}", "bold"),
                  f"  {setting.env_var}  default: {_default(setting)}")
        term.line(textwrap.fill(setting.doc, 96, initial_indent="    ",
                                subsequent_indent="    "))
    return 0


def settings_markdown() -> str:
    """The README's settings table, generated so that it cannot drift from `SETTINGS`."""
    lines = ["| git config key | environment variable | default | meaning |",
             "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        doc = s.doc.replace("|", "\\|")
        lines.append(f"| `credential.{s.config_key}` | `{s.env_var}` | {_default(s, '`')} "
                     f"| {doc} |")
    return "\n".join(lines)


def _default(setting: Setting, quote: str = "") -> str:
    value = setting.default
    if value == "":
        return "(none)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{quote}{value}{quote}"
