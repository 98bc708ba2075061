"""`login`, `list`, `rotate`, `revoke` and `logout`: the commands that sign in and manage PATs.

Minting and rotating go through `actions.mint`, the code git's own misses use, so a PAT minted here
is stored, named and later rotated exactly like one minted by a clone. What only people need
lives here: reusing a PAT that already fits instead of minting on every `login`, showing the
PAT list, and revoking on request with every failure reported, since nobody else will notice a
PAT left alive.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import TypeVar

from git_credential_pat.actions import access, mint, revoke as revoking
from git_credential_pat.actions.context import OrgContext, Runtime, StoredTokenCache
from git_credential_pat.commands.output import Terminal, expiry_note, iso, show, when
from git_credential_pat.commands.status import git_uses_helper
from git_credential_pat.commands.targets import main_store, resolve, stored_orgs
from git_credential_pat.core import entries, policy
from git_credential_pat.core.constants import TOKEN_CACHE_KEY
from git_credential_pat.core.errors import HelperError, SignInRequired, UsageError
from git_credential_pat.core.remote import Org
from git_credential_pat.edges import gitcache, gitconfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.core.entries import Entry, Item
    from git_credential_pat.edges.patapi import Pat, PatClient
    from git_credential_pat.edges.signin import AccessToken
    from git_credential_pat.edges.store import SecretStore

LIST_STATES = ("active", "expired", "revoked")
T = TypeVar("T")


# -- signing in ---------------------------------------------------------------------------------

def with_pats(target: OrgContext, call: Callable[[PatClient], T]) -> tuple[T, AccessToken]:
    """`call` with a PAT client for the organization, signing in silently if the cache allows
    and asking the person otherwise; a token the service refuses is replaced once
    (`access.with_token`), so a command never fails on a token a new sign-in would fix."""
    item = target.item()
    account = target.settings.account or entries.org_of(item).get("account", "")
    result, signed = access.with_token(target, item, account,
                                       lambda signed: call(target.pats(signed.token)))
    return result, signed.token


# -- login -------------------------------------------------------------------------------------

def login(args: argparse.Namespace, term: Terminal) -> int:
    overrides: dict[str, object] = {"interactive": "auto"}  # a person asked to sign in
    for name in ("scope", "lifespan_days", "account"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.device_code:
        overrides["flow"] = "device"
    target = resolve(Runtime(say=term.say), args.org_url, **overrides)
    if policy.machine_identity(target.settings):
        return _login_identity(target, term, args.json)
    current = policy.pick(target.item(), target.settings.account, target.now())
    try:
        if current and _fits(current, target, args):
            with term.progress(f"Signing in for {target.org.name}"):
                _, token = with_pats(target, lambda client: None)
            report(term, args.json,
                   f"Already set up for {target.org.name} as {show(token.account)}: "
                   f"{_describe(current, target)}",
                   organization=target.org.name, done="kept", account=show(token.account),
                   pat=_stored_json(current, target))
            return 0
        with term.progress(f"Signing in and minting a PAT for {target.org.name}"):
            answer = mint.renew(target, target.settings.account)
    except SignInRequired:
        raise HelperError("nobody can be asked to sign in here: no browser (BROWSER, DISPLAY) "
                          "and no terminal (or GIT_TERMINAL_PROMPT=0); run this in a terminal, "
                          "with --device-code to sign in on another device") from None
    _report_login(target, dict(answer), term, args.json)
    return 0


def report(term: Terminal, as_json: bool, text: str, **fields: object) -> None:
    """What a command did: a line for people, or (`--json`) the same facts for scripts."""
    if as_json:
        term.json(fields)
    else:
        term.line(text)


def _stored_json(entry: Entry | None, target: OrgContext) -> dict[str, object] | None:
    """A stored PAT as `--json` describes it, without the secret."""
    if entry is None:
        return None
    expiry = entry.get("password_expiry_utc")
    return {"authorization_id": entries.pat_id(entry) or None,
            "scope": show(entries.pat_of(entry).get("scope", "")) or None,
            "expires": iso(expiry) if expiry is not None else None,
            "minted_here": entries.minted(entry), "store": target.store.description}


def _login_identity(target: OrgContext, term: Terminal, as_json: bool) -> int:
    """A machine identity has no PAT to mint and nobody to sign in: check that it gets its
    token, exactly as `get` will ask for it."""
    from git_credential_pat.edges import identity

    with term.progress(f"Getting a token for {target.org.name}"):
        token = target.identity_token()
    who = identity.describe(target.settings, target.runtime.environ)
    report(term, as_json,
           f"Set up for {target.org.name}: git gets Entra access tokens for Azure DevOps as "
           f"the {show(who)} (this one until {when(token.expires_on)}). No PAT: service "
           "principals and managed identities cannot have one, so git gets a fresh token on "
           "every request.",
           organization=target.org.name, done="checked the machine identity",
           identity=show(who), token_expires=iso(token.expires_on), pat=None)
    return 0


def _fits(entry: Entry, target: OrgContext, args: argparse.Namespace) -> bool:
    """Whether the PAT in hand is what `login` would mint, so that a script running `login`
    on every start does not mint (and e-mail about) a PAT each time."""
    settings = target.settings
    if settings.mode == "oauth" or not entries.minted(entry):
        return False
    if policy.rotation_due(entry, settings, target.now()):
        return False
    if set(entries.pat_of(entry).get("scope", "").split()) != set(settings.scope.split()):
        return False
    return args.lifespan_days is None or policy.lifespan_days(entry) == args.lifespan_days


def _report_login(target: OrgContext, answer: dict[str, str], term: Terminal,
                  as_json: bool) -> None:
    who = show(answer.get("username", ""))
    if policy.looks_like_access_token(answer.get("password", "")):
        report(term, as_json,
               f"Signed in for {target.org.name} as {who}. No PAT: git gets your Entra "
               "sign-in instead (patMode oauth, or the organization refuses PATs).",
               organization=target.org.name, done="signed in", account=who, pat=None)
        return
    entry = policy.pick(target.item(), answer.get("username", ""), target.now())
    report(term, as_json, f"Signed in for {target.org.name} as {who}: "
           f"{_describe(entry, target) if entry else 'PAT stored'}",
           organization=target.org.name, done="minted", account=who,
           pat=_stored_json(entry, target))
    _hint_configure(target, term)


def _describe(entry: Entry, target: OrgContext) -> str:
    expiry, _ = expiry_note(entry.get("password_expiry_utc"), target.now())
    return f"PAT with scope {show(entries.pat_of(entry).get('scope', '?'))}, {expiry}, " \
           f"in {target.store.description}."


def _hint_configure(target: OrgContext, term: Terminal) -> None:
    if not git_uses_helper(gitconfig.applicable_helpers(f"{target.org.url}/")):
        term.say("git does not ask git-credential-pat first for this organization; "
                 "run: git credential-pat configure")


# -- list --------------------------------------------------------------------------------------

def list_pats(args: argparse.Namespace, term: Terminal) -> int:
    target = resolve(Runtime(say=term.say), args.org_url)
    states = LIST_STATES if args.all else LIST_STATES[:1]
    with term.progress(f"Listing your PATs in {target.org.name}"):
        found, _ = with_pats(target, lambda client: [(state, pat) for state in states
                                                     for pat in client.list(state)])
    ours = target.display_name()
    # The one PAT `get` answers with, as `status` marks it; not every id the store holds.
    chosen = policy.pick(target.item(), target.settings.account, target.now())
    in_use = {entries.pat_id(chosen)} - {""} if chosen else set()
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


# -- rotate ------------------------------------------------------------------------------------

def rotate(args: argparse.Namespace, term: Terminal) -> int:
    target = _as_before(resolve(Runtime(say=term.say), args.org_url))
    current = policy.pick(target.item(), target.settings.account, target.now())
    previous = {entries.pat_id(current)} - {""} if current else set()  # what the mint replaces
    with term.progress(f"Minting a replacement PAT for {target.org.name}"):
        answer = dict(mint.renew(target, target.settings.account))
    if policy.looks_like_access_token(answer.get("password", "")):
        raise HelperError(f"no PAT to rotate for {target.org.name}: git gets your Entra "
                          "sign-in there (patMode oauth, or the organization refuses PATs)")
    entry = policy.pick(target.item(), answer["username"], target.now())
    new_id = entries.pat_id(entry) if entry else ""
    with term.progress("Checking that the old PATs are revoked"):
        (old, left), _ = with_pats(target, lambda client: _revoke_old(client, target,
                                                                        new_id, term))
    report(term, args.json, f"Rotated {target.org.name}: "
           f"{_describe(entry, target) if entry else ''}",
           organization=target.org.name, done="rotated", pat=_stored_json(entry, target),
           revoked=sorted((previous | old) - {new_id} - set(left)), not_revoked=left)
    return 1 if left else 0


def _revoke_old(client: PatClient, target: OrgContext, keep: str,
                term: Terminal) -> tuple[set[str], list[str]]:
    """The PATs `keep` replaced (`revoke.sweepable`), and those of them that stay alive."""
    old = revoking.sweepable(client, target, keep)
    return old, _revoke(client, old, term)


def _as_before(target: OrgContext) -> OrgContext:
    """Azure DevOps has no "regenerate": it is a new PAT with the old one's scope and
    lifespan, so a PAT minted with `login --scope` keeps that scope."""
    entry = policy.pick(target.item(), target.settings.account, target.now())
    if not entry or not entries.minted(entry):
        return target
    target.settings = target.settings.replace(scope=entries.pat_of(entry)["scope"],
                                              lifespan_days=max(1, policy.lifespan_days(entry)))
    return target


# -- revoke ------------------------------------------------------------------------------------

def revoke(args: argparse.Namespace, term: Terminal) -> int:
    from git_credential_pat.edges.patapi import PatApiError

    target = resolve(Runtime(say=term.say), args.org_url)
    authorization_id = args.id or _id_in_use(target)

    def revoke_it(client: PatClient) -> None:
        try:
            client.revoke(authorization_id)
        except PatApiError as error:  # the stored one may be revoked already: forget it too
            if args.id or error.code != "authorizationNotFound":
                raise

    with term.progress(f"Revoking a PAT in {target.org.name}"):
        with_pats(target, revoke_it)
    forgotten = _forget(target, authorization_id)
    gitcache.forget_org(target.org)
    report(term, args.json, f"Revoked {authorization_id} in {target.org.name}."
           + ("" if args.id else " The next git command there mints a new PAT."),
           organization=target.org.name, done="revoked", revoked=authorization_id,
           forgotten=forgotten)
    return 0


def _id_in_use(target: OrgContext) -> str:
    entry = policy.pick(target.item(), target.settings.account, target.now())
    if entry is None:
        raise UsageError(f"no PAT is stored for {target.org.name}; to revoke another, "
                         "give --id (see: git credential-pat list)")
    authorization_id = entries.pat_id(entry)
    if not authorization_id:
        raise UsageError(f"the PAT stored for {target.org.name} was not minted here, so its id "
                         "is unknown; find it with `git credential-pat list` and give --id")
    return authorization_id


def _forget(target: OrgContext, authorization_id: str) -> bool:
    """Drop the stored credential with this id, keeping everything else in the item; whether
    the store held it."""
    doomed = authorization_id.lower()

    def drop(item: Item) -> None:
        item["credentials"] = [e for e in item["credentials"]
                               if entries.pat_id(e).lower() != doomed]

    if doomed in {i.lower() for i in entries.stored_ids(target.item())}:
        target.update_item(drop)
        return True
    return False


def _revoke(client: PatClient, ids: Iterable[str], term: Terminal) -> list[str]:
    """Revoke each PAT; report and return the ones that stay alive. One already gone is fine."""
    left = []
    for authorization_id in sorted(ids):
        why = revoking.revoke_one(client, authorization_id)
        if why:
            term.say(f"could not revoke {authorization_id}: {why}")
            left.append(authorization_id)
    return left


# -- logout ------------------------------------------------------------------------------------

def logout(args: argparse.Namespace, term: Terminal) -> int:
    runtime = Runtime(say=term.say)
    done: dict[str, object] = {"done": "logged out", "organizations": [], "signed_out": [],
                               "emptied": None}
    lines = term.muted() if args.json else term
    if args.all:
        store = main_store(runtime)
        targets = [runtime.org(org) for org in stored_orgs(store)]
        # The whole sign-in cache goes: every account an organization signed in with.
        accounts = {entries.org_of(t.item()).get("account", "") for t in targets} - {""}
        clean = [_log_out_of(target, lines) for target in targets]
        _forget_everything(store, lines)
        done.update(organizations=_logged_out([t.org for t in targets], clean),
                    signed_out=sorted(accounts), emptied=store.description)
    else:
        target = resolve(runtime, args.org_url)
        account = target.settings.account or entries.org_of(target.item()).get("account", "")
        clean = [_log_out_of(target, lines)]
        done.update(organizations=_logged_out([target.org], clean),
                    signed_out=_sign_out(target, account, lines))
    if args.json:
        term.json(done)
    return 0 if all(clean) else 1


def _logged_out(orgs: list[Org], clean: list[bool]) -> list[dict[str, object]]:
    return [{"organization": org.name, "all_revoked": ok} for org, ok in zip(orgs, clean)]


def _log_out_of(target: OrgContext, term: Terminal) -> bool:
    """Revoke what this installation minted in one organization, then forget its item.
    Returns whether nothing of ours is known to be left alive there."""
    item = target.item()
    left: list[str] = []
    if entries.org_of(item).get("tenant") or entries.stored_ids(item):  # signed in here before
        try:
            with term.progress(f"Revoking the PATs minted for {target.org.name}"):
                left, _ = with_pats(target, lambda client: _revoke(
                    client, revoking.ours(client, target) | entries.stored_ids(item), term))
        except HelperError as error:
            term.say(f"could not revoke the PATs minted for {target.org.name}: {error}")
            left = ["?"]
    if left:
        term.say(f"they stay valid until they expire; revoke them at "
                 f"{target.org.url}/_usersSettings/tokens")
    target.store.delete(target.key)
    gitcache.forget_org(target.org)
    term.line(f"Logged out of {target.org.name}.")
    return not left


def _forget_everything(store: SecretStore, term: Terminal) -> None:
    """`logout --all`: the sign-in cache and every item, other hosts' passwords included,
    so that nothing this tool kept stays in the store (uninstalling runs this)."""
    keys = store.keys()
    for key in keys:
        store.delete(key)
    store.delete(TOKEN_CACHE_KEY)
    term.line(f"Signed out and emptied {store.description}.")


def _sign_out(target: OrgContext, account: str, term: Terminal) -> list[str]:
    """Forget the account in the sign-in cache, unless another organization still in the
    store signs in with it; the accounts signed out."""
    if not account:
        return []
    for org in stored_orgs(target.store):
        other = entries.load(target.store.read(org.url))
        if entries.org_of(other).get("account", "").lower() == account.lower():
            return []
    from git_credential_pat.edges import signin

    sign = signin.SignIn(target.settings, target.http, StoredTokenCache(target.store),
                         target.runtime)
    gone = [show(name) for name in sign.sign_out(account)]
    for name in gone:
        term.line(f"Signed out {name}.")
    return gone
