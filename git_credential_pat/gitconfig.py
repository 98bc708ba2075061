"""Set git up to use this helper for Azure DevOps, undo it, and tell which helpers a URL gets.

Everything goes through `git config`, never by editing files, so includes, `GIT_CONFIG_GLOBAL`,
the XDG location and git's own quoting stay git's business. `configure` writes only the entries in
`ENTRIES` and `unconfigure` removes only those, so a person's other helpers and keys survive both.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import SplitResult, urlsplit

from git_credential_pat.errors import HelperError

# The URL patterns git should hand to this helper: Azure DevOps under both of its host names.
URLS = ("https://dev.azure.com", "https://*.visualstudio.com")
# What each of those sections gets, in order; `(name, value)` pairs for `git config --add`.
# useHttpPath: git then sends the path, which names the organization on dev.azure.com.
ENTRIES = (("helper", "pat"), ("useHttpPath", "true"))
# git's credential-cache, asked before the helper: a repeat request is answered from memory as
# fast as git's own C helpers, and git hands the cache whatever the helper answered. Its entries
# outlive their last use by at most this long, far less than the days a PAT has left when it is
# answered; `gitcache` takes out of it what the helper would no longer answer with.
CACHE_SECONDS = 900
CACHE = ("helper", f"cache --timeout={CACHE_SECONDS}")
# An empty `helper` drops every helper configured before it for these URLs (`exclusive`).
RESET = ("helper", "")
SCOPES = ("global", "system", "local")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TIMEOUT = 30


def configure(scope: str = "global", exclusive: bool = False, cache: bool = True) -> list[str]:
    """Write the helper entries for Azure DevOps into one config file; return notices to show.

    Rerunning is harmless: sections that already hold exactly these entries are left alone, and
    others get ours removed and rewritten in order, which also switches `exclusive` and `cache`
    on or off.
    """
    flag = _scope_flag(scope)
    notices = []
    if cache and not cache_available():
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
                _git_config(flag, "--add", f"credential.{url}.{name}", value)
            changed = True
    done = "Set up" if changed else "Already set up"
    return [f"{done} for {' and '.join(URLS)} in the {scope} git config.", *notices,
            *_conflicts()]


def helper_program(helper: str) -> str:
    """The program a `credential.helper` value runs, named as git names it: a bare word `w` is
    `git-credential-w`, a path its file name, and a shell line (`!...`) its command, reading
    `!git credential-w` as `git-credential-w`."""
    shell = helper.startswith("!")
    words = helper.removeprefix("!").split()
    if shell and len(words) > 1 and words[0] == "git":
        return f"git-{words[1]}"
    if not words:
        return ""
    name = os.path.basename(words[0])
    if shell or name != words[0]:
        return name
    return f"git-credential-{words[0]}"


def is_cache(helper: str) -> bool:
    """Whether a `credential.helper` value is git's credential-cache, which answers only with
    what a later helper answered before."""
    return helper_program(helper) == "git-credential-cache"


def cache_available() -> bool:
    """git has no credential-cache where it was built without Unix sockets (often on Windows).
    Asked about a host that cannot exist, a working cache answers nothing and exits 0."""
    try:
        done = subprocess.run(["git", "credential-cache", "get"],
                              input="protocol=https\nhost=git-credential-pat.invalid\n\n",
                              capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and not done.stdout


def unconfigure(scope: str = "global") -> list[str]:
    """Remove exactly what `configure` writes from one config file; return notices to show.

    git drops a section once its last entry goes, so a file that had none of ours before
    `configure` is byte for byte the same after `unconfigure`.
    """
    flag = _scope_flag(scope)
    removed = [url for url in URLS if _remove_ours(flag, url)]
    if removed:
        return [f"Removed git-credential-pat from the {scope} git config."]
    return [f"git-credential-pat was not in the {scope} git config."]


def applicable_helpers(url: str) -> list[str]:
    """The helpers git would run for `url`, in order, as git resolves them.

    git collects `credential.helper` from every section whose URL matches, across all config
    files in order, and an empty value empties the list so far. `git config --get-urlmatch` would
    return only the single best match, so the matching is done here, following git's urlmatch.c.
    """
    helpers: list[str] = []
    for key, value in _read_all(r"^credential\.(.+\.)?helper$"):
        pattern = key[len("credential."):-len(".helper")]
        if value is None or (pattern and not url_matches(pattern, url)):
            continue  # a bare `helper` with no `=` is an error that git skips too
        if value:
            helpers.append(value)
        else:
            helpers.clear()
    return helpers


def url_matches(pattern: str, url: str) -> bool:
    """Whether a `credential.<pattern>.*` section applies to `url`, by git's rules.

    Scheme, host and port must be equal (a host label `*` matches any one label); a user name in
    the pattern must be equal; the pattern's path must be a prefix of the URL's at a `/`. A pattern
    without `://` is git's partial form and names a host, matched exactly.
    """
    try:
        target = urlsplit(url)
        if "://" not in pattern:
            return pattern.lower() == target.netloc.rpartition("@")[2].lower()
        want = urlsplit(pattern)
        want_labels = (want.hostname or "").split(".")
        labels = (target.hostname or "").split(".")
        return (want.scheme.lower() == target.scheme.lower()
                and want.username in (None, target.username)
                and len(want_labels) == len(labels)
                and all(label in ("*", got) for label, got in zip(want_labels, labels))
                and _port(want) == _port(target)
                and (target.path.rstrip("/") + "/").startswith(want.path.rstrip("/") + "/"))
    except ValueError:  # a port that is not a number: git skips such a section too
        return False


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
        helpers = applicable_helpers(url)
        first = next((i for i, helper in enumerate(helpers) if helper in ours), None)
        if first is None:
            notices.append(f"warning: git will not use git-credential-pat for {url}: an empty "
                           "credential.helper configured after it resets the list (see "
                           "`git config --show-origin --get-all credential.helper`).")
            continue
        for i, other in enumerate(helpers):
            if other in ours or is_cache(other):
                continue
            what = ("runs before git-credential-pat and will answer instead" if i < first
                    else "is handed every PAT git-credential-pat makes")
            notices.append(f"warning: credential helper '{other}' {what} for {url}; remove it "
                           "or run `git credential-pat configure --exclusive`.")
    return notices


def _scope_flag(scope: str) -> str:
    """The `git config` option for a scope, refusing anything else before git sees it."""
    if scope not in SCOPES:
        raise HelperError(f"unknown git config scope {scope!r}: use one of {', '.join(SCOPES)}")
    return f"--{scope}"


def _canonical(entry: tuple[str, str]) -> tuple[str, str]:
    """An entry as `git config --get-regexp` spells it: the variable name in lower case."""
    return entry[0].lower(), entry[1]


def _ours(flag: str, url: str) -> list[tuple[str, str]]:
    """The entries of ours (and the reset line) in one URL's section of one file, in order."""
    prefix = f"credential.{url}."
    mine = {_canonical(entry) for entry in (RESET, CACHE, *ENTRIES)}
    found = _read_all("^" + _ere_escape(prefix), flag)
    return [(key[len(prefix):], value) for key, value in found
            if (key[len(prefix):], value) in mine]


def _remove_ours(flag: str, url: str) -> bool:
    """Remove our entries (and the reset line) from one URL's section; whether any were there."""
    present = set(_ours(flag, url))
    for name, value in present:
        _git_config(flag, "--unset-all", f"credential.{url}.{name}",
                    "^" + _ere_escape(value) + "$")
    return bool(present)


def _read_all(key_regex: str, *flags: str) -> list[tuple[str, str | None]]:
    """`git config --get-regexp` as (key, value) pairs in config order; None for a bare key."""
    out = _git_config(*flags, "--null", "--get-regexp", key_regex, missing_ok=True)
    pairs: list[tuple[str, str | None]] = []
    for record in filter(None, out.split("\0")):
        key, newline, value = record.partition("\n")
        pairs.append((key, value if newline else None))
    return pairs


def _git_config(*args: str, missing_ok: bool = False) -> str:
    """Run `git config`; git's own message becomes a `HelperError` (it never holds a secret)."""
    try:
        done = subprocess.run(["git", "config", *args], capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except FileNotFoundError as error:
        raise HelperError("git is not installed or not on PATH") from error
    except subprocess.TimeoutExpired as error:
        raise HelperError(f"`git config` did not answer within {_TIMEOUT} s") from error
    if done.returncode == 1 and missing_ok:  # 1: nothing matched, which a query may expect
        return ""
    if done.returncode != 0:
        raise HelperError(done.stderr.strip() or f"`git config` failed ({done.returncode})")
    return done.stdout


def _port(url: SplitResult) -> int | None:
    """A URL's port with the scheme's default filled in, as git normalizes it."""
    return url.port or _DEFAULT_PORTS.get(url.scheme.lower())


def _ere_escape(text: str) -> str:
    """Escape text for the POSIX extended regexps that `git config` takes for keys and values
    (`--fixed-value` would do for values, but needs git 2.30)."""
    return "".join("\\" + ch if ch in ".[]()*+?{}|^$\\" else ch for ch in text)
