"""`status`: what the helper holds for each organization, from the store and git config alone.

It never touches the network, so it answers at once, offline, and can never prompt; `list`
asks Azure DevOps, and `doctor` checks the network path.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from git_credential_pat import __version__
from git_credential_pat.actions.context import Runtime
from git_credential_pat.commands.configure import plaintext_warnings
from git_credential_pat.commands.output import Terminal, days_left, expiry_note, iso, show
from git_credential_pat.commands.targets import main_store, repo_orgs, stored_orgs
from git_credential_pat.core import entries, policy
from git_credential_pat.core.constants import NAME, ORG_HOST
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.remote import Org
from git_credential_pat.edges import gitconfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.core.entries import Entry, Item
    from git_credential_pat.core.settings import Settings
    from git_credential_pat.edges.store import SecretStore


@dataclass
class OrgStatus:
    """One credential the store keeps for an organization (or the lack of one)."""

    org: Org
    account: str
    scope: str | None  # None when this tool did not mint it and cannot know
    minted: bool
    expiry: int | None
    note: str
    level: str  # ok | warn | fail
    helpers: list[str]
    pat: bool = True  # False for an organization known from a sign-in that holds no PAT now
    in_use: bool = False  # the credential `get` answers with for the organization
    here: bool = False  # the current repository's remotes point to the organization

    @property
    def used(self) -> str:
        """How `get` uses this credential, as the USED column says it."""
        if not self.pat:
            return "-"
        if not self.in_use:
            return "never"
        return "this repo" if self.here else "yes"

    def as_json(self, now: float) -> dict[str, object]:
        return {
            "organization": self.org.name, "url": self.org.url, "account": self.account,
            "scope": self.scope, "minted_here": self.minted,
            "expires": iso(self.expiry) if self.expiry is not None else None,
            "days_left": days_left(self.expiry, now) if self.expiry is not None else None,
            "level": self.level, "note": self.note, "helpers": self.helpers,
            "git_uses_helper": git_uses_helper(self.helpers), "pat_stored": self.pat,
            "in_use": self.in_use, "current_repository": self.here,
        }


@dataclass
class IdentityStatus:
    """A machine identity that answers for Azure DevOps instead of PATs: for every
    organization (`org` None), or for one whose own settings name another."""

    url: str
    org: Org | None
    settings: Settings
    description: str

    @property
    def name(self) -> str:
        return self.org.name if self.org else "all organizations"

    def as_json(self) -> dict[str, object]:
        return {"url": self.url, "organization": self.org.name if self.org else None,
                "identity": self.settings.identity, "description": self.description}


def machine_identities(runtime: Runtime, orgs: list[Org]) -> list[IdentityStatus]:
    """Where `get` answers with a machine identity's access token, read offline from settings
    and environment: for all organizations, and for each of `orgs` that differs."""
    base_url = f"https://{ORG_HOST}"
    found: list[IdentityStatus] = []
    for url, org in [(base_url, None), *((o.url, o) for o in orgs)]:
        settings = runtime.settings(url)
        if not policy.machine_identity(settings):
            continue
        from git_credential_pat.edges import identity  # requests, only when it is used

        row = IdentityStatus(url, org, settings, identity.describe(settings, runtime.environ))
        same_as_all = found and found[0].org is None and row.description == found[0].description
        if not same_as_all:
            found.append(row)
    return found


def is_ours(helper: str) -> bool:
    """Whether a `credential.helper` value runs this helper (`pat`, or a path to it)."""
    return gitconfig.helper_program(helper) == NAME


def answering(helpers: list[str]) -> str:
    """The helper whose answer git takes: git asks in order and takes the first answer, and a
    credential-cache only repeats what a helper after it answered."""
    return next((h for h in helpers if not gitconfig.is_cache(h)), "")


def git_uses_helper(helpers: list[str]) -> bool:
    return is_ours(answering(helpers))


def git_note(helpers: list[str]) -> str:
    if git_uses_helper(helpers):
        return "yes"
    if any(is_ours(h) for h in helpers):
        return f"after {show(answering(helpers))}"
    return "no"


def collect(runtime: Runtime, store: SecretStore, now: float) -> list[OrgStatus]:
    """Every organization in the store, one row per credential it holds, marking the one
    `get` answers with (`policy.pick`, for the account the settings name) and the
    organizations of the current repository. `status`, `doctor` and `list` count from here."""
    rows: list[OrgStatus] = []
    here = repo_orgs()
    for org in stored_orgs(store):
        item = entries.load(store.read(org.url))
        helpers = gitconfig.applicable_helpers(f"{org.url}/")
        chosen = policy.pick(item, runtime.settings(org.url).account, now)
        for entry in item["credentials"]:
            row = _row(org, entry, now, helpers)
            row.in_use, row.here = entry is chosen, org in here
            if chosen is not None and not row.in_use:
                row.note = f"{row.note}; git gets another PAT"
            rows.append(row)
        if not item["credentials"]:
            rows.append(_empty_row(org, item, helpers))
            rows[-1].here = org in here
    return rows


def _row(org: Org, entry: Entry, now: float, helpers: list[str]) -> OrgStatus:
    expiry = entry.get("password_expiry_utc")
    note, level = expiry_note(expiry, now)
    if not entries.minted(entry):
        note = f"not minted here; {note}"
    return OrgStatus(org, show(entry.get("username", "")), entries.pat_of(entry).get("scope"),
                     entries.minted(entry), expiry, note, level, helpers)


def _empty_row(org: Org, item: Item, helpers: list[str]) -> OrgStatus:
    """An organization known from an earlier sign-in but holding no PAT right now."""
    known = entries.org_of(item)
    if known.get("fallback"):
        note = f"no PAT: the organization refuses them ({show(known['fallback'])}); " \
               "git gets your Entra sign-in"
    else:
        note = "no PAT stored; the next git command mints one"
    return OrgStatus(org, show(known.get("account", "")), None, False, None, note, "ok", helpers,
                     pat=False)


def run(args: argparse.Namespace, term: Terminal) -> int:
    runtime = Runtime(say=term.say)
    store = main_store(runtime)
    now = runtime.clock()
    machines = machine_identities(runtime, repo_orgs())
    try:
        rows = collect(runtime, store, now)
    except HelperError as error:
        if not machines:
            raise
        rows, unusable = [], f"not usable ({error}); machine identities do not need it"
    else:
        unusable = ""
    warnings = plaintext_warnings()
    if args.json:
        term.json({"store": store.description, "store_error": unusable or None,
                   "warnings": warnings,
                   "version": __version__,
                   "current_repository": [o.name for o in repo_orgs()],
                   "organizations": [r.as_json(now) for r in rows],
                   "identities": [m.as_json() for m in machines]})
        return 0
    _print_identities(machines, term)
    if machines and rows:
        term.line("")
    if not rows and not machines:
        term.line("No Azure DevOps organization is stored yet. A clone signs in, or run: "
                  f"git credential-pat login https://{ORG_HOST}/ORG")
        for warning in warnings:
            term.line(warning)
        return 0
    if rows:
        term.table(
            ("ORGANIZATION", "ACCOUNT", "SCOPE", "PAT", "USED", "GIT USES HELPER"),
            [(r.org.name, r.account or "-", r.scope or "-", r.note, r.used, git_note(r.helpers))
             for r in rows],
            [("", "", "", r.level, "ok" if r.here and r.in_use else "",
              "" if git_uses_helper(r.helpers) else "warn") for r in rows])
    term.line(f"\nStored in: {unusable or store.description}")
    if any(not git_uses_helper(r.helpers) for r in rows):
        term.line("git does not ask git-credential-pat first for some of these; "
                  "run: git credential-pat configure")
    for warning in warnings:
        term.line(warning)
    return 0


def _print_identities(machines: list[IdentityStatus], term: Terminal) -> None:
    if not machines:
        return
    term.line("Machine identities (git gets an Entra access token on every request; no PAT is "
              "minted or stored):")
    for machine in machines:
        term.line(f"  {machine.name}: {show(machine.description)}")
