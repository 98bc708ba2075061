"""Revoking PATs this installation minted: the one just replaced, ones a killed process or a
lost keyring left behind (found by their display name, unique to this installation), and one
git saw refused. Best effort where git already has its answer; what failed is tried later."""

from __future__ import annotations

from git_credential_pat.actions.context import OrgContext
from git_credential_pat.core import entries, policy
from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import gitcache, trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.core.entries import Entry, Item
    from git_credential_pat.edges.patapi import PatClient
    from git_credential_pat.edges.signin import AccessToken


def revoke_one(client: PatClient, authorization_id: str) -> str:
    """Revoke a PAT; "" when it is gone (revoked now, or already), else why it is not."""
    try:
        client.revoke(authorization_id)
    except HelperError as error:
        if getattr(error, "code", "") == "authorizationNotFound":
            return ""
        trace.log(f"could not revoke {authorization_id}: {error}")
        return str(error)
    return ""


def ours(client: PatClient, context: OrgContext) -> set[str]:
    """Active PATs this installation minted in the organization, found by their display name,
    so that ones a lost keyring forgot are found too."""
    return set(_ours_made(client, context))


def sweepable(client: PatClient, context: OrgContext, keep: str,
              stored: set[str] | None = None) -> set[str]:
    """This installation's PATs that were replaced or orphaned before `keep`, and are stored
    nowhere now (`policy.sweepable`); `stored`, the ids stored, when the caller has read them."""
    if stored is None:
        stored = entries.stored_ids(context.item())
    return policy.sweepable(_ours_made(client, context), stored, keep)


def _ours_made(client: PatClient, context: OrgContext) -> dict[str, float]:
    """`ours`, each with when it was made."""
    name = context.display_name()
    return {p.authorization_id: p.created for p in client.list() if p.display_name == name}


def sweep(context: OrgContext, token: AccessToken, keep: Entry, replaced: list[Entry]) -> None:
    """Revoke what this installation minted before `keep`. Best effort: git already has its
    answer; what could not be revoked is tried again by a `get` an hour later
    (`finish_sweep`)."""
    client = context.pats(token)
    doomed = {entries.pat_id(e) for e in replaced}
    kept = entries.pat_id(keep)
    stored = entries.stored_ids(context.item())
    done = True
    try:
        doomed |= sweepable(client, context, kept, stored)
    except HelperError as error:
        trace.log(f"could not list PATs: {error}")
        done = False
    doomed -= stored | {kept, ""}
    for authorization_id in sorted(doomed):
        done = not revoke_one(client, authorization_id) and done
    if doomed:  # git's cache may still hand them out, for this or another path of the org
        gitcache.forget_org(context.org)
    later = int(context.now()) + policy.SWEEP_RETRY

    def record(fresh: Item) -> None:
        org = entries.org_of(fresh)
        if done:
            org.pop("sweep_due", None)
        else:
            org["sweep_due"] = later

    try:
        context.update_item(record)
    except HelperError as error:
        trace.log(f"could not record the sweep: {error}")


def _owe_sweep(context: OrgContext, when: int) -> None:
    context.update_item(lambda fresh: entries.org_of(fresh).update(sweep_due=when))


def finish_sweep(context: OrgContext, entry: Entry, item: Item) -> None:
    """On a `get` that found a sweep owed (a mint's process was killed, or revoking failed):
    sweep now if that costs git nothing it would notice: no other process minting or signing
    in (neither lock is waited for), sign-in needing no person, and every request bounded
    (`OrgContext.briefly`); otherwise an hour later. Never raises: git gets the stored PAT
    whatever happens here."""
    quick = context.briefly()
    try:
        with quick.mint_lock(timeout=0):
            if "sweep_due" not in entries.org_of(quick.item()):
                return  # another process has just done it
            try:
                token = quick.token(quick.tenant(item), entry.get("username", ""),
                                    interactive=False, wait=0)
            except HelperError:
                _owe_sweep(quick, int(quick.now()) + policy.SWEEP_RETRY)
                raise
            sweep(quick, token, entry, [])
    except HelperError as error:
        trace.log(f"not revoking old PATs now: {error}")


def still_works(context: OrgContext, entry: Entry) -> bool:
    """Whether a PAT git saw refused still works for what its scope allows (a push refused
    to a PAT that may only read); bounded like other work git waits on, and on any doubt
    it does not."""
    from git_credential_pat.edges.patapi import pat_works

    quick = context.briefly()
    try:
        return pat_works(quick.org.url, entry["password"], quick.http, quick.settings.timeout)
    except HelperError as error:
        trace.log(f"could not check the refused PAT: {error}")
        return False


def revoke_quietly(context: OrgContext, gone: list[Entry], item: Item) -> None:
    """After git saw a PAT refused: revoke it server-side if that costs git nothing it would
    notice (as for `finish_sweep`). Otherwise the next `get` owes a sweep, which revokes it
    as an orphan."""
    quick = context.briefly()
    try:
        tenant = quick.tenant(item)
        token = quick.token(tenant, entries.org_of(item).get("account", ""),
                            interactive=False, wait=0)
        client = quick.pats(token)
        left = [e for e in gone if revoke_one(client, entries.pat_id(e))]
    except HelperError as error:
        trace.log(f"not revoking after erase: {error}")
        left = gone
    if left:
        try:
            _owe_sweep(quick, int(quick.now()))
        except HelperError as error:
            trace.log(f"could not record the revocation owed: {error}")
