"""The side effects an action needs, in two small objects built once per process.

`Runtime` is the process: its environment, its clock, where messages for the person go, and
the settings and secret stores it has opened. `OrgContext` is one organization's work: its
settings, its store, its item, and, opened only when a miss needs them, HTTP, tenant discovery,
sign-in and the PAT API. Tests build both for real, with their own environment and clock.
"""

from __future__ import annotations

import sys
import time

from git_credential_pat.core import entries, settings as settings_mod
from git_credential_pat.core.constants import TOKEN_CACHE_KEY
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import show
from git_credential_pat.edges import git, system, trace
from git_credential_pat.edges.store import open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractContextManager

    import requests

    from git_credential_pat.core.entries import Item
    from git_credential_pat.core.remote import Org
    from git_credential_pat.core.settings import Settings
    from git_credential_pat.edges.git import Started
    from git_credential_pat.edges.patapi import PatClient
    from git_credential_pat.edges.signin import AccessToken
    from git_credential_pat.edges.store import SecretStore

ITEM_LOCK_SECONDS = 30
SIGNIN_LOCK = "sign-in"
MINT_LOCK_MARGIN = 60  # seconds beyond a sign-in's own bound that a mint may hold its lock
OWED_WORK_SECONDS = 2.0  # the most one request of owed work may cost a git command that waits


def _say_on_stderr(line: str) -> None:
    sys.stderr.write(f"git-credential-pat: {show(line)}\n")
    sys.stderr.flush()


class Runtime:
    """The process's side effects, behind one small object.

    `config_ahead` is a `git config` of the `credential` section already running for a URL
    (`git.start_config_section`), which `settings` for that URL then finishes: git's three
    actions start it before importing the rest of the helper.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        say: Callable[[str], None] | None = None,
        config_ahead: tuple[str, Started] | None = None,
    ) -> None:
        self.environ = system.environ() if environ is None else environ
        self.clock = clock
        self.say = say or _say_on_stderr
        self._stores: dict[tuple[str, str], SecretStore] = {}
        self._config_ahead = config_ahead
        self._read_ahead: tuple[SecretStore, str, str | None] | None = None
        self._reported: set[str] = set()

    def settings(self, url: str, read_ahead: str = "") -> Settings:
        """The settings for a URL, from one `git config` call and the environment.

        While git runs, the OS keyring's item `read_ahead` is read, for `read(..., ahead=True)`
        to answer from if the settings choose that store: `get` then waits for git and the
        Secret Service at once rather than one after the other.
        """
        if self._config_ahead and self._config_ahead[0] == url:
            started, self._config_ahead = self._config_ahead[1], None
        else:
            started = git.start_config_section("credential", url)
        try:
            if read_ahead:
                self._read_keyring_ahead(read_ahead)
        except BaseException:
            started.cancel()
            raise
        loaded = settings_mod.resolve(git.section_values(started.finish()), self.environ)
        git.set_timeout(loaded.git_timeout)
        if loaded.trace:
            from git_credential_pat.edges import trace

            trace.configure(loaded.trace)
        return loaded

    def _read_keyring_ahead(self, key: str) -> None:
        try:
            if settings_mod.from_environ("store", self.environ) == "file":
                return
        except HelperError:
            return  # `settings` says what is wrong with it
        from git_credential_pat.edges.keyringstore import NotReadAhead

        store = self._open("keyring", "")
        try:  # noqa: SIM105 - contextlib would cost the hit path an import
            self._read_ahead = (store, key, store.read_ahead(key))
        except NotReadAhead:
            pass

    def read(self, store: SecretStore, key: str, ahead: bool = False) -> str | None:
        """`store.read(key)`; with `ahead`, the answer read ahead for it (`settings`), once.
        Never `ahead` for a read under the item's lock, which must see the item as it is."""
        found = self._read_ahead
        if ahead and found and found[0] is store and found[1] == key:
            self._read_ahead = None
            value = found[2]
            how = "read while git config ran"
        else:
            value = store.read(key)
            how = "read"
        if trace.enabled():  # the hit path: no message is even formatted when off
            trace.log(f"{key}: {how}, {'no item' if value is None else 'an item'}")
        return value

    def item(self, store: SecretStore, key: str, ahead: bool = False) -> Item:
        """The item under `key` (`read`), parsed; one that is unreadable counts as empty and is
        reported once, with what the next store does about it."""
        def report(why: str) -> None:
            if key not in self._reported:
                self._reported.add(key)
                self.say(f"the stored item {key} is unreadable ({why}); it counts as empty "
                         "and is replaced on the next store")

        return entries.load(self.read(store, key, ahead), report)

    def store(self, settings: Settings) -> SecretStore:
        store = self._open(settings.store, settings.store_file if settings.store == "file" else "")
        store.timeout = settings.store_timeout
        return store

    def _open(self, kind: str, store_file: str) -> SecretStore:
        if (kind, store_file) not in self._stores:
            self._stores[kind, store_file] = open_store(kind, store_file)
        return self._stores[kind, store_file]

    def org(self, org: Org, **overrides: object) -> OrgContext:
        """An organization's context, with `overrides` (a command's options) over its settings."""
        settings = self.settings(org.url).replace(**overrides)
        return OrgContext(self, org, settings, self.store(settings))


def update_item(store: SecretStore, key: str, change: Callable[[Item], bool | None],
                keep_if_empty: bool = False) -> Item:
    """Apply a change to an item as it is now, under its lock, so that a credential another
    process stored meanwhile is kept. A change that returns False leaves the item as it was.
    An item left with no credentials is deleted unless `keep_if_empty` (an organization's item
    remembers its tenant and account)."""
    from git_credential_pat.edges import lock

    with lock.held(f"item:{key}", timeout=ITEM_LOCK_SECONDS):
        item = entries.load(store.read(key))
        if change(item) is False:
            return item
        if item["credentials"] or keep_if_empty:
            store.write(key, entries.dump(item))
        else:
            store.delete(key)
    return item


class StoredTokenCache:
    """msal's token cache kept in the secret store, never in a plaintext file of its own."""

    def __init__(self, store: SecretStore) -> None:
        self.store = store

    def load(self) -> str | None:
        return self.store.read(TOKEN_CACHE_KEY)

    def save(self, text: str) -> None:
        self.store.write(TOKEN_CACHE_KEY, text)


class OrgContext:
    """One organization's work: its settings and store, and the network once it is needed."""

    def __init__(self, runtime: Runtime, org: Org, settings: Settings, store: SecretStore,
                 wwwauth: list[str] | None = None) -> None:
        self.runtime = runtime
        self.org = org
        self.settings = settings
        self.store = store
        self.wwwauth = wwwauth or []  # git's WWW-Authenticate headers, for tenant discovery
        self._http: requests.Session | None = None

    @property
    def key(self) -> str:
        return self.org.url

    def now(self) -> float:
        return self.runtime.clock()

    def say(self, line: str) -> None:
        self.runtime.say(line)

    def item(self, ahead: bool = False) -> Item:
        """The organization's item; `ahead` as for `Runtime.read`."""
        return self.runtime.item(self.store, self.key, ahead)

    def update_item(self, change: Callable[[Item], bool | None]) -> Item:
        return update_item(self.store, self.key, change, keep_if_empty=True)

    def mint_lock(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """The organization's mint lock: one process mints, the others then find its PAT."""
        from git_credential_pat.edges import lock

        wait = self.settings.signin_timeout + MINT_LOCK_MARGIN if timeout is None else timeout
        return lock.held(f"mint:{self.org.name}", timeout=wait)

    def briefly(self) -> OrgContext:
        """This organization for owed work done while git waits on something else (a hit, an
        erase): each request bounded by OWED_WORK_SECONDS, so that a slow service costs git
        seconds at most, and the work is left for later."""
        quick = self.settings.replace(timeout=min(self.settings.timeout, OWED_WORK_SECONDS))
        return OrgContext(self.runtime, self.org, quick, self.store, self.wwwauth)

    def display_name(self) -> str:
        import os
        import platform

        from git_credential_pat.core.policy import display_name

        return display_name(self.org, platform.node() or "this machine",
                            os.path.expanduser("~"), self.store.description)

    # The network, opened on a miss only: these import requests and msal.

    @property
    def http(self) -> requests.Session:
        if self._http is None:
            from git_credential_pat.edges import http

            self.settings = settings_mod.with_http(
                self.settings, git.config_section("http", self.org.url), self.runtime.environ)
            self._http = http.new_session(self.settings)
        return self._http

    def tenant(self, item: Item) -> str:
        """The organization's Entra tenant: pinned, remembered, or asked of the organization."""
        known = self.settings.tenant or entries.org_of(item).get("tenant", "")
        if known:
            return known
        from git_credential_pat.edges import tenant

        session = self.http
        return tenant.discover(self.org.name, session, self.settings.timeout, self.wwwauth,
                               authority_host=self.settings.authority_host)

    def token(self, tenant: str, account: str, interactive: bool, *, claims: str = "",
              refused: str = "", wait: float | None = None) -> AccessToken:
        """An Entra access token for Azure DevOps; one sign-in at a time per user, waiting
        `wait` seconds for another's (by default as long as a sign-in may take). `claims` and
        `refused` as for `SignIn.token`: after the service turned a token down."""
        from git_credential_pat.edges import lock, signin

        session = self.http
        bound = self.settings.signin_timeout + 30 if wait is None else wait
        with lock.held(SIGNIN_LOCK, timeout=bound):
            return signin.SignIn(
                self.settings, session, StoredTokenCache(self.store), self.runtime,
                self.runtime.environ,
            ).token(tenant, account, interactive=interactive,
                    for_what=f"Azure DevOps organization {self.org.name}",
                    login_url=self.org.url, claims=claims, refused=refused)

    def identity_token(self) -> AccessToken:
        """An Entra access token for the machine identity `patIdentity` names: a service
        principal, managed identity or federated workload, never a person, so nothing here
        prompts or touches the store. A tenant nothing names is asked of the organization."""
        from dataclasses import replace

        from git_credential_pat.edges import identity, trace

        session = self.http
        found = identity.resolve(self.settings, self.runtime.environ)
        if found.needs_tenant and not found.tenant:
            found = replace(found, tenant=self.tenant(entries.load(None)))
        trace.log(f"signing in as the {found.label}")
        return identity.token(found, self.settings, self.runtime.environ, session)

    def pats(self, token: AccessToken) -> PatClient:
        from git_credential_pat.edges.patapi import PatClient

        session = self.http
        return PatClient(self.org.name, token.token, session, self.settings.timeout)
