"""Which organization a command is about.

People name an organization the way they see it: a clone URL, `https://dev.azure.com/ORG`,
`https://ORG.visualstudio.com` or the bare name. With none named, the current repository's
remotes decide, then the organizations already in the store, so `git credential-pat rotate`
inside a clone, or on a machine that uses one organization, needs no argument.
"""

from __future__ import annotations

from git_credential_pat.actions.context import OrgContext, Runtime
from git_credential_pat.core.constants import ORG_HOST
from git_credential_pat.core.errors import HelperError, UsageError
from git_credential_pat.core.remote import (
    ORG_URL_FORMS,
    Org,
    org_of_url,
    parse_org,
    valid_org_name,
)
from git_credential_pat.edges import git

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.edges.store import SecretStore


def remote_urls(cwd: str | None = None) -> list[tuple[str, str]]:
    """A repository's `remote.NAME.url` and `remote.NAME.pushurl` values, in config order,
    as (key, URL); nothing outside a repository."""
    output = git.run("config", "--local", "--null", "--get-regexp", r"^remote\..*\.(push)?url$",
                     cwd=cwd, ok=(0, 1, 128))
    pairs = []
    for record in filter(None, output.split("\0")):
        key, _, value = record.partition("\n")
        pairs.append((key, value))
    return pairs


def stored_orgs(store: SecretStore) -> list[Org]:
    """The organizations the store holds an item for, by their keys."""
    prefix = f"https://{ORG_HOST}/"
    keys = store.keys()  # a store is no mapping: `keys` is its listing call
    names = [key[len(prefix):] for key in keys if key.startswith(prefix)]
    return [Org(name) for name in names if valid_org_name(name)]


def repo_orgs(cwd: str | None = None) -> list[Org]:
    """The organizations the remotes of the repository at `cwd` point to, in config order."""
    found: list[Org] = []
    for _, url in remote_urls(cwd):
        try:
            org = org_of_url(url)
        except (HelperError, ValueError):
            continue
        if org and org not in found:
            found.append(org)
    return found


def default_org(store: SecretStore) -> Org:
    """The organization meant when none is named: the current repository's, else the only one
    in the store."""
    found = repo_orgs() or stored_orgs(store)
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"name the organization ({ORG_URL_FORMS})")
    raise UsageError(f"name the organization: one of {', '.join(o.url for o in found)}")


def main_store(runtime: Runtime) -> SecretStore:
    """The store that holds the organizations, as settings for Azure DevOps choose it."""
    return runtime.store(runtime.settings(f"https://{ORG_HOST}"))


def resolve(runtime: Runtime, org_arg: str | None, **overrides: object) -> OrgContext:
    """The context of a command: the named (or default) organization and its settings, with
    the command line's options over git config and the environment."""
    org = parse_org(org_arg) if org_arg else default_org(main_store(runtime))
    return runtime.org(org, **overrides)
