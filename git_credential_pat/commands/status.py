"""`status`: what the helper holds for each organization, from the store and git config alone.

It never touches the network, so it answers at once, offline, and can never prompt; `list`
asks Azure DevOps, and `doctor` checks the network path.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from git_credential_pat.actions.context import Runtime
from git_credential_pat.commands.output import Terminal, days_left, expiry_note, iso, show
from git_credential_pat.commands.targets import main_store, stored_orgs
from git_credential_pat.core import entries
from git_credential_pat.core.constants import NAME, ORG_HOST
from git_credential_pat.core.remote import Org
from git_credential_pat.edges import gitconfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.core.entries import Entry, Item
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

    def as_json(self, now: float) -> dict[str, object]:
        return {
            "organization": self.org.name, "url": self.org.url, "account": self.account,
            "scope": self.scope, "minted_here": self.minted,
            "expires": iso(self.expiry) if self.expiry is not None else None,
            "days_left": days_left(self.expiry, now) if self.expiry is not None else None,
            "level": self.level, "note": self.note, "helpers": self.helpers,
            "git_uses_helper": git_uses_helper(self.helpers),
        }


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


def collect(store: SecretStore, now: float) -> list[OrgStatus]:
    """Every organization in the store, one row per credential it holds."""
    rows: list[OrgStatus] = []
    for org in stored_orgs(store):
        item = entries.load(store.read(org.url))
        helpers = gitconfig.applicable_helpers(f"{org.url}/")
        rows += [_row(org, entry, now, helpers) for entry in item["credentials"]]
        if not item["credentials"]:
            rows.append(_empty_row(org, item, helpers))
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
    return OrgStatus(org, show(known.get("account", "")), None, False, None, note, "ok", helpers)


def run(args: argparse.Namespace, term: Terminal) -> int:
    runtime = Runtime(say=term.say)
    store = main_store(runtime)
    now = runtime.clock()
    rows = collect(store, now)
    if args.json:
        term.json({"store": store.description, "organizations": [r.as_json(now) for r in rows]})
        return 0
    if not rows:
        term.line("No Azure DevOps organization is stored yet. A clone signs in, or run: "
                  f"git credential-pat login https://{ORG_HOST}/ORG")
        return 0
    term.table(
        ("ORGANIZATION", "ACCOUNT", "SCOPE", "PAT", "GIT USES HELPER"),
        [(r.org.name, r.account or "-", r.scope or "-", r.note, git_note(r.helpers)) for r in rows],
        [("", "", "", r.level, "" if git_uses_helper(r.helpers) else "warn") for r in rows])
    term.line(f"\nStored in: {store.description}")
    if any(not git_uses_helper(r.helpers) for r in rows):
        term.line("git does not ask git-credential-pat first for some of these; "
                  "run: git credential-pat configure")
    return 0

