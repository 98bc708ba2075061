"""Minting, rotating and revoking PATs: the miss path, where msal and requests are imported.

Many git processes can miss at once (parallel fetches, submodules, an IDE's background fetch), so
the whole decision runs under a per-organization lock and starts by reading the store again:
the first process mints, the others find its PAT. A PAT that was minted is stored before
anything else happens; if it cannot be stored it is revoked, so no PAT is left orphaned.
PATs this installation minted carry a display name unique to it, which lets a later mint find
and revoke any that a killed process or a lost keyring left behind.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Callable
from typing import TYPE_CHECKING

from git_credential_pat import entries, gitcache, lock, trace
from git_credential_pat.errors import HelperError
from git_credential_pat.helper import (
    DAY,
    Answer,
    World,
    _answer_pat,
    _item,
    org_key,
    pick,
    servable,
)
from git_credential_pat.remote import Org
from git_credential_pat.settings import Settings, with_http
from git_credential_pat.store import SecretStore

if TYPE_CHECKING:
    import requests

    from git_credential_pat.entries import Entry, Item
    from git_credential_pat.protocol import Message
    from git_credential_pat.signin import AccessToken

TOKEN_CACHE_KEY = "msal-token-cache"
SIGNIN_LOCK = "sign-in"
SWEEP_DUE = "sweep_due"  # in an item's "org": when revoking replaced or orphaned PATs is owed
SWEEP_RETRY = 3600
# Organization answers that mean "no PATs for you here", where an access token still works.
FALLBACK_CODES = frozenset({"disablePatCreationPolicyViolation", "globalPATCreationBlocked",
                            "accessDenied"})


class StoredTokenCache:
    """msal's token cache kept in the secret store, never in a plaintext file of its own."""

    def __init__(self, store: SecretStore) -> None:
        self.store = store

    def load(self) -> str | None:
        return self.store.read(TOKEN_CACHE_KEY)

    def save(self, text: str) -> None:
        self.store.write(TOKEN_CACHE_KEY, text)


def display_name(org: Org, store: SecretStore) -> str:
    """Tells the user, in Azure DevOps' token list, which tool and machine made a PAT."""
    host = platform.node() or "this machine"
    home = os.path.expanduser("~")
    install = hashlib.sha256(f"{host}\0{home}\0{store.description}".encode()).hexdigest()[:6]
    return f"git-credential-pat: {org.name} on {host} ({install})"


class Session:
    """One miss-path conversation with Entra ID and one organization."""

    def __init__(self, org: Org, settings: Settings, store: SecretStore, world: World,
                 wwwauth: list[str]) -> None:
        from git_credential_pat import http

        self.org = org
        self.settings = with_http(settings, org.url)
        self.store = store
        self.world = world
        self.wwwauth = wwwauth
        self.http: requests.Session = http.new_session(self.settings)

    def tenant(self, item: Item) -> str:
        known = self.settings.tenant or item.get("org", {}).get("tenant", "")
        if known:
            return known
        from git_credential_pat import tenant

        return tenant.discover(self.org.name, self.http, self.settings.timeout, self.wwwauth,
                               authority_host=self.settings.authority_host)

    def token(self, tenant: str, account: str, interactive: bool) -> AccessToken:
        from git_credential_pat import signin

        with lock.held(SIGNIN_LOCK, timeout=self.settings.signin_timeout + 30):
            return signin.SignIn(
                self.settings, self.http, StoredTokenCache(self.store), self.world,
                self.world.environ,
            ).token(tenant, account, interactive=interactive,
                    for_what=f"Azure DevOps organization {self.org.name}",
                    login_url=self.org.url)

    def pats(self, token: AccessToken):  # noqa: ANN201 - PatClient is imported lazily
        from git_credential_pat.patapi import PatClient

        return PatClient(self.org.name, token.token, self.http, self.settings.timeout)


def update_item(store: SecretStore, org: Org, change: Callable[[Item], None]) -> None:
    """Apply a change to the organization's item as it is now, so that a credential another
    process stored meanwhile is kept."""
    with lock.held(f"item:{org_key(org)}", timeout=30):
        item = _fresh_item(store, org)
        change(item)
        store.write(org_key(org), entries.dump(item))


def _fresh_item(store: SecretStore, org: Org) -> Item:
    item = _item(store, org_key(org))
    item.setdefault("org", {})
    return item


def obtain(org: Org, account: str, request: Message, settings: Settings, store: SecretStore,
           world: World) -> Answer:
    """Answer git for an organization with no usable PAT, or one due for rotation."""
    with lock.held(f"mint:{org.name}", timeout=settings.signin_timeout + 60):
        item = _fresh_item(store, org)
        now = world.clock()
        ready = servable(item, account, settings, now)
        if ready:
            return _answer_pat(ready)
        current = pick(item, account, now)
        session = Session(org, settings, store, world, request.values("wwwauth[]"))
        try:
            return _mint_or_fallback(session, item, account, current)
        except HelperError as error:
            if current and settings.mode != "oauth":
                days = max(0, int((current["password_expiry_utc"] - now) // DAY))
                world.say(f"the PAT for {org.name} expires in {days} days and was not replaced "
                          f"({error}); run: git credential-pat rotate {org.url}")
                return _answer_pat(current)
            raise


def renew(org: Org, account: str, settings: Settings, store: SecretStore, world: World) -> Answer:
    """Mint a replacement now, whatever the current PAT's state: `login` and `rotate` ask for
    it ahead of time, so unlike `obtain` nothing here falls back to the PAT in hand."""
    with lock.held(f"mint:{org.name}", timeout=settings.signin_timeout + 60):
        item = _fresh_item(store, org)
        current = pick(item, account, world.clock())
        session = Session(org, settings, store, world, [])
        return _mint_or_fallback(session, item, account, current)


def _mint_or_fallback(session: Session, item: Item, account: str, current: Entry | None) -> Answer:
    from git_credential_pat.patapi import PatApiError

    org, settings = session.org, session.settings
    tenant = session.tenant(item)
    token = session.token(tenant, account or item["org"].get("account", ""), interactive=True)
    item["org"].update(tenant=tenant, account=token.account)
    if settings.mode == "oauth":
        return _answer_token(token)
    try:
        entry = mint(session, item, token)
    except PatApiError as error:
        if settings.mode == "auto" and (error.code in FALLBACK_CODES or error.status in (401, 403)):
            if item["org"].get("fallback") != error.code:
                session.world.say(f"{error}; using your Entra sign-in for git instead of a PAT")
                item["org"]["fallback"] = error.code
                update_item(session.store, org, lambda fresh: fresh["org"].update(item["org"]))
            return _answer_token(token)
        raise
    replaced = [current] if current and (current.get("pat") or {}).get("minted") else []
    sweep(session, token, entry, replaced)
    return _answer_pat(entry)


def _answer_token(token: AccessToken) -> Answer:
    trace.secret(token.token)
    return [("username", token.account or "oauth"), ("password", token.token),
            ("password_expiry_utc", str(int(token.expires_on)))]


def mint(session: Session, item: Item, token: AccessToken) -> Entry:
    """Create a PAT and store it; revoke it again if it cannot be stored."""
    from git_credential_pat.patapi import PatApiError

    settings, world = session.settings, session.world
    client = session.pats(token)
    days = settings.lifespan_days
    while True:
        valid_to = int(world.clock()) + days * DAY
        try:
            pat = client.create(display_name(session.org, session.store), settings.scope, valid_to)
            break
        except PatApiError as error:
            if error.code != "patLifespanPolicyViolation" or days <= 1:
                raise
            days = max(1, days // 2)
            trace.log(f"lifespan refused; trying {days} days")
    trace.secret(pat.token)
    entry: Entry = {
        "username": token.account or "pat",
        "password": pat.token,
        "password_expiry_utc": pat.valid_to,
        "pat": {"minted": True, "id": pat.authorization_id, "scope": pat.scope,
                "name": pat.display_name, "valid_from": pat.valid_from},
    }

    def store_entry(fresh: Item) -> None:
        fresh["org"].update(item["org"])
        fresh["org"].pop("fallback", None)
        # Owed until `sweep` has revoked what this PAT replaces: a process killed before then
        # leaves the old PAT live, and the next `get` finishes the job (`finish_sweep`).
        fresh["org"][SWEEP_DUE] = int(world.clock())
        fresh["credentials"] = [e for e in fresh["credentials"]
                                if e.get("username", "").lower() != entry["username"].lower()]
        fresh["credentials"].append(entry)

    try:
        update_item(session.store, session.org, store_entry)
    except BaseException:
        _revoke(client, pat.authorization_id)
        raise
    return entry


def _revoke(client, authorization_id: str) -> bool:  # noqa: ANN001 - PatClient, lazily imported
    try:
        client.revoke(authorization_id)
    except HelperError as error:
        trace.log(f"could not revoke {authorization_id}: {error}")
        return getattr(error, "code", "") == "authorizationNotFound"  # gone already
    return True


def sweep(session: Session, token: AccessToken, keep: Entry, replaced: list[Entry]) -> None:
    """Revoke what this installation minted before: the PAT just replaced, and any a killed
    process or a lost keyring left behind. Best effort: git already has its answer; what
    could not be revoked is tried again by a `get` an hour later (`finish_sweep`)."""
    client = session.pats(token)
    ours = display_name(session.org, session.store)
    doomed = {(e.get("pat") or {}).get("id") for e in replaced}
    done = True
    try:
        doomed |= {p.authorization_id for p in client.list() if p.display_name == ours}
    except HelperError as error:
        trace.log(f"could not list PATs: {error}")
        done = False
    doomed -= {keep["pat"]["id"], None}
    for authorization_id in sorted(doomed):
        done = _revoke(client, authorization_id) and done
    if doomed:  # git's cache may still hand them out, for this or another path of the org
        gitcache.forget_org(session.org)
    later = int(session.world.clock()) + SWEEP_RETRY

    def record(fresh: Item) -> None:
        if done:
            fresh["org"].pop(SWEEP_DUE, None)
        else:
            fresh["org"][SWEEP_DUE] = later

    try:
        update_item(session.store, session.org, record)
    except HelperError as error:
        trace.log(f"could not record the sweep: {error}")


def finish_sweep(org: Org, entry: Entry, item: Item, settings: Settings, store: SecretStore,
                 world: World) -> None:
    """On a `get` that found a sweep owed (a mint's process was killed, or revoking failed):
    sweep now if sign-in needs no person and no other process is minting. Never raises: git
    gets the stored PAT whatever happens here."""
    try:
        with lock.held(f"mint:{org.name}", timeout=0):
            if SWEEP_DUE not in _fresh_item(store, org)["org"]:
                return  # another process has just done it
            session = Session(org, settings, store, world, [])
            try:
                token = session.token(session.tenant(item), entry.get("username", ""),
                                      interactive=False)
            except HelperError:
                later = int(world.clock()) + SWEEP_RETRY
                update_item(store, org, lambda fresh: fresh["org"].update({SWEEP_DUE: later}))
                raise
            sweep(session, token, entry, [])
    except HelperError as error:
        trace.log(f"not revoking old PATs now: {error}")


def revoke_quietly(org: Org, gone: list[Entry], item: Item, settings: Settings,
                   store: SecretStore, world: World) -> None:
    """After git saw a PAT refused: revoke it server-side if sign-in needs no person."""
    session = Session(org, settings, store, world, [])
    try:
        tenant = session.tenant(item)
        token = session.token(tenant, item.get("org", {}).get("account", ""), interactive=False)
    except HelperError as error:
        trace.log(f"not revoking after erase: {error}")
        return
    client = session.pats(token)
    for entry in gone:
        _revoke(client, entry["pat"]["id"])

