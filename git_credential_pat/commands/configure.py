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
# URLs of both host names, to ask git which helpers it runs for Azure DevOps.
SAMPLE_URLS = ("https://dev.azure.com/org/project/_git/repo",
               "https://org.visualstudio.com/project/_git/repo")
# What git's `store` does with every PAT git hands it.
PLAINTEXT = "writes every PAT git-credential-pat makes to disk in plain text"
# An empty `helper` drops every helper configured before it for these URLs (`exclusive`).
RESET = ("helper", "")
# Records, in the section itself, an entry of the kinds above that the person had before
# `configure` ran (`useHttpPath = true` from Git Credential Manager), so `unconfigure` keeps it.
# The record lives in the file it describes, for any scope, and only where there is such an
# entry: a file configured from scratch holds exactly the lines the README shows.
KEEP = "patKeep"
Entries = list[tuple[str, str]]


def write(scope: str = "global", exclusive: bool = False, cache: bool = True) -> list[str]:
    """Write the helper entries for Azure DevOps into one config file; return notices to show
    (the first says whether anything changed).

    Rerunning is harmless: sections that already hold exactly these entries are left alone, and
    others get ours removed and rewritten in order, which also switches `exclusive` and `cache`
    on or off. An entry the person had before (Git Credential Manager writes `useHttpPath`) is
    neither added twice nor touched, and is recorded as theirs so that `remove` leaves it.
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
        ours, theirs, _ = _section(flag, url)
        adding = [entry for entry in map(_canonical, wanted) if entry not in theirs]
        if ours != adding:
            _remove_ours(flag, url)
            for name, value in wanted:
                if _canonical((name, value)) in adding:
                    gitconfig.change(flag, "--add", f"credential.{url}.{name}", value)
            for name, value in theirs:
                gitconfig.change(flag, "--add", f"credential.{url}.{KEEP}", f"{name}={value}")
            changed = True
    done = "Set up" if changed else "Already set up"
    return [f"{done} for {' and '.join(URLS)} in the {scope} git config.", *notices,
            *_conflicts()]


def remove(scope: str = "global") -> list[str]:
    """Remove exactly what `configure` wrote from one config file; return notices to show.

    git drops a section once its last entry goes, so a file that had none of ours before
    `configure` is byte for byte the same after `unconfigure`, and the entries recorded as the
    person's stay where they were.
    """
    flag = gitconfig.scope_flag(scope)
    removed = [url for url in URLS if _remove_ours(flag, url)]
    if removed:
        return [f"Removed git-credential-pat from the {scope} git config."]
    return [f"git-credential-pat was not in the {scope} git config."]


def _conflicts() -> list[str]:
    """Warn about other helpers git will also run for Azure DevOps URLs.

    One that runs first answers instead of this one (Git Credential Manager, `store`); one that runs
    after is still sent every PAT on `store`. Either way, git hands each of them every PAT that
    worked, which for `store` means a plain-text copy on disk. git's credential-cache is
    neither: it answers only with what a later helper answered.
    """
    ours = {value for name, value in ENTRIES if name == "helper"}
    notices = []
    for url in SAMPLE_URLS:
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
            plain = f", and {PLAINTEXT}" if gitconfig.writes_plaintext(other) else ""
            notices.append(f"warning: credential helper '{other}' {what} for {url}{plain}; "
                           "remove it or run `git credential-pat configure --exclusive`.")
    return notices


def plaintext_warnings() -> list[str]:
    """One line for each helper that git would hand Azure DevOps PATs to and that writes them
    in plain text, naming the fix; `status` and `doctor` show these too."""
    found: dict[str, list[str]] = {}
    for url in SAMPLE_URLS:
        for helper in gitconfig.applicable_helpers(url):
            if gitconfig.writes_plaintext(helper):
                found.setdefault(helper, []).append(url.split("/")[2])
    return [f"warning: credential helper '{helper}' {PLAINTEXT} ({' and '.join(hosts)}); "
            "run `git credential-pat configure --exclusive`, then `git credential-pat migrate` "
            "for what it already holds." for helper, hosts in found.items()]


def _canonical(entry: tuple[str, str]) -> tuple[str, str]:
    """An entry as `git config --get-regexp` spells it: the variable name in lower case."""
    return entry[0].lower(), entry[1]


def _section(flag: str, url: str) -> tuple[Entries, Entries, Entries]:
    """One URL's section of one file: the entries `configure` wrote there, in order, those of
    the same kind the person had before, and the record (`KEEP` entries) that says so.

    A section with no record was written by an earlier version when it holds `helper = pat`,
    and then every such entry is ours; otherwise none is, and `configure` is seeing them first.
    """
    prefix = f"credential.{url}."
    mine = {_canonical(entry) for entry in (RESET, CACHE, *ENTRIES)}
    found = [(key[len(prefix):], value or "") for key, value in
             gitconfig.read_all("^" + gitconfig.ere_escape(prefix), flag)]
    kept = [(value.partition("=")[0], value.partition("=")[2]) for key, value in found
            if key == KEEP.lower() and "=" in value]
    matching = [entry for entry in found if entry in mine]
    if kept or _canonical(("helper", "pat")) in matching:
        theirs = [(name.lower(), value) for name, value in kept]
    else:
        theirs = matching
    ours = [entry for entry in matching if entry not in theirs]
    return ours, theirs, [(KEEP, f"{name}={value}") for name, value in kept]


def _remove_ours(flag: str, url: str) -> bool:
    """Remove what `configure` wrote in one URL's section, and its record; whether any was."""
    ours, _, record = _section(flag, url)
    for name, value in {*ours, *record}:
        gitconfig.change(flag, "--unset-all", f"credential.{url}.{name}",
                         "^" + gitconfig.ere_escape(value) + "$")
    return bool(ours)


def run(options: argparse.Namespace, term: Terminal) -> int:
    notices = write(options.scope, options.exclusive, options.cache)
    _report(options, term, notices, "configured" if notices[0].startswith("Set up")
            else "nothing to change")
    return 0


def undo(options: argparse.Namespace, term: Terminal) -> int:
    notices = remove(options.scope)
    _report(options, term, notices, "removed" if notices[0].startswith("Removed")
            else "nothing to remove")
    return 0


def _report(options: argparse.Namespace, term: Terminal, notices: list[str], done: str) -> None:
    if options.json:
        term.json({"done": done, "scope": options.scope, "urls": list(URLS),
                   "message": notices[0], "notices": notices[1:]})
        return
    for notice in notices:
        term.line(notice)


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
    if isinstance(value, bool):
        value = str(value).lower()  # as git config spells it
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{quote}{value}{quote}"
