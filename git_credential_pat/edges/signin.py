"""Signing in to Microsoft Entra ID with msal, for an access token to Azure DevOps.

Imported only when a PAT must be minted or an access token is the answer. A refresh token from
an earlier sign-in is tried first, for every cached account that may belong to the tenant (a
refresh token serves each tenant its account is a member or guest of); a person is asked only
when that fails, and only when one can be asked at all: git is often run by IDEs, scripts and
CI with nobody watching, where a browser that never opens or a device code nobody reads would
hang the fetch. The token cache is handed to the caller's storage (the OS keyring), never
written to a file here.

The application declares the `cp1` capability, so Azure DevOps sends a claims challenge
(Continuous Access Evaluation) rather than a bare 401 when an event makes its tokens stale;
`token(claims=...)` answers one, and `refused` drops the token the service turned down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import msal
import requests
from msal.oauth2cli.authcode import AuthCodeReceiver
from msal.oauth2cli.oauth2 import BrowserInteractionTimeoutError

from git_credential_pat.core.constants import AZURE_DEVOPS_SCOPES, MSA_AUTHORITY_TENANT
from git_credential_pat.core.errors import HelperError, SignInRequired
from git_credential_pat.core.redact import printable, secret
from git_credential_pat.core.settings import Settings
from git_credential_pat.edges import http, trace

SCOPES = list(AZURE_DEVOPS_SCOPES)
_CACHE = msal.TokenCache.CredentialType
_ACCOUNT_DATA = (_CACHE.ACCESS_TOKEN, _CACHE.REFRESH_TOKEN, _CACHE.ID_TOKEN, _CACHE.ACCOUNT)
_STILL_WAITING = frozenset({"authorization_pending", "slow_down"})
CAPABILITIES = ["CP1"]  # can answer claims challenges (Continuous Access Evaluation)


@dataclass
class AccessToken:
    token: str
    expires_on: int  # Unix seconds
    account: str  # the UPN that actually signed in
    tenant: str  # the tenant that issued the token


class TokenCacheStorage(Protocol):
    """Where msal's serialized token cache lives between runs (it holds refresh tokens)."""

    def load(self) -> str | None: ...

    def save(self, text: str) -> None: ...


class Prompt(Protocol):
    """Where lines meant for the person go: never stdout, which belongs to git."""

    def say(self, line: str) -> None: ...


class _TraceHandler(logging.Handler):
    """msal's log lines, into the redacting trace; and nothing onto stderr by default."""

    def emit(self, record: logging.LogRecord) -> None:
        trace.log(f"msal: {record.getMessage()}")


def route_msal_logs() -> None:
    logger = logging.getLogger("msal")
    if not any(isinstance(h, _TraceHandler) for h in logger.handlers):
        logger.addHandler(_TraceHandler(logging.INFO))
        logger.propagate = False
    logger.setLevel(logging.INFO if trace.enabled() else logging.WARNING)


def choose_flow(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """How a person can be asked to sign in here: "browser", "device", "broker", or None.

    Decided from the environment alone, with no network, because git waits on it.
    """
    if settings.interactive == "never":
        return None
    if settings.flow == "device":
        return "device" if _terminal(environ) else None
    if settings.flow in ("browser", "broker"):
        return settings.flow
    if _browser(environ):
        return "browser"
    return "device" if _terminal(environ) else None


def _browser(environ: Mapping[str, str]) -> bool:
    """A browser would open where the person is: not over SSH, where it would open on the
    remote machine's console (or nowhere) on every OS, and the loopback redirect could not
    reach the person's own browser."""
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"))


def _terminal(environ: Mapping[str, str]) -> bool:
    """A person is at a terminal: the controlling terminal (or Windows console) opens, and
    git was not told to keep off it (GIT_TERMINAL_PROMPT=0, which IDEs and CI set)."""
    if environ.get("GIT_TERMINAL_PROMPT", "").strip() == "0":
        return False
    try:
        fd = os.open("CONOUT$" if sys.platform == "win32" else "/dev/tty", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


class SignIn:
    """Entra sign-in for one run of the helper, with msal's cache in the caller's storage."""

    def __init__(self, settings: Settings, session: requests.Session, cache: TokenCacheStorage,
                 prompt: Prompt, environ: Mapping[str, str] | None = None) -> None:
        route_msal_logs()
        self.settings = settings
        self.session = session
        self.prompt = prompt
        self.environ = os.environ if environ is None else environ
        self._storage = cache
        self._cache = msal.SerializableTokenCache()
        text = cache.load()
        if text:
            try:
                if isinstance(json.loads(text), dict):
                    self._cache.deserialize(text)
            except ValueError:
                trace.log("the stored sign-in cache is unreadable; starting with an empty one")
        self._host = urlsplit(settings.authority_host).hostname or settings.authority_host

    # -- the token -------------------------------------------------------------------------

    def token(self, tenant: str, account: str = "", *, interactive: bool, for_what: str,
              login_url: str, claims: str = "", refused: str = "") -> AccessToken:
        """An access token to Azure DevOps for `tenant`, silently if the cache allows.

        `refused` is a token the service has just turned down: it is dropped from the cache
        first, so that neither this call nor a later one hands it out again. `claims` is the
        JSON of a claims challenge, which every way of getting the new token passes on.

        Raises `SignInRequired` when a person is needed but `interactive` is False or nobody
        can be asked (`choose_flow` is None); `HelperError` when sign-in fails or is refused.
        """
        step = f"signing in for {for_what}"
        needed = SignInRequired(f"sign-in needed for {for_what}; "
                                f"run: git credential-pat login {login_url}")
        if refused:
            self.forget(refused)
        flow = choose_flow(self.settings, self.environ) if interactive else None
        if flow == "broker":
            _check_broker()
        known, only_one = self._candidates(tenant, account)
        if not known and flow is None:
            raise needed  # nothing to try silently: answer at once, without the network
        try:
            app = self._app(tenant, broker=flow == "broker", step=step)
            result, who = self._silent(app, known, only_one, claims)
            if result is None:
                if flow is None:
                    raise needed
                result, who = self._ask(app, flow, account, for_what, login_url,
                                        claims), account
        except requests.RequestException as error:
            raise http.failure(error, self.settings.authority_host, step, self.session) from None
        except msal.exceptions.MsalServiceError:  # msal's word for a 5xx
            raise HelperError(f"{self._host} is having trouble while {step}; "
                              "try again later") from None
        except ValueError:  # msal found no JSON where it expected some
            raise HelperError(f"{self._host} did not answer like the sign-in service while "
                              f"{step} (is a proxy or portal in the way?)") from None
        finally:
            self._save()
        return self._access_token(result, tenant, who, for_what, login_url)

    def _app(self, tenant: str, broker: bool, step: str) -> msal.PublicClientApplication:
        authority = f"{self.settings.authority_host.rstrip('/')}/{tenant}"
        client = MsalHttp(self.session, self.settings.timeout, step)
        try:
            return msal.PublicClientApplication(
                self.settings.client_id, authority=authority, http_client=client,
                token_cache=self._cache, client_capabilities=CAPABILITIES,
                enable_broker_on_windows=broker, enable_broker_on_mac=broker)
        except ValueError:
            # msal could not read the tenant's OpenID configuration: unknown tenant, or a page
            # that is not the sign-in service (a proxy's).
            raise HelperError(f"{self._host} does not know the tenant {tenant!r}; if it is "
                              "wrong, set credential.patTenant") from None

    def _candidates(self, tenant: str, account: str) -> tuple[set[str], bool]:
        """The cached accounts to try silently, and whether exactly one of them must succeed.

        The account named; else the only one whose home (or realm) is this tenant, and none
        when several are, so that a person picks. When none is, every cached account: one
        may be a guest there, and its refresh token gets the token with no prompt; but only
        if no other account gets one too, since guessing between them is the person's call.
        """
        entries = [e for e in self._cache.search(_CACHE.ACCOUNT)
                   if e.get("environment", "").lower() == self._host.lower()]
        if account:
            found = {e["home_account_id"] for e in entries
                     if e.get("username", "").lower() == account.lower()}
            return found, False
        found = {e["home_account_id"] for e in entries if _belongs(e, tenant)}
        if found:
            return (found, False) if len(found) == 1 else (set(), False)
        return {e["home_account_id"] for e in entries}, True

    def _silent(self, app: msal.PublicClientApplication, known: set[str], only_one: bool,
                claims: str) -> tuple[dict | None, str]:
        """A token from the cache or a refresh token, and whose it is (a token served from
        the cache comes without the id token's claims). With `only_one`, every candidate is
        tried and the answer is None unless exactly one of them got a token."""
        found: list[tuple[dict, str]] = []
        for candidate in app.get_accounts():
            if candidate.get("home_account_id") not in known:
                continue
            result = app.acquire_token_silent_with_error(SCOPES, account=candidate,
                                                         claims_challenge=claims or None)
            if result and "access_token" in result:
                found.append((result, str(candidate.get("username") or "")))
                if not only_one:
                    break
            elif result:
                trace.log(f"silent sign-in failed: {result.get('error')}")
        if len(found) > 1:
            trace.log(f"{len(found)} cached accounts can sign in to this tenant; asking which")
        return found[0] if len(found) == 1 else (None, "")

    def _ask(self, app: msal.PublicClientApplication, flow: str, account: str,
             for_what: str, login_url: str, claims: str) -> dict:
        if flow == "device":
            return self._device(app, account, for_what, login_url, claims)
        if flow == "browser":
            return self._browser(app, account, for_what, login_url, claims)
        self.prompt.say(f"opening the system's sign-in window to sign in for {for_what}"
                        f"{f' as {account}' if account else ''}")
        try:
            with _stdout_to_stderr():
                return app.acquire_token_interactive(
                    SCOPES, login_hint=account or None,
                    prompt=None if account else "select_account",
                    claims_challenge=claims or None,
                    timeout=self.settings.signin_timeout,
                    parent_window_handle=app.CONSOLE_WINDOW_HANDLE)
        except BrowserInteractionTimeoutError:
            raise self._not_completed(for_what, login_url) from None

    def _browser(self, app: msal.PublicClientApplication, account: str, for_what: str,
                 login_url: str, claims: str) -> dict:
        """msal's loopback sign-in, in its parts, so that the person is shown the address
        before the browser is asked to open it: when no browser appears (another screen, a
        remote desktop) they can open it themselves, or choose a device code instead."""
        with AuthCodeReceiver(port=0) as receiver:
            flow = app.initiate_auth_code_flow(
                SCOPES, redirect_uri=f"http://localhost:{receiver.get_port()}",
                login_hint=account or None, prompt=None if account else "select_account",
                claims_challenge=claims or None, response_mode="form_post")
            self.prompt.say(f"opening a browser to sign in for {for_what}"
                            f"{f' as {account}' if account else ''}: {flow['auth_uri']} "
                            "(if none opens, open that address yourself; for a device code "
                            f"instead, press Ctrl+C and run: git credential-pat login "
                            f"--device-code {login_url})")
            with _stdout_to_stderr():
                response = receiver.get_auth_response(
                    auth_uri=flow["auth_uri"], state=flow["state"],
                    timeout=self.settings.signin_timeout,
                    auth_uri_callback=lambda uri: None)  # the address is shown already
        if response is None:
            raise self._not_completed(for_what, login_url)
        return app.acquire_token_by_auth_code_flow(flow, response, scopes=SCOPES)

    def _not_completed(self, for_what: str, login_url: str, device: bool = False
                       ) -> HelperError:
        instead = "" if device else "--device-code "
        return HelperError(f"sign-in for {for_what} was not completed within "
                           f"{self.settings.signin_timeout:.0f} seconds; to try again, run: "
                           f"git credential-pat login {instead}{login_url}")

    def _device(self, app: msal.PublicClientApplication, account: str, for_what: str,
                login_url: str, claims: str) -> dict:
        flow = app.initiate_device_flow(scopes=SCOPES, claims_challenge=claims or None)
        if "user_code" not in flow:
            raise sign_in_failure(flow, for_what, login_url)
        secret(flow.get("device_code"))
        self.prompt.say(f"to sign in for {for_what}{f' as {account}' if account else ''}: "
                        f"{printable(flow['message'])}")
        flow["expires_at"] = min(flow["expires_at"], time.time() + self.settings.signin_timeout)
        result = app.acquire_token_by_device_flow(flow, claims_challenge=claims or None)
        if result.get("error") in _STILL_WAITING:
            raise self._not_completed(for_what, login_url, device=True)
        return result

    def _access_token(self, result: dict, tenant: str, who: str, for_what: str,
                      login_url: str) -> AccessToken:
        for key in ("access_token", "refresh_token", "id_token"):
            secret(result.get(key))
        if "access_token" not in result:
            raise sign_in_failure(result, for_what, login_url)
        claims = result.get("id_token_claims") or {}
        return AccessToken(
            token=result["access_token"],
            expires_on=int(time.time()) + int(result.get("expires_in", 0)),
            account=str(claims.get("preferred_username") or claims.get("upn") or who),
            tenant=str(claims.get("tid") or tenant),
        )

    def _save(self) -> None:
        if self._cache.has_state_changed:
            self._storage.save(self._cache.serialize())

    def forget(self, access_token: str) -> bool:
        """Drop an access token the service refused (or git saw refused) from the cache, so
        that it is never handed out again; the refresh token stays. Offline."""
        doomed = [e for e in self._cache.search(_CACHE.ACCESS_TOKEN)
                  if e.get("secret") == access_token]
        for entry in doomed:
            self._cache.remove_at(entry)
        self._save()
        return bool(doomed)

    # -- for `status` and `logout` ---------------------------------------------------------

    def accounts(self) -> list[str]:
        """The accounts (UPNs) with a cached sign-in, read offline."""
        return sorted({e.get("username", "") for e in self._cache.search(_CACHE.ACCOUNT)} - {""})

    def sign_out(self, account: str | None) -> list[str]:
        """Forget one account's tokens (all accounts' when None); returns the UPNs forgotten.

        Offline: only the local cache changes, as with msal's own `remove_account`.
        """
        chosen = [e for e in self._cache.search(_CACHE.ACCOUNT)
                  if account is None or e.get("username", "").lower() == account.lower()]
        homes = {e["home_account_id"] for e in chosen}
        for kind in _ACCOUNT_DATA:
            for entry in list(self._cache.search(kind)):
                if entry.get("home_account_id") in homes:
                    self._cache.modify(kind, entry)
        self._save()
        return sorted({e.get("username", "") for e in chosen} - {""})


class MsalHttp:
    """The HTTP client msal gets: each request goes through `http.call`, so sign-in rides out
    throttling, 5xx bursts and dropped connections within the time budget like every other
    request (msal itself retries nothing), and then fails with one line naming the step."""

    def __init__(self, session: requests.Session, timeout: float, step: str) -> None:
        self.session, self.timeout, self.step = session, timeout, step

    def get(self, url: str, **kwargs: object) -> requests.Response:
        return self._call("GET", url, kwargs)

    def post(self, url: str, **kwargs: object) -> requests.Response:
        return self._call("POST", url, kwargs)

    def _call(self, method: str, url: str, kwargs: dict[str, object]) -> requests.Response:
        kwargs.pop("timeout", None)  # the time budget is `http.call`'s
        return http.call(self.session, method, url, step=self.step, timeout=self.timeout,
                         **kwargs)

    def close(self) -> None:
        """The session is the caller's and outlives msal's use of it."""


def _belongs(entry: Mapping[str, str], tenant: str) -> bool:
    """Whether a cached account can sign in to `tenant` without asking which account."""
    if tenant == MSA_AUTHORITY_TENANT:
        return True
    home_tenant = entry.get("home_account_id", "").rpartition(".")[2]
    if tenant in (entry.get("realm", "").lower(), home_tenant.lower()):
        return True
    return "." in tenant and entry.get("username", "").lower().endswith(f"@{tenant}")


def sign_in_failure(result: dict, for_what: str, login_url: str = "") -> HelperError:
    """msal's error dict as one line: the error code and the first line of its description,
    where Entra puts the AADSTS code people search for, without the trace and correlation IDs
    that follow it; and, for a person's sign-in, the command that tries again."""
    error = printable(str(result.get("error") or "unknown_error"))[:80]
    lines = str(result.get("error_description") or "").strip().splitlines() or [""]
    detail = printable(lines[0].partition(" Trace ID:")[0].strip())[:240]
    again = ""
    if login_url:
        detail = detail.rstrip(".")
        again = f"; to try again, run: git credential-pat login {login_url}"
    return HelperError(f"sign-in for {for_what} failed: {error}"
                       f"{f': {detail}' if detail else ''}{again}")


def _check_broker() -> None:
    if sys.platform not in ("win32", "darwin"):
        raise HelperError("the broker sign-in works on Windows and macOS only; "
                          "set credential.patFlow to browser or device")
    import importlib.util

    if importlib.util.find_spec("pymsalruntime") is None:
        raise HelperError("the broker sign-in needs pymsalruntime: install it beside "
                          "git-credential-pat (pip install \"msal[broker]\", or "
                          "pipx inject git-credential-pat pymsalruntime)")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Keep a browser launcher's chatter off stdout, which git parses as the answer."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
