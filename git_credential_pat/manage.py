"""`login`, `list`, `rotate`, `revoke` and `logout`: the commands that sign in and manage PATs.

Minting and rotating go through `minting`, the code git's own misses use, so a PAT minted here
is stored, named and later rotated exactly like one minted by a clone. What only people need
lives here: reusing a PAT that already fits instead of minting on every `login`, showing the
PAT list, and revoking on request with every failure reported, since nobody else will notice a
PAT left alive.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import replace

from git_credential_pat import entries, gitcache, gitconfig, minting
from git_credential_pat.errors import HelperError, SignInRequired
from git_credential_pat.helper import (
    DAY,
    World,
    looks_like_access_token,
    org_key,
    pick,
    rotation_due,
)
from git_credential_pat.orgs import Target, UsageError, resolve, stored_orgs, target_of
from git_credential_pat.output import Terminal, expiry_note, iso, show, when
from git_credential_pat.remote import ORG_HOST
from git_credential_pat.status import git_uses_helper

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.entries import Entry, Item
    from git_credential_pat.patapi import Pat, PatClient
    from git_credential_pat.signin import AccessToken
    from git_credential_pat.store import SecretStore

LIST_STATES = ("active", "expired", "revoked")


# -- signing in ---------------------------------------------------------------------------------

def sign_in(target: Target) -> tuple[PatClient, AccessToken]:
    """A PAT client for the organization, signing in silently if the cache allows and asking
    the person otherwise."""
    session = minting.Session(target.org, target.settings, target.store, target.world, [])
    item = target.item()
    tenant = session.tenant(item)
    account = target.account or item.get("org", {}).get("account", "")
    token = session.token(tenant, account, interactive=True)
    return session.pats(token), token


def _ours(client: PatClient, target: Target, keep: str = "") -> set[str]:
    """Active PATs this installation minted in the organization (found by their display name,
    so that ones a lost keyring forgot are found too), except `keep`."""
    name = minting.display_name(target.org, target.store)
    return {p.authorization_id for p in client.list() if p.display_name == name} - {keep}


# -- login -------------------------------------------------------------------------------------

def login(args: argparse.Namespace, term: Terminal) -> int:
    overrides: dict[str, object] = {"interactive": "auto"}  # a person asked to sign in
    for name in ("scope", "lifespan_days", "account"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.device_code:
        overrides["flow"] = "device"
    target = resolve(World(say=term.say), args.org_url, **overrides)
    current = pick(target.item(), target.account, target.world.clock())
    try:
        if current and _fits(current, target, args):
            with term.progress(f"Signing in for {target.org.name}"):
                _, token = sign_in(target)
            term.line(f"Already set up for {target.org.name} as {show(token.account)}: "
                      f"{_describe(current, target)}")
            return 0
        with term.progress(f"Signing in and minting a PAT for {target.org.name}"):
            answer = minting.renew(target.org, target.account, target.settings, target.store,
                                   target.world)
    except SignInRequired:
        raise HelperError("nobody can be asked to sign in here: no browser (BROWSER, DISPLAY) "
                          "and no terminal (or GIT_TERMINAL_PROMPT=0); run this in a terminal, "
                          "with --device-code to sign in on another device") from None
    _report_login(target, dict(answer), term)
    return 0


def _fits(entry: Entry, target: Target, args: argparse.Namespace) -> bool:
    """Whether the PAT in hand is what `login` would mint, so that a script running `login`
    on every start does not mint (and e-mail about) a PAT each time."""
    settings = target.settings
    pat = entry.get("pat") or {}
    if settings.mode == "oauth" or not pat.get("minted"):
        return False
    if rotation_due(entry, settings, target.world.clock()):
        return False
    if set(pat.get("scope", "").split()) != set(settings.scope.split()):
        return False
    return args.lifespan_days is None or lifespan_days(entry) == args.lifespan_days


def lifespan_days(entry: Entry) -> int:
    """The lifespan a minted PAT was given, in days as they were asked for."""
    return round((entry["password_expiry_utc"] - entry["pat"]["valid_from"]) / DAY)


def _report_login(target: Target, answer: dict[str, str], term: Terminal) -> None:
    who = show(answer.get("username", ""))
    if looks_like_access_token(answer.get("password", "")):
        term.line(f"Signed in for {target.org.name} as {who}. No PAT: git gets your Entra "
                  "sign-in instead (patMode oauth, or the organization refuses PATs).")
        return
    entry = pick(target.item(), answer.get("username", ""), target.world.clock())
    term.line(f"Signed in for {target.org.name} as {who}: "
              f"{_describe(entry, target) if entry else 'PAT stored'}")
    _hint_configure(target, term)


def _describe(entry: Entry, target: Target) -> str:
    pat = entry.get("pat") or {}
    expiry, _ = expiry_note(entry.get("password_expiry_utc"), target.world.clock())
    return f"PAT with scope {show(pat.get('scope', '?'))}, {expiry}, " \
           f"in {target.store.description}."


def _hint_configure(target: Target, term: Terminal) -> None:
    if not git_uses_helper(gitconfig.applicable_helpers(f"{target.org.url}/")):
        term.say("git does not ask git-credential-pat first for this organization; "
                 "run: git credential-pat configure")


# -- list --------------------------------------------------------------------------------------

def list_pats(args: argparse.Namespace, term: Terminal) -> int:
    target = resolve(World(say=term.say), args.org_url)
    states = LIST_STATES if args.all else LIST_STATES[:1]
    with term.progress(f"Listing your PATs in {target.org.name}"):
        client, _ = sign_in(target)
        found = [(state, pat) for state in states for pat in client.list(state)]
    ours = minting.display_name(target.org, target.store)
    in_use = _stored_ids(target.item())
    rows = [_pat_json(pat, state, pat.display_name == ours, pat.authorization_id in in_use)
            for state, pat in found]
    if args.json:
        term.json({"organization": target.org.name, "pats": rows})
        return 0
    if not rows:
        term.line(f"You have no {'' if args.all else 'active '}PATs in {target.org.name}.")
        return 0
    term.table(("NAME", "SCOPE", "VALID FROM", "VALID TO", "STATUS", "", "ID"),
               [_pat_cells(row, pat) for row, (_, pat) in zip(rows, found)],
               [("", "", "", "", "" if r["status"] == "active" else "dim",
                 "ok" if r["in_use"] else "", "dim") for r in rows])
    term.line("\n* in use by git-credential-pat   + minted by git-credential-pat here")
    return 0


def _pat_json(pat: Pat, state: str, minted_here: bool, in_use: bool) -> dict[str, object]:
    return {"authorization_id": pat.authorization_id, "display_name": show(pat.display_name),
            "scope": show(pat.scope), "valid_from": iso(pat.valid_from),
            "valid_to": iso(pat.valid_to), "status": state, "minted_here": minted_here,
            "in_use": in_use}


def _pat_cells(row: dict[str, object], pat: Pat) -> tuple[str, ...]:
    marks = ("*" if row["in_use"] else "") + ("+" if row["minted_here"] else "")
    return (str(row["display_name"]), str(row["scope"]), when(pat.valid_from),
            when(pat.valid_to), str(row["status"]), marks, pat.authorization_id)


def _stored_ids(item: Item) -> set[str]:
    return {e["pat"]["id"] for e in item["credentials"] if (e.get("pat") or {}).get("id")}


# -- rotate ------------------------------------------------------------------------------------

def rotate(args: argparse.Namespace, term: Terminal) -> int:
    target = _as_before(resolve(World(say=term.say), args.org_url))
    with term.progress(f"Minting a replacement PAT for {target.org.name}"):
        answer = dict(minting.renew(target.org, target.account, target.settings, target.store,
                                    target.world))
    if looks_like_access_token(answer.get("password", "")):
        raise HelperError(f"no PAT to rotate for {target.org.name}: git gets your Entra "
                          "sign-in there (patMode oauth, or the organization refuses PATs)")
    entry = pick(target.item(), answer["username"], target.world.clock())
    new_id = ((entry or {}).get("pat") or {}).get("id", "")
    with term.progress("Checking that the old PATs are revoked"):
        client, _ = sign_in(target)
        left = _revoke(client, _ours(client, target, keep=new_id), term)
    term.line(f"Rotated {target.org.name}: {_describe(entry, target) if entry else ''}")
    return 1 if left else 0


def _as_before(target: Target) -> Target:
    """Azure DevOps has no "regenerate": it is a new PAT with the old one's scope and
    lifespan, so a PAT minted with `login --scope` keeps that scope."""
    entry = pick(target.item(), target.account, target.world.clock())
    if not entry or not (entry.get("pat") or {}).get("minted"):
        return target
    settings = target.settings.replace(scope=entry["pat"]["scope"],
                                       lifespan_days=max(1, lifespan_days(entry)))
    return replace(target, settings=settings)


# -- revoke ------------------------------------------------------------------------------------

def revoke(args: argparse.Namespace, term: Terminal) -> int:
    from git_credential_pat.patapi import PatApiError

    target = resolve(World(say=term.say), args.org_url)
    authorization_id = args.id or _id_in_use(target)
    with term.progress(f"Revoking a PAT in {target.org.name}"):
        client, _ = sign_in(target)
        try:
            client.revoke(authorization_id)
        except PatApiError as error:  # the stored one may be revoked already: forget it too
            if args.id or error.code != "authorizationNotFound":
                raise
    _forget(target, authorization_id)
    gitcache.forget_org(target.org)
    term.line(f"Revoked {authorization_id} in {target.org.name}."
              + ("" if args.id else " The next git command there mints a new PAT."))
    return 0


def _id_in_use(target: Target) -> str:
    entry = pick(target.item(), target.account, target.world.clock())
    if entry is None:
        raise UsageError(f"no PAT is stored for {target.org.name}; to revoke another, "
                         "give --id (see: git credential-pat list)")
    authorization_id = (entry.get("pat") or {}).get("id")
    if not authorization_id:
        raise UsageError(f"the PAT stored for {target.org.name} was not minted here, so its id "
                         "is unknown; find it with `git credential-pat list` and give --id")
    return authorization_id


def _forget(target: Target, authorization_id: str) -> None:
    """Drop the stored credential with this id, keeping everything else in the item."""
    doomed = authorization_id.lower()

    def drop(item: Item) -> None:
        item["credentials"] = [e for e in item["credentials"]
                               if (e.get("pat") or {}).get("id", "").lower() != doomed]

    if doomed in {i.lower() for i in _stored_ids(target.item())}:
        minting.update_item(target.store, target.org, drop)


def _revoke(client: PatClient, ids: Iterable[str], term: Terminal) -> list[str]:
    """Revoke each PAT; report and return the ones that stay alive. One already gone is fine."""
    from git_credential_pat.patapi import PatApiError

    left = []
    for authorization_id in sorted(ids):
        try:
            client.revoke(authorization_id)
        except PatApiError as error:
            if error.code != "authorizationNotFound":
                term.say(f"could not revoke {authorization_id}: {error}")
                left.append(authorization_id)
    return left


# -- logout ------------------------------------------------------------------------------------

def logout(args: argparse.Namespace, term: Terminal) -> int:
    world = World(say=term.say)
    store = world.store(world.settings(f"https://{ORG_HOST}"))
    if args.all:
        clean = [_log_out_of(target_of(world, org), term) for org in stored_orgs(store)]
        _forget_everything(store, term)
        return 0 if all(clean) else 1
    target = resolve(world, args.org_url)
    account = target.account or target.item().get("org", {}).get("account", "")
    clean = _log_out_of(target, term)
    _sign_out(target, account, term)
    return 0 if clean else 1


def _log_out_of(target: Target, term: Terminal) -> bool:
    """Revoke what this installation minted in one organization, then forget its item.
    Returns whether nothing of ours is known to be left alive there."""
    item = target.item()
    left: list[str] = []
    if item.get("org", {}).get("tenant") or _stored_ids(item):  # signed in here before
        try:
            with term.progress(f"Revoking the PATs minted for {target.org.name}"):
                client, _ = sign_in(target)
                left = _revoke(client, _ours(client, target) | _stored_ids(item), term)
        except HelperError as error:
            term.say(f"could not revoke the PATs minted for {target.org.name}: {error}")
            left = ["?"]
    if left:
        term.say(f"they stay valid until they expire; revoke them at "
                 f"{target.org.url}/_usersSettings/tokens")
    target.store.delete(org_key(target.org))
    gitcache.forget_org(target.org)
    term.line(f"Logged out of {target.org.name}.")
    return not left


def _forget_everything(store: SecretStore, term: Terminal) -> None:
    """`logout --all`: the sign-in cache and every item, other hosts' passwords included,
    so that nothing this tool kept stays in the store (uninstalling runs this)."""
    keys = store.keys()
    for key in keys:
        store.delete(key)
    store.delete(minting.TOKEN_CACHE_KEY)
    term.line(f"Signed out and emptied {store.description}.")


def _sign_out(target: Target, account: str, term: Terminal) -> None:
    """Forget the account in the sign-in cache, unless another organization still in the
    store signs in with it."""
    if not account:
        return
    for org in stored_orgs(target.store):
        other = entries.load(target.store.read(org_key(org)))
        if other.get("org", {}).get("account", "").lower() == account.lower():
            return
    from git_credential_pat import http, signin

    cache = minting.StoredTokenCache(target.store)
    sign = signin.SignIn(target.settings, http.new_session(target.settings), cache, target.world)
    for gone in sign.sign_out(account):
        term.line(f"Signed out {show(gone)}.")
