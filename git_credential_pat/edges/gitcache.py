"""Keeping git's credential-cache truthful: it must never answer with what the helper would not.

`configure` puts the cache in front of the helper, and git hands the cache every credential the
helper answered with, so a PAT can outlive its place in the store there: after a rotation, a
revocation or a logout, and whenever `get` would now do something first (rotate, finish a
sweep). Access tokens and pipeline tokens are never to be kept at all. Each such case erases
the credential from every credential-cache git would ask for the URL, the way git itself
erases a credential a server refused. Best effort: a cache that cannot be reached holds nothing.
"""

from __future__ import annotations

from git_credential_pat.core import protocol
from git_credential_pat.core.constants import ORG_HOST
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import secret
from git_credential_pat.core.remote import Org
from git_credential_pat.edges import git, gitconfig, trace

MAX_ERASES = 200  # cached repositories of one host; each erase is one short git run
NOBODY_TO_ASK = "credential.helper=!echo quit=1;:"  # ends a fill the caches cannot answer


def forget(description: list[tuple[str, str]]) -> None:
    """Erase what matches a credential description (`protocol`, `host`, and optionally `path`,
    `username`, `password`) from the caches git asks for it, however many paths they hold.

    git itself runs the caches, alone (`credential.helper` reset, then each cache), so a
    socket under `~`, a path to the program or a shell line behave as they do for git. git's
    cache erases only the first credential that matches (git 2.39), and with `useHttpPath` it
    holds one per repository, so the erase is repeated until the caches no longer answer with
    what is to go, within MAX_ERASES.
    """
    fields = dict(description)
    url = f"{fields['protocol']}://{fields['host']}/{fields.get('path', '')}"
    try:
        caches = [h for h in gitconfig.applicable_helpers(url) if gitconfig.is_cache(h)]
        if not caches:
            return
        only = ["-c", "credential.helper=",
                *(arg for helper in caches for arg in ("-c", f"credential.helper={helper}"))]
        erase = protocol.format(description).decode("utf-8", "surrogateescape")
        for _ in range(MAX_ERASES):
            git.run(*only, "credential", "reject", stdin=erase)
            if not _still_answers(only, description):
                return
        trace.log(f"git's credential-cache still answers after {MAX_ERASES} erases")
    except HelperError as error:
        trace.log(f"could not erase from git's credential-cache: {error}")


def _still_answers(only: list[str], description: list[tuple[str, str]]) -> bool:
    """Whether the caches still answer for the description (with its password, if it names
    one). git asks them alone, and a last helper that says `quit` keeps git from prompting."""
    password = dict(description).get("password")
    query = protocol.format([(k, v) for k, v in description if k != "password"])
    answer = git.run(*only, "-c", NOBODY_TO_ASK, "credential", "fill",
                     stdin=query.decode("utf-8", "surrogateescape"), ok=(0, 128))
    given = [line[len("password="):] for line in answer.splitlines()
             if line.startswith("password=")]
    for value in given:
        secret(value)
    return bool(given) and (password is None or password in given)


def forget_org(org: Org) -> None:
    """Erase every credential cached for an organization, under both of its host names."""
    for host in (ORG_HOST, f"{org.name}.visualstudio.com"):
        forget([("protocol", "https"), ("host", host)])
