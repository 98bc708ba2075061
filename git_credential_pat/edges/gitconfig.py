"""What git config says about credential helpers, read and written through `git config`.

Never by editing files, so includes, `GIT_CONFIG_GLOBAL`, the XDG location and git's own quoting
stay git's business. Which helpers a URL gets is worked out here by git's own rules, because
`git config --get-urlmatch` returns only the single best match and git collects them all.
"""

from __future__ import annotations

import os
from urllib.parse import SplitResult, urlsplit

from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import git

SCOPES = ("global", "system", "local")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


def writes_plaintext(helper: str) -> bool:
    """Whether a `credential.helper` value keeps what git hands it in a plain-text file: git's
    `store` (~/.git-credentials, or its --file)."""
    return helper_program(helper) == "git-credential-store"


def cache_available() -> bool:
    """git has no credential-cache where it was built without Unix sockets (often on Windows).
    Asked about a host that cannot exist, a working cache answers nothing and exits 0."""
    try:
        answer = git.run("credential-cache", "get",
                         stdin="protocol=https\nhost=git-credential-pat.invalid\n\n")
    except HelperError:
        return False
    return not answer


def applicable_helpers(url: str) -> list[str]:
    """The helpers git would run for `url`, in order, as git resolves them.

    git collects `credential.helper` from every section whose URL matches, across all config
    files in order, and an empty value empties the list so far. `git config --get-urlmatch` would
    return only the single best match, so the matching is done here, following git's urlmatch.c.
    """
    helpers: list[str] = []
    for key, value in read_all(r"^credential\.(.+\.)?helper$"):
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


def scope_flag(scope: str) -> str:
    """The `git config` option for a scope, refusing anything else before git sees it."""
    if scope not in SCOPES:
        raise HelperError(f"unknown git config scope {scope!r}: use one of {', '.join(SCOPES)}")
    return f"--{scope}"


def read_all(key_regex: str, *flags: str) -> list[tuple[str, str | None]]:
    """`git config --get-regexp` as (key, value) pairs in config order; None for a bare key."""
    out = git.run("config", *flags, "--null", "--get-regexp", key_regex, ok=(0, 1))  # 1: none
    pairs: list[tuple[str, str | None]] = []
    for record in filter(None, out.split("\0")):
        key, newline, value = record.partition("\n")
        pairs.append((key, value if newline else None))
    return pairs


def change(*args: str) -> None:
    """Run one `git config` that writes (`--add`, `--unset-all`); git's message on failure."""
    git.run("config", *args)


def _port(url: SplitResult) -> int | None:
    """A URL's port with the scheme's default filled in, as git normalizes it."""
    return url.port or _DEFAULT_PORTS.get(url.scheme.lower())


def ere_escape(text: str) -> str:
    """Escape text for the POSIX extended regexps that `git config` takes for keys and values
    (`--fixed-value` would do for values, but needs git 2.30)."""
    return "".join("\\" + ch if ch in ".[]()*+?{}|^$\\" else ch for ch in text)
