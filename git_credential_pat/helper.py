"""What the helper answers to git's `get`, `store` and `erase`.

The decisions are plain functions over a parsed request, the stored item and the clock; the
outside world (settings, the secret store, the terminal) comes in through `World` so that the
whole flow reads top to bottom. Only a miss or a due rotation imports `minting`, which brings
in msal and requests; a stored, valid PAT is answered without them.
"""

from __future__ import annotations

import os
import sys
import time

from git_credential_pat import entries, settings as settings_mod
from git_credential_pat.protocol import Message
from git_credential_pat.remote import Org, account_hint, azure_org
from git_credential_pat.store import open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from git_credential_pat.entries import Entry, Item
    from git_credential_pat.settings import Settings
    from git_credential_pat.store import SecretStore

Answer = list[tuple[str, str]]
DAY = 86400


class World:
    """The side effects the helper needs, behind one small object tests can build for real."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.clock = clock
        self.say = say or _say_on_stderr
        self._stores: dict[tuple[str, str], SecretStore] = {}

    def settings(self, url: str) -> Settings:
        loaded = settings_mod.load(url, self.environ)
        if loaded.trace:
            from git_credential_pat import trace

            trace.configure(loaded.trace)
        return loaded

    def store(self, settings: Settings) -> SecretStore:
        where = (settings.store, settings.store_file)
        if where not in self._stores:
            self._stores[where] = open_store(*where)
        return self._stores[where]


def _say_on_stderr(line: str) -> None:
    from git_credential_pat.trace import redact

    sys.stderr.write(f"git-credential-pat: {redact(line)}\n")
    sys.stderr.flush()


def request_url(request: Message) -> str:
    path = request.get("path") or ""
    return f"{request.get('protocol')}://{request.get('host')}/{path}"


def handle(action: str, request: Message, world: World) -> Answer:
    """Dispatch one git action; an action git may add in the future is ignored, as git asks."""
    org = azure_org(request.attrs["protocol"], request.attrs["host"], request.get("path"),
                    request.get("username"))
    if org is None:
        if "/" in request.attrs["host"] or "#" in request.attrs["host"]:
            # No host has these (git decodes them from %2F/%23); in a key they would name
            # another item: an organization's (https://dev.azure.com/org) or a chunk (key#0).
            return []
        handlers = {"get": _get_plain, "store": _store_plain, "erase": _erase_plain}
    else:
        handlers = {"get": _get_azure, "store": _store_azure, "erase": _erase_azure}
    handler = handlers.get(action)
    return handler(request, org, world) if handler else []


# Any HTTPS host: a keyring-backed store with git's own matching rules.

def _item(store: SecretStore, key: str) -> Item:
    return entries.load(store.read(key))


def _save(store: SecretStore, key: str, item: Item, keep_if_empty: bool = False) -> None:
    if item["credentials"] or keep_if_empty:
        store.write(key, entries.dump(item))
    else:
        store.delete(key)


def _plain_key(request: Message) -> str:
    return entries.item_key(request.attrs["protocol"], request.attrs["host"])


def _get_plain(request: Message, _org: Org | None, world: World) -> Answer:
    store = world.store(world.settings(request_url(request)))
    entry = entries.find(_item(store, _plain_key(request)), request, world.clock())
    return entries.answer(entry, request) if entry else []


def _storable(request: Message, world: World) -> bool:
    ephemeral = (request.get("ephemeral") or "").lower() in ("1", "true")
    return not ephemeral and not entries.expired(entries.entry_from(request), world.clock())


def _store_plain(request: Message, _org: Org | None, world: World) -> Answer:
    if not _storable(request, world):
        return []
    from git_credential_pat import lock

    store = world.store(world.settings(request_url(request)))
    key = _plain_key(request)
    with lock.held(f"item:{key}", timeout=30):
        item = _item(store, key)
        entries.put(item, entries.entry_from(request))
        _save(store, key, item)
    return []


def _erase_plain(request: Message, _org: Org | None, world: World) -> Answer:
    from git_credential_pat import lock

    store = world.store(world.settings(request_url(request)))
    key = _plain_key(request)
    with lock.held(f"item:{key}", timeout=30):
        item = _item(store, key)
        if entries.remove(item, request):
            _save(store, key, item)
    return []


# Azure DevOps: one item per organization, holding a PAT per Entra account.

def org_key(org: Org) -> str:
    return org.url


def pick(item: Item, account: str, now: float) -> Entry | None:
    """The usable credential for an account, or for the organization's usual account."""
    wanted = account or item.get("org", {}).get("account", "")
    usable = [e for e in item["credentials"] if not entries.expired(e, now)]
    for entry in usable:
        if not wanted or entry.get("username", "").lower() == wanted.lower():
            return entry
    return None


def rotation_due(entry: Entry, settings: Settings, now: float) -> bool:
    """A minted PAT is replaced once less than the rotation window remains.

    The window never exceeds half the PAT's own lifespan, so an organization that caps lifespans
    below the window does not cause a new PAT on every fetch.
    """
    pat = entry.get("pat") or {}
    if not pat.get("minted") or "password_expiry_utc" not in entry:
        return False
    lifespan = entry["password_expiry_utc"] - pat.get("valid_from", now)
    window = min(settings.rotate_days * DAY, lifespan / 2)
    return entry["password_expiry_utc"] - now < window


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


def _get_azure(request: Message, org: Org | None, world: World) -> Answer:
    """A PAT works with any user name, so the answer keeps the one git asked with: Azure
    DevOps' own clone URLs carry the organization's name there, and git's credential-cache,
    handed the answer, files it under the user name answered and is asked under the URL's."""
    assert org is not None
    provided = provided_token(org, world.environ)
    if provided:
        return provided
    asked = request.get("username")
    answer = _answer_from_store(request, org, world)
    return [("username", asked) if asked and key == "username" else (key, value)
            for key, value in answer]


def _answer_from_store(request: Message, org: Org, world: World) -> Answer:
    settings = world.settings(request_url(request))
    store = world.store(settings)
    account = _account(request, org, settings)
    now = world.clock()
    item = _item(store, org_key(org))
    entry = servable(item, account, settings, now)
    if entry:
        if sweep_owed(item, now):
            from git_credential_pat import minting

            minting.finish_sweep(org, entry, item, settings, store, world)
        return _answer_pat(entry)
    from git_credential_pat import minting

    return minting.obtain(org, account, request, settings, store, world)


def _account(request: Message, org: Org, settings: Settings) -> str:
    return account_hint(request.get("username"), org) or settings.account


def servable(item: Item, account: str, settings: Settings, now: float) -> Entry | None:
    """The stored PAT `get` answers with as it is; None when it must mint or rotate first."""
    entry = pick(item, account, now)
    if entry is None or settings.mode == "oauth" or rotation_due(entry, settings, now):
        return None
    return entry


def sweep_owed(item: Item, now: float) -> bool:
    return item.get("org", {}).get("sweep_due", now + 1) <= now


def _answer_pat(entry: Entry) -> Answer:
    pairs = [("username", entry.get("username") or "pat"), ("password", entry["password"])]
    if "password_expiry_utc" in entry:
        pairs.append(("password_expiry_utc", str(entry["password_expiry_utc"])))
    return pairs


def looks_like_access_token(password: str) -> bool:
    """Entra access tokens are JWTs; PATs never are. Git hands our fallback token back to
    `store`, and it must not be kept."""
    return password.startswith("eyJ") and password.count(".") == 2


def _store_azure(request: Message, org: Org | None, world: World) -> Answer:
    """git sends `store` after every fetch that a credential let through, to every helper,
    git's credential-cache first. Usually it is the PAT `get` answered, and nothing changes;
    but the cache has just been handed it too, and must lose it again when `get` would no
    longer answer with it (`gitcache`)."""
    assert org is not None
    password = request.get("password")
    if not password:
        return []
    if provided_token(org, world.environ) or looks_like_access_token(password):
        # Short-lived tokens are fetched afresh each time and kept nowhere; and while a token
        # is provided, `get` answers with it rather than with whatever the cache holds.
        _uncache(request)
        return []
    if not _storable(request, world):
        return []
    settings = world.settings(request_url(request))
    store = world.store(settings)
    key = org_key(org)
    now = world.clock()
    account = _account(request, org, settings)
    item = _item(store, key)
    if _holds(item, password):  # the common case: what `get` answered
        entry = servable(item, account, settings, now)
        if not entry or entry["password"] != password or sweep_owed(item, now):
            _uncache(request)  # so that the next request reaches `get`, which has work to do
        return []
    from git_credential_pat import lock

    with lock.held(f"item:{key}", timeout=30):
        item = _item(store, key)
        if _holds(item, password):
            return []
        if _answers_minted(item, account, now):
            # A fetch that began before a rotation hands back the PAT it was given, which the
            # rotation has revoked; keeping it would undo the rotation.
            _uncache(request)
            return []
        entry = entries.entry_from(request)
        entry.pop("path", None)
        entry["username"] = entry.get("username") or "pat"
        entries.put(item, entry)
        _save(store, key, item)
    return []


def _holds(item: Item, password: str) -> bool:
    return any(e.get("password") == password for e in item["credentials"])


def _answers_minted(item: Item, account: str, now: float) -> bool:
    """Whether `get` has a PAT minted here, still valid, for the account: a password it does
    not hold cannot be one that should replace it."""
    current = pick(item, account, now)
    return bool(current and (current.get("pat") or {}).get("minted"))


def _uncache(request: Message) -> None:
    from git_credential_pat import gitcache

    gitcache.forget([(k, v) for k, v in request.attrs.items()
                     if k in ("protocol", "host", "path", "username", "password")])


def _erased(request: Message, org: Org) -> dict[str, str]:
    """What an erase names: the password git saw refused, which is one credential whatever
    user name it was answered under; without one, the account the URL names, or else all."""
    if request.get("password"):
        return {"password": request.attrs["password"]}
    account = account_hint(request.get("username"), org)
    return {"username": account} if account else {}


def _erase_azure(request: Message, org: Org | None, world: World) -> Answer:
    """Forget the credential git just saw refused, and revoke it if this tool minted it.

    The password must match: an erase for an old PAT never removes the newer one another
    process stored meanwhile.
    """
    assert org is not None
    from git_credential_pat import lock

    settings = world.settings(request_url(request))
    store = world.store(settings)
    key = org_key(org)
    query = Message(attrs=_erased(request, org))
    with lock.held(f"item:{key}", timeout=30):
        item = _item(store, key)
        gone = entries.remove(item, query)
        if gone:
            _save(store, key, item, keep_if_empty=True)
    if gone:  # git erased it from its cache for this path; other paths of the org hold it too
        from git_credential_pat import gitcache

        gitcache.forget_org(org)
    minted = [e for e in gone if (e.get("pat") or {}).get("minted")]
    if minted:
        from git_credential_pat import minting

        minting.revoke_quietly(org, minted, item, settings, store, world)
    return []
