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
from git_credential_pat.core.remote import Org
from git_credential_pat.edges import git, gitconfig, trace


def forget(description: list[tuple[str, str]]) -> None:
    """Erase what matches a credential description (`protocol`, `host`, and optionally `path`,
    `username`, `password`) from the caches git asks for it. Without a path git's cache
    erases the host's credentials for every path.

    git itself runs the caches, alone (`credential.helper` reset, then each cache), so a
    socket under `~`, a path to the program or a shell line behave as they do for git.
    """
    fields = dict(description)
    url = f"{fields['protocol']}://{fields['host']}/{fields.get('path', '')}"
    try:
        caches = [h for h in gitconfig.applicable_helpers(url) if gitconfig.is_cache(h)]
        if caches:
            only = [arg for helper in caches for arg in ("-c", f"credential.helper={helper}")]
            git.run("-c", "credential.helper=", *only, "credential", "reject",
                    stdin=protocol.format(description).decode("utf-8", "surrogateescape"))
    except HelperError as error:
        trace.log(f"could not erase from git's credential-cache: {error}")


def forget_org(org: Org) -> None:
    """Erase every credential cached for an organization, under both of its host names."""
    for host in (ORG_HOST, f"{org.name}.visualstudio.com"):
        forget([("protocol", "https"), ("host", host)])
