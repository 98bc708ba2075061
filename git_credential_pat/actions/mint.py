"""Minting and rotating PATs: the miss path, where msal and requests are imported.

Many git processes can miss at once (parallel fetches, submodules, an IDE's background fetch), so
the whole decision runs under a per-organization lock and starts by reading the store again:
the first process mints, the others find its PAT. A PAT that was minted is stored before
anything else happens; if it cannot be stored it is revoked, so no PAT is left orphaned.
"""

from __future__ import annotations

from git_credential_pat.actions import access, revoke
from git_credential_pat.actions.context import OrgContext
from git_credential_pat.core import entries, policy
from git_credential_pat.core.constants import DAY
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import secret
from git_credential_pat.edges import trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.core.entries import Entry, Item
    from git_credential_pat.core.policy import Answer
    from git_credential_pat.edges.signin import AccessToken

def obtain(context: OrgContext, account: str) -> Answer:
    """Answer git for an organization with no usable PAT, or one due for rotation."""
    with context.mint_lock():
        item = context.item()
        now = context.now()
        ready = policy.servable(item, account, context.settings, now)
        if ready:
            return policy.answer_pat(ready)
        current = policy.pick(item, account, now)
        try:
            return _mint_or_fallback(context, item, account, current)
        except HelperError as error:
            if current and context.settings.mode != "oauth":
                context.say(f"the PAT for {context.org.name} expires in "
                            f"{policy.days_left(current, now)} days and was not replaced "
                            f"({error}); run: git credential-pat rotate {context.org.url}")
                return policy.answer_pat(current)
            raise


def renew(context: OrgContext, account: str) -> Answer:
    """Mint a replacement now, whatever the current PAT's state: `login` and `rotate` ask for
    it ahead of time, so unlike `obtain` nothing here falls back to the PAT in hand."""
    with context.mint_lock():
        item = context.item()
        current = policy.pick(item, account, context.now())
        return _mint_or_fallback(context, item, account, current)


def _mint_or_fallback(context: OrgContext, item: Item, account: str,
                      current: Entry | None) -> Answer:
    from git_credential_pat.edges.patapi import PatApiError

    settings = context.settings
    known = entries.org_of(item)

    def attempt(signed: access.Signed) -> Entry | PatApiError | None:
        """The PAT minted and stored; or the policy's refusal, after which the token (which
        the service accepted) answers git instead; None when `patMode oauth` wants it."""
        known.update(tenant=signed.tenant, account=signed.token.account)
        if settings.mode == "oauth":
            return None
        try:
            return mint(context, item, signed.token)
        except PatApiError as error:
            if policy.falls_back(settings.mode, error.code, error.status):
                return error
            raise

    outcome, signed = access.with_token(context, item, account or known.get("account", ""),
                                        attempt)
    token = signed.token
    if outcome is None:
        return answer_token(token)
    if isinstance(outcome, PatApiError):
        if known.get("fallback") != outcome.code:
            context.say(f"{outcome}; using your Entra sign-in for git instead of a PAT")
            known["fallback"] = outcome.code
            context.update_item(lambda fresh: entries.org_of(fresh).update(known))
        return answer_token(token)
    replaced = [current] if current and entries.minted(current) else []
    revoke.sweep(context, token, outcome, replaced)
    return policy.answer_pat(outcome)


def answer_token(token: AccessToken) -> Answer:
    secret(token.token)
    return [("username", token.account or "oauth"), ("password", token.token),
            ("password_expiry_utc", str(int(token.expires_on)))]


def mint(context: OrgContext, item: Item, token: AccessToken) -> Entry:
    """Create a PAT and store it; revoke it again if it cannot be stored."""
    from git_credential_pat.edges.patapi import PatApiError

    client = context.pats(token)
    days = context.settings.lifespan_days
    while True:
        valid_to = int(context.now()) + days * DAY
        try:
            pat = client.create(context.display_name(), context.settings.scope, valid_to)
            break
        except PatApiError as error:
            shorter = policy.shorter_lifespan(days)
            if error.code != "patLifespanPolicyViolation" or not shorter:
                raise
            days = shorter
            trace.log(f"lifespan refused; trying {days} days")
    secret(pat.token)
    entry: Entry = {
        "username": token.account or "pat",
        "password": pat.token,
        "password_expiry_utc": pat.valid_to,
        "pat": {"minted": True, "id": pat.authorization_id, "scope": pat.scope,
                "name": pat.display_name, "valid_from": pat.valid_from},
    }
    known = entries.org_of(item)
    before = policy.pick(item, entry["username"], context.now())
    theirs: list[Entry] = []

    def store_entry(fresh: Item) -> bool:
        stored = policy.servable(fresh, entry["username"], context.settings, context.now())
        if stored and stored["password"] != (before or {}).get("password"):
            # Another process stored a PAT while this one minted (one whose lock is another
            # file: an older version, say). It may have handed it to git already, so it stays,
            # and the PAT just minted, which nobody has seen, goes.
            theirs.append(stored)
            return False
        org = entries.org_of(fresh)
        org.update(known)
        org.pop("fallback", None)
        # Owed until `sweep` has revoked what this PAT replaces: a process killed before then
        # leaves the old PAT live, and the next `get` finishes the job (`finish_sweep`).
        org["sweep_due"] = int(context.now())
        fresh["credentials"] = [e for e in fresh["credentials"]
                                if e.get("username", "").lower() != entry["username"].lower()]
        fresh["credentials"].append(entry)
        return True

    try:
        context.update_item(store_entry)
    except BaseException:
        revoke.revoke_one(client, pat.authorization_id)
        raise
    if theirs:
        trace.log("another process stored a PAT meanwhile: using it, revoking the one minted")
        revoke.revoke_one(client, pat.authorization_id)
        return theirs[0]
    return entry
