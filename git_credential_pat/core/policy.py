"""The helper's decisions for Azure DevOps, as plain functions of the stored item and the clock.

Which stored PAT serves an account, whether it is due for rotation, whether revoking old PATs
is owed, when a refusal from the PAT API means "answer with the access token instead", how
a lifespan refused by policy is shortened, and whether a machine identity answers instead.
Everything with a side effect is the actions' job.
"""

from __future__ import annotations

from git_credential_pat.core import entries
from git_credential_pat.core.constants import DAY
from git_credential_pat.core.remote import Org, azure_org

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from git_credential_pat.core.entries import Entry, Item
    from git_credential_pat.core.settings import Settings

Answer = list[tuple[str, str]]
SWEEP_RETRY = 3600  # seconds before a failed sweep is tried again
PUSH_SCOPES = frozenset({"vso.code_write", "vso.code_manage", "vso.code_full", "app_token"})
# Organization answers that mean "no PATs for you here", where an access token still works.
FALLBACK_CODES = frozenset({"disablePatCreationPolicyViolation", "globalPATCreationBlocked",
                            "accessDenied"})


def pick(item: Item, account: str, now: float) -> Entry | None:
    """The usable credential for an account, or for the organization's usual account."""
    wanted = account or entries.org_of(item).get("account", "")
    for entry in item["credentials"]:
        if entries.expired(entry, now):
            continue
        if not wanted or entry.get("username", "").lower() == wanted.lower():
            return entry
    return None


def rotation_due(entry: Entry, settings: Settings, now: float) -> bool:
    """A minted PAT is replaced once less than the rotation window remains.

    The window never exceeds half the PAT's own lifespan, so an organization that caps lifespans
    below the window does not cause a new PAT on every fetch.
    """
    if not entries.minted(entry) or "password_expiry_utc" not in entry:
        return False
    expiry = entry["password_expiry_utc"]
    lifespan = expiry - entries.pat_of(entry).get("valid_from", now)
    window = min(settings.rotate_days * DAY, lifespan / 2)
    return expiry - now < window


def servable(item: Item, account: str, settings: Settings, now: float) -> Entry | None:
    """The stored PAT `get` answers with as it is; None when it must mint or rotate first."""
    entry = pick(item, account, now)
    if entry is None or settings.mode == "oauth" or rotation_due(entry, settings, now):
        return None
    return entry


def sweep_owed(item: Item, now: float) -> bool:
    """Revoking replaced or orphaned PATs is owed (a mint's process was killed, or revoking
    failed) and its time has come."""
    return entries.org_of(item).get("sweep_due", now + 1) <= now


def sweepable(listed: Mapping[str, float], stored: set[str], keep: str) -> set[str]:
    """Which of this installation's PATs (id: when it was made, as the organization lists
    them) a sweep may revoke: only those provably replaced or orphaned, made before the PAT
    kept and held by no stored entry. A newer one may be another process's, minted a moment
    ago and on its way to git; that process stores it, or finds the kept one stored first and
    revokes its own. Without the kept PAT in the list nothing is provable."""
    if keep not in listed:
        return set()
    return {pat for pat, made in listed.items() if made < listed[keep] and pat not in stored}


def reads_only(entry: Entry) -> bool:
    """A minted PAT whose scope lets git fetch but not push: refused on a push, it still
    works, and revoking it would only mint its twin on the next fetch."""
    scope = set(entries.pat_of(entry).get("scope", "").split())
    return entries.minted(entry) and "vso.code" in scope and not scope & PUSH_SCOPES


def falls_back(mode: str, code: str, status: int) -> bool:
    """Whether a refusal to mint means git should get the Entra access token instead: a
    policy (`patTokenError`) or a 403, which refuse PATs to a token they accepted. A 401
    refuses the token itself, and git must never be handed that."""
    return mode == "auto" and (code in FALLBACK_CODES or (status == 403 and not code))


def shorter_lifespan(days: int) -> int:
    """The next lifespan to try after an organization's policy refused `days`; 0 when even a
    day was refused."""
    return max(1, days // 2) if days > 1 else 0


def days_left(entry: Entry, now: float) -> int:
    return max(0, int((entry["password_expiry_utc"] - now) // DAY))


def lifespan_days(entry: Entry) -> int:
    """The lifespan a minted PAT was given, in days as they were asked for."""
    return round((entry["password_expiry_utc"] - entries.pat_of(entry)["valid_from"]) / DAY)


def answer_pat(entry: Entry) -> Answer:
    pairs = [("username", entry.get("username") or "pat"), ("password", entry["password"])]
    if "password_expiry_utc" in entry:
        pairs.append(("password_expiry_utc", str(entry["password_expiry_utc"])))
    return pairs


def provided_token(org: Org, environ: Mapping[str, str]) -> Answer:
    """Tokens a CI system hands over, used as given and never stored or minted over."""
    pipeline_org = environ.get("SYSTEM_COLLECTIONURI", "")
    token = environ.get("SYSTEM_ACCESSTOKEN", "")
    if token and pipeline_org:
        from urllib.parse import urlsplit

        parts = urlsplit(pipeline_org)
        owner = azure_org(parts.scheme, parts.netloc, parts.path.strip("/"), None)
        if owner == org:
            return [("username", "build"), ("password", token)]
    if environ.get("AZURE_DEVOPS_EXT_PAT"):
        return [("username", "pat"), ("password", environ["AZURE_DEVOPS_EXT_PAT"])]
    return []


def machine_identity(settings: Settings) -> bool:
    """Whether a machine identity (`patIdentity`: a service principal, managed identity or
    federated workload) answers instead of a person's PATs. It cannot have a PAT, so for it
    nothing is minted, stored or revoked, and the store is not even opened."""
    return settings.identity != "user"


def looks_like_access_token(password: str) -> bool:
    """Entra access tokens are JWTs; PATs never are. Git hands our fallback token back to
    `store`, and it must not be kept."""
    return password.startswith("eyJ") and password.count(".") == 2


def display_name(org: Org, host: str, home: str, store: str) -> str:
    """Tells the user, in Azure DevOps' token list, which tool and machine made a PAT; the
    hash tells installations on one machine apart, so each sweeps only its own."""
    import hashlib

    install = hashlib.sha256(f"{host}\0{home}\0{store}".encode()).hexdigest()[:6]
    return f"git-credential-pat: {org.name} on {host} ({install})"
