"""Which organization a command is about, and what acting on it takes.

People name an organization the way they see it: a clone URL, `https://dev.azure.com/ORG`,
`https://ORG.visualstudio.com` or the bare name. With none named, the current repository's
remotes decide, then the organizations already in the store, so `git credential-pat rotate`
inside a clone, or on a machine that uses one organization, needs no argument.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from git_credential_pat import entries, trace
from git_credential_pat.errors import HelperError
from git_credential_pat.helper import World, org_key
from git_credential_pat.output import show
from git_credential_pat.remote import ORG_HOST, Org, azure_org, valid_org_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.entries import Item
    from git_credential_pat.settings import Settings
    from git_credential_pat.store import SecretStore

GIT_TIMEOUT = 30
ORG_URL_FORMS = "https://dev.azure.com/ORG or https://ORG.visualstudio.com"


class UsageError(HelperError):
    """The command line asks for something impossible; exits with status 2."""


@dataclass
class Target:
    """One organization, with the settings, store and side effects that apply to it."""

    org: Org
    settings: Settings
    store: SecretStore
    world: World

    @property
    def account(self) -> str:
        return self.settings.account

    def item(self) -> Item:
        return entries.load(self.store.read(org_key(self.org)))


def git(*args: str, cwd: str | None = None, ok_codes: tuple[int, ...] = (0,),
        stdin: str = "") -> str:
    """Run git and return its stdout; git's own message becomes the error."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True,
                              text=True, errors="surrogateescape", timeout=GIT_TIMEOUT,
                              check=False)
    except FileNotFoundError:
        raise HelperError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise HelperError(f"`git {args[0]}` did not finish within {GIT_TIMEOUT} s") from None
    if done.returncode not in ok_codes:
        raise HelperError(show(done.stderr.strip() or f"`git {args[0]}` failed"))
    return done.stdout


def remote_urls(cwd: str | None = None) -> list[tuple[str, str]]:
    """A repository's `remote.NAME.url` and `remote.NAME.pushurl` values, in config order,
    as (key, URL); nothing outside a repository."""
    output = git("config", "--local", "--null", "--get-regexp", r"^remote\..*\.(push)?url$",
                 cwd=cwd, ok_codes=(0, 1, 128))
    pairs = []
    for record in filter(None, output.split("\0")):
        key, _, value = record.partition("\n")
        pairs.append((key, value))
    return pairs


def org_of_url(url: str) -> Org | None:
    """The organization of an HTTPS URL, or None when it is not Azure DevOps."""
    parts = urlsplit(url.strip())
    trace.secret(parts.password)
    host = parts.netloc.rpartition("@")[2]
    if not host:
        return None
    username = unquote(parts.username) if parts.username is not None else None
    return azure_org(parts.scheme.lower(), host, unquote(parts.path).lstrip("/"), username)


def parse_org(text: str) -> Org:
    """The organization a command-line argument names."""
    if "://" not in text and valid_org_name(text.strip().lower()):
        return Org(text.strip().lower())
    try:
        org = org_of_url(text)
    except (HelperError, ValueError):  # dev.azure.com with no organization; a bad port
        org = None
    if org is None:
        raise UsageError(f"{show(text)!r} is not an Azure DevOps organization; "
                         f"give {ORG_URL_FORMS}")
    return org


def stored_orgs(store: SecretStore) -> list[Org]:
    """The organizations the store holds an item for, by their keys."""
    prefix = f"https://{ORG_HOST}/"
    keys = store.keys()
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


def resolve(world: World, org_arg: str | None, **overrides: object) -> Target:
    """The target of a command: the named (or default) organization and its settings, with
    the command line's options over git config and the environment."""
    store = world.store(world.settings(f"https://{ORG_HOST}"))
    org = parse_org(org_arg) if org_arg else default_org(store)
    return target_of(world, org, **overrides)


def target_of(world: World, org: Org, **overrides: object) -> Target:
    settings = world.settings(org.url).replace(**overrides)
    return Target(org, settings, world.store(settings), world)
