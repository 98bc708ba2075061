"""What the helper answers to git's `get`, `store` and `erase`.

A request comes in parsed, the decision is made from the stored item and the clock
(`core.policy`), and the answer goes back as protocol pairs. Only a miss or a due rotation
imports `mint`, which brings in msal and requests; a stored, valid PAT is answered without them.
"""

from __future__ import annotations

from git_credential_pat.actions.context import OrgContext, Runtime, update_item
from git_credential_pat.core import entries, policy
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.protocol import Message, described, request_url
from git_credential_pat.core.remote import Org, account_hint, azure_org
from git_credential_pat.edges import trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.core.entries import Entry, Item
    from git_credential_pat.core.policy import Answer
    from git_credential_pat.edges.store import SecretStore


def handle(action: str, request: Message, runtime: Runtime) -> Answer:
    """Dispatch one git action; an action git may add in the future is ignored, as git asks."""
    org = azure_org(request.attrs["protocol"], request.attrs["host"], request.get("path"),
                    request.get("username"))
    if org is None:
        if "/" in request.attrs["host"] or "#" in request.attrs["host"]:
            # No host has these (git decodes them from %2F/%23); in a key they would name
            # another item: an organization's (https://dev.azure.com/org) or a chunk (key#0).
            return []
        plain = {"get": _get_plain, "store": _store_plain, "erase": _erase_plain}.get(action)
        return plain(request, runtime) if plain else []
    azure = {"get": _get_azure, "store": _store_azure, "erase": _erase_azure}.get(action)
    if azure is None:
        return []
    settings = runtime.settings(request_url(request), read_ahead=org.url)
    _trace_request(action, request)
    context = OrgContext(runtime, org, settings, runtime.store(settings),
                         request.values("wwwauth[]"))
    return azure(request, context)


def _trace_request(action: str, request: Message) -> None:
    """Once the settings are read, since `credential.patTrace` is one of them."""
    if trace.enabled():
        trace.log(f"{action}: {described(list(request.attrs.items()))}")


# Any HTTPS host: a keyring-backed store with git's own matching rules.

def _plain(request: Message, runtime: Runtime, action: str) -> tuple[SecretStore, str]:
    key = entries.item_key(request.attrs["protocol"], request.attrs["host"])
    # `store` changes the item under its lock, which must read it afresh: nothing to read ahead.
    store = runtime.store(runtime.settings(request_url(request),
                                           read_ahead=key if action != "store" else ""))
    _trace_request(action, request)
    return store, key


def _get_plain(request: Message, runtime: Runtime) -> Answer:
    store, key = _plain(request, runtime, "get")
    entry = entries.find(runtime.item(store, key, ahead=True), request,
                         runtime.clock())
    return entries.answer(entry, request) if entry else []


def _storable(request: Message, now: float) -> bool:
    ephemeral = (request.get("ephemeral") or "").lower() in ("1", "true")
    return not ephemeral and not entries.expired(entries.entry_from(request), now)


def _store_plain(request: Message, runtime: Runtime) -> Answer:
    if _storable(request, runtime.clock()):
        store, key = _plain(request, runtime, "store")
        update_item(store, key, lambda item: entries.put(item, entries.entry_from(request)))
    return []


def _erase_plain(request: Message, runtime: Runtime) -> Answer:
    store, key = _plain(request, runtime, "erase")
    if entries.matching(runtime.item(store, key, ahead=True), request):
        update_item(store, key, lambda item: bool(entries.remove(item, request)))
    return []


# Azure DevOps: one item per organization, holding a PAT per Entra account.

def _account(request: Message, context: OrgContext) -> str:
    return account_hint(request.get("username"), context.org) or context.settings.account


def _get_azure(request: Message, context: OrgContext) -> Answer:
    """A PAT works with any user name, so the answer keeps the one git asked with: Azure
    DevOps' own clone URLs carry the organization's name there, and git's credential-cache,
    handed the answer, files it under the user name answered and is asked under the URL's."""
    provided = policy.provided_token(context.org, context.runtime.environ)
    if provided:
        return provided
    asked = request.get("username")
    if policy.machine_identity(context.settings):
        # Service principals and managed identities cannot have PATs: the token is the answer.
        from git_credential_pat.actions import mint

        answer = mint.answer_token(context.identity_token())
    else:
        try:
            answer = _answer_from_store(request, context)
        except HelperError as error:
            # git's own prompt would ask for a user name and password, where people type
            # their Microsoft password, which Azure DevOps refuses; unless patGitPrompt asks.
            error.quit_git = not context.settings.git_prompt
            raise
    return [("username", asked) if asked and key == "username" else (key, value)
            for key, value in answer]


def _answer_from_store(request: Message, context: OrgContext) -> Answer:
    account = _account(request, context)
    now = context.now()
    item = context.item(ahead=True)
    entry = policy.servable(item, account, context.settings, now)
    if entry:
        if policy.sweep_owed(item, now):
            from git_credential_pat.actions import revoke

            revoke.finish_sweep(context, entry, item)
        return policy.answer_pat(entry)
    trace.log(f"no stored PAT serves {account or 'the usual account'} as it is: obtaining one")
    from git_credential_pat.actions import mint

    return mint.obtain(context, account)


def _store_azure(request: Message, context: OrgContext) -> Answer:
    """git sends `store` after every fetch that a credential let through, to every helper,
    git's credential-cache first. Usually it is the PAT `get` answered, and nothing changes;
    but the cache has just been handed it too, and must lose it again when `get` would no
    longer answer with it (`gitcache`)."""
    password = request.get("password")
    if not password:
        return []
    if (policy.provided_token(context.org, context.runtime.environ)
            or policy.machine_identity(context.settings)
            or policy.looks_like_access_token(password)):
        # Short-lived tokens are fetched afresh each time and kept nowhere; and while a token
        # is provided or a machine identity answers, `get` answers with that rather than with
        # whatever the cache holds.
        _uncache(request)
        return []
    now = context.now()
    if not _storable(request, now):
        return []
    account = _account(request, context)
    item = context.item(ahead=True)
    if _holds(item, password):  # the common case: what `get` answered
        entry = policy.servable(item, account, context.settings, now)
        stale = not entry or entry["password"] != password or policy.sweep_owed(item, now)
        if stale:
            _uncache(request)  # so that the next request reaches `get`, which has work to do
        if trace.enabled():  # with git's cache in front, a hit shows here alone
            trace.log("store: git used the stored PAT " + (
                "that get no longer answers with as it is; taken out of git's credential-cache"
                if stale else "that get answers with; nothing to change"))
        return []
    refused: list[bool] = []

    def keep(fresh: Item) -> bool:
        if _holds(fresh, password):
            return False
        current = policy.pick(fresh, account, now)
        if current and entries.minted(current):
            # A fetch that began before a rotation hands back the PAT it was given, which the
            # rotation has revoked; keeping it would undo the rotation.
            refused.append(True)
            return False
        entry = entries.entry_from(request)
        entry.pop("path", None)
        entry["username"] = entry.get("username") or "pat"
        entries.put(fresh, entry)
        return True

    context.update_item(keep)
    if refused:
        _uncache(request)
    return []


def _holds(item: Item, password: str) -> bool:
    return any(e.get("password") == password for e in item["credentials"])


def _uncache(request: Message) -> None:
    from git_credential_pat.edges import gitcache

    gitcache.forget([(k, v) for k, v in request.attrs.items()
                     if k in ("protocol", "host", "path", "username", "password")])


def _erased(request: Message, org: Org) -> Message:
    """What an erase names: the password git saw refused, which is one credential whatever
    user name it was answered under; without one, the account the URL names, or else all."""
    if request.get("password"):
        return Message(attrs={"password": request.attrs["password"]})
    account = account_hint(request.get("username"), org)
    return Message(attrs={"username": account} if account else {})


def _erase_azure(request: Message, context: OrgContext) -> Answer:
    """Forget the credential git just saw refused, and revoke it if this tool minted it.

    The password must match: an erase for an old PAT never removes the newer one another
    process stored meanwhile. An erase without one (a tool's `git credential reject`) forgets
    what git's matching rules name but revokes nothing: only a PAT git saw refused is known to
    be of no use to anyone.
    """
    if policy.machine_identity(context.settings):
        return []  # its tokens are never stored, and cannot be revoked
    if policy.looks_like_access_token(request.get("password") or ""):
        from git_credential_pat.actions import access

        access.forget_refused(context, request.attrs["password"])  # or `get` hands it back
        return []
    query = _erased(request, context.org)
    found = entries.matching(context.item(ahead=True), query)
    if not found:
        return []
    if len(found) == 1 and policy.reads_only(found[0]) and request.get("password"):
        from git_credential_pat.actions import revoke

        if revoke.still_works(context, found[0]):  # so it was refused for a push
            scope = entries.pat_of(found[0])["scope"]
            url = context.org.url
            context.say(f"the PAT for {context.org.name} can fetch but not push (scope {scope}); "
                        f"to push, run: git config --global credential.{url}.patScope "
                        f"vso.code_write, then: git credential-pat login --scope vso.code_write "
                        f"{url}")
            return []
    gone: list[Entry] = []

    def forget(fresh: Item) -> bool:
        gone.extend(entries.remove(fresh, query))
        return bool(gone)

    item = context.update_item(forget)
    if not gone:
        return []
    from git_credential_pat.edges import gitcache

    gitcache.forget_org(context.org)  # git erased it for this path; other paths hold it too
    refused = request.get("password")
    minted = [e for e in gone if entries.minted(e) and e.get("password") == refused]
    if minted:
        context.say(f"the PAT for {context.org.name} was refused (revoked, expired or out of "
                    "scope); it is forgotten, and the next git command gets a new one")
        from git_credential_pat.actions import revoke

        revoke.revoke_quietly(context, minted, item)
    return []
