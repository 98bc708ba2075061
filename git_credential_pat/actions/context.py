"""The side effects an action needs, in two small objects built once per process.

`Runtime` is the process: its environment, its clock, where messages for the person go, and
the settings and secret stores it has opened. `OrgContext` is one organization's work: its
settings, its store, its item, and, opened only when a miss needs them, HTTP, tenant discovery,
sign-in and the PAT API. Tests build both for real, with their own environment and clock.
"""

from __future__ import annotations

import os
import sys
import time

from git_credential_pat.core import entries, settings as settings_mod
from git_credential_pat.core.constants import TOKEN_CACHE_KEY
from git_credential_pat.core.redact import show
from git_credential_pat.edges import git
from git_credential_pat.edges.store import open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractContextManager

    import requests

    from git_credential_pat.core.entries import Item
    from git_credential_pat.core.remote import Org
    from git_credential_pat.core.settings import Settings
    from git_credential_pat.edges.patapi import PatClient
    from git_credential_pat.edges.signin import AccessToken
    from git_credential_pat.edges.store import SecretStore

ITEM_LOCK_SECONDS = 30
SIGNIN_LOCK = "sign-in"
MINT_LOCK_MARGIN = 60  # seconds beyond a sign-in's own bound that a mint may hold its lock


def _say_on_stderr(line: str) -> None:
    sys.stderr.write(f"git-credential-pat: {show(line)}\n")
    sys.stderr.flush()


class Runtime:
    """The process's side effects, behind one small object."""

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
        """The settings for a URL, from one `git config` call and the environment."""
        loaded = settings_mod.resolve(git.config_section("credential", url), self.environ)
        git.set_timeout(loaded.git_timeout)
        if loaded.trace:
            from git_credential_pat.edges import trace

            trace.configure(loaded.trace)
        return loaded

    def store(self, settings: Settings) -> SecretStore:
        where = (settings.store, settings.store_file)
        if where not in self._stores:
            self._stores[where] = open_store(*where)
        return self._stores[where]

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

    def item(self) -> Item:
        return entries.load(self.store.read(self.key))

    def update_item(self, change: Callable[[Item], bool | None]) -> Item:
        return update_item(self.store, self.key, change, keep_if_empty=True)

    def mint_lock(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """The organization's mint lock: one process mints, the others then find its PAT."""
        from git_credential_pat.edges import lock

        wait = self.settings.signin_timeout + MINT_LOCK_MARGIN if timeout is None else timeout
        return lock.held(f"mint:{self.org.name}", timeout=wait)

    def display_name(self) -> str:
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

    def token(self, tenant: str, account: str, interactive: bool) -> AccessToken:
        """An Entra access token for Azure DevOps; one sign-in at a time per user."""
        from git_credential_pat.edges import lock, signin

        session = self.http
        with lock.held(SIGNIN_LOCK, timeout=self.settings.signin_timeout + 30):
            return signin.SignIn(
                self.settings, session, StoredTokenCache(self.store), self.runtime,
                self.runtime.environ,
            ).token(tenant, account, interactive=interactive,
                    for_what=f"Azure DevOps organization {self.org.name}",
                    login_url=self.org.url)

    def pats(self, token: AccessToken) -> PatClient:
        from git_credential_pat.edges.patapi import PatClient

        session = self.http
        return PatClient(self.org.name, token.token, session, self.settings.timeout)
