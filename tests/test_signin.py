"""`signin`: real msal against the fake Entra ID, through the helper's own HTTP session.

Browser sign-ins run in this process with the fake's browser; device-code sign-ins and the
choice of flow run as their own processes, at a pseudo-terminal or with no terminal at all,
because whether a person can be asked depends on the process's controlling terminal.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import requests

from git_credential_pat.core.errors import HelperError, SignInRequired
from git_credential_pat.core.settings import Settings
from git_credential_pat.edges import trace
from git_credential_pat.edges.patapi import PatClient
from git_credential_pat.edges.signin import AccessToken, SignIn
from tests.fakeazure import MSA_ORG_TENANT, FakeAzure
from tests.netfixtures import (
    ALICE,
    BOB,
    FOR_WHAT,
    ORG,
    ORG_URL,
    Contoso,
    Lines,
    MemoryCache,
    headless_env,
    run_python,
    settings_for,
)

NEEDED = f"sign-in needed for {FOR_WHAT}; run: git credential-pat login {ORG_URL}"
OPENING = f"opening a browser to sign in for {FOR_WHAT}"
AGAIN = f"; to try again, run: git credential-pat login {ORG_URL}"
DEVICE_INSTEAD = ("(if none opens, open that address yourself; for a device code instead, "
                  f"press Ctrl+C and run: git credential-pat login --device-code {ORG_URL})")


def assert_opening(said: list[str], azure: FakeAzure, tenant: str, account: str = "") -> None:
    """One line: that a browser opens, the address it opens (the one the browser asked Entra
    for), and what to do when none appears."""
    [line] = said
    head = f"{OPENING}{f' as {account}' if account else ''}: "
    assert line.startswith(head) and line.endswith(" " + DEVICE_INSTEAD), line
    address = line[len(head):-len(DEVICE_INSTEAD) - 1]
    authorize = azure.requests_for("authorize")[-1]
    assert address == (f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize?"
                       f"{authorize.query}")


def sign_in(settings: Settings, session: requests.Session, cache: MemoryCache,
            environ: dict[str, str], tenant: str, account: str = "", *,
            interactive: bool = True, prompt: Lines | None = None) -> AccessToken:
    return SignIn(settings, session, cache, prompt or Lines(), environ).token(
        tenant, account, interactive=interactive, for_what=FOR_WHAT, login_url=ORG_URL)


def expire_access_tokens(cache: MemoryCache) -> None:
    """What an hour does to msal's cache: the access tokens are past their expiry."""
    data = json.loads(cache.text or "{}")
    for entry in data.get("AccessToken", {}).values():
        entry["expires_on"] = entry["extended_expires_on"] = str(int(time.time()) - 60)
    cache.text = json.dumps(data)


# -- browser -------------------------------------------------------------------------------


def test_browser_sign_in_then_silent(azure: FakeAzure, contoso: Contoso, settings: Settings,
                                     session: requests.Session, browser: dict[str, str],
                                     capfd: pytest.CaptureFixture[str]) -> None:
    cache, lines = MemoryCache(), Lines()
    token = sign_in(settings, session, cache, browser, contoso.tenant, prompt=lines)
    assert (token.account, token.tenant) == (ALICE, contoso.tenant)
    assert abs(token.expires_on - (time.time() + 3600)) < 30
    assert_opening(lines.said, azure, contoso.tenant)
    assert capfd.readouterr().out == ""
    assert (azure.authorize_count, cache.saves) == (1, 1)
    assert "prompt=select_account" in azure.requests_for("authorize")[0].query
    PatClient(ORG, token.token, session, 10).create("works", "vso.code", int(time.time()) + 600)

    again = sign_in(settings, session, cache, {}, contoso.tenant, interactive=False)
    assert (again.token, again.account, again.tenant) == (token.token, ALICE, contoso.tenant)
    assert (azure.authorize_count, sum(azure.grants.values()), cache.saves) == (1, 1, 1)


def test_an_expired_access_token_is_refreshed_without_a_person(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    cache = MemoryCache()
    first = sign_in(settings, session, cache, browser, contoso.tenant)
    expire_access_tokens(cache)
    lines = Lines()
    again = sign_in(settings, session, cache, {}, contoso.tenant, interactive=False,
                    prompt=lines)
    assert again.token != first.token and again.account == ALICE
    assert (azure.issued["refresh_token"], azure.authorize_count, lines.said) == (1, 1, [])
    assert cache.saves == 2  # the rotated refresh token is kept


def test_a_revoked_sign_in_asks_again_only_when_allowed(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    cache = MemoryCache()
    sign_in(settings, session, cache, browser, contoso.tenant)
    azure.revoke_refresh_tokens(ALICE)
    expire_access_tokens(cache)
    with pytest.raises(SignInRequired) as caught:
        sign_in(settings, session, cache, browser, contoso.tenant, interactive=False)
    assert str(caught.value) == NEEDED
    lines = Lines()
    token = sign_in(settings, session, cache, browser, contoso.tenant, ALICE, prompt=lines)
    assert token.account == ALICE and azure.authorize_count == 2
    assert_opening(lines.said, azure, contoso.tenant, ALICE)
    assert f"login_hint={ALICE.replace('@', '%40')}" in azure.requests_for("authorize")[-1].query


def test_with_two_accounts_the_named_one_is_used_and_none_is_guessed(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    cache = MemoryCache()
    sign_in(settings, session, cache, browser, contoso.tenant, ALICE)
    assert sign_in(settings, session, cache, browser, contoso.tenant, BOB).account == BOB
    assert SignIn(settings, session, cache, Lines(), {}).accounts() == [ALICE, BOB]

    silent = sign_in(settings, session, cache, {}, contoso.tenant, "Bob@Contoso.com",
                     interactive=False)
    assert silent.account == BOB and azure.authorize_count == 2
    with pytest.raises(SignInRequired):
        sign_in(settings, session, cache, {}, contoso.tenant, interactive=False)
    sign_in(settings, session, cache, browser, contoso.tenant)
    assert azure.authorize_count == 3  # asked, with the account picker
    assert "prompt=select_account" in azure.requests_for("authorize")[-1].query


def test_one_sign_in_serves_an_organization_where_the_account_is_a_guest(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    fabrikam = azure.add_tenant()
    azure.add_org("fabrikam", fabrikam)
    azure.state.users[ALICE].guest_in.add(fabrikam)
    cache = MemoryCache()
    sign_in(settings, session, cache, browser, contoso.tenant)
    token = sign_in(settings, session, cache, {}, fabrikam, ALICE, interactive=False)
    assert (token.account, token.tenant) == (ALICE, fabrikam)
    assert azure.authorize_count == 1
    PatClient("fabrikam", token.token, session, 10).create("x", "vso.code",
                                                           int(time.time()) + 600)


def test_a_guest_tenant_needs_no_second_sign_in_even_with_no_account_named(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    fabrikam = azure.add_tenant()
    azure.add_org("fabrikam", fabrikam)
    azure.add_guest(ALICE, fabrikam)
    cache = MemoryCache()
    sign_in(settings, session, cache, browser, contoso.tenant)
    token = sign_in(settings, session, cache, {}, fabrikam, interactive=False)
    assert (token.account, token.tenant, azure.authorize_count) == (ALICE, fabrikam, 1)


def test_two_accounts_that_could_both_serve_a_guest_tenant_are_not_guessed_between(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    fabrikam = azure.add_tenant()
    azure.add_guest(ALICE, fabrikam)
    cache = MemoryCache()
    sign_in(settings, session, cache, browser, contoso.tenant, ALICE)
    sign_in(settings, session, cache, browser, contoso.tenant, BOB)
    # An account that is no guest there is tried and skipped.
    assert sign_in(settings, session, cache, {}, fabrikam, interactive=False).account == ALICE
    azure.add_guest(BOB, fabrikam)
    with pytest.raises(SignInRequired):
        sign_in(settings, session, cache, {}, fabrikam, interactive=False)


def test_a_refused_token_is_dropped_and_replaced_without_a_person(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    cache = MemoryCache()
    first = sign_in(settings, session, cache, browser, contoso.tenant)
    assert first.token in (cache.text or "")
    again = SignIn(settings, session, cache, Lines(), {}).token(
        contoso.tenant, ALICE, interactive=False, for_what=FOR_WHAT, login_url=ORG_URL,
        refused=first.token)
    assert again.token != first.token and first.token not in (cache.text or "")
    assert (azure.issued["refresh_token"], azure.authorize_count) == (1, 1)


def test_a_claims_challenge_is_answered_from_the_refresh_token(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    cache = MemoryCache()
    first = sign_in(settings, session, cache, browser, contoso.tenant)
    claims = azure.cae_event(ALICE)
    client = PatClient(ORG, first.token, session, 10)
    with pytest.raises(HelperError):
        list(client.list())
    again = SignIn(settings, session, cache, Lines(), {}).token(
        contoso.tenant, ALICE, interactive=False, for_what=FOR_WHAT, login_url=ORG_URL,
        claims=claims, refused=first.token)
    list(PatClient(ORG, again.token, session, 10).list())  # accepted
    assert azure.authorize_count == 1


def test_revoked_sessions_need_a_person_again(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str]) -> None:
    cache = MemoryCache()
    first = sign_in(settings, session, cache, browser, contoso.tenant)
    azure.revoke_sessions(ALICE)
    with pytest.raises(SignInRequired) as caught:
        SignIn(settings, session, cache, Lines(), {}).token(
            contoso.tenant, ALICE, interactive=False, for_what=FOR_WHAT, login_url=ORG_URL,
            refused=first.token)
    assert str(caught.value) == NEEDED
    assert first.token not in (cache.text or "")  # not handed out again by a later call
    lines = Lines()
    token = sign_in(settings, session, cache, browser, contoso.tenant, ALICE, prompt=lines)
    list(PatClient(ORG, token.token, session, 10).list())
    assert azure.authorize_count == 2
    assert_opening(lines.said, azure, contoso.tenant, ALICE)


def test_forget_drops_only_that_access_token(azure: FakeAzure, contoso: Contoso,
                                             settings: Settings, session: requests.Session,
                                             browser: dict[str, str]) -> None:
    cache = MemoryCache()
    first = sign_in(settings, session, cache, browser, contoso.tenant)
    sign = SignIn(settings, session, cache, Lines(), {})
    assert not sign.forget("eyJ.not.cached")
    assert sign.forget(first.token)
    assert first.token not in (cache.text or "") and cache.refresh_tokens()


def test_a_microsoft_account_organization(azure: FakeAzure, contoso: Contoso,
                                          settings: Settings, session: requests.Session,
                                          browser: dict[str, str]) -> None:
    azure.add_org("personal", MSA_ORG_TENANT)
    cache = MemoryCache()
    token = sign_in(settings, session, cache, browser, "organizations")
    assert (token.account, token.tenant) == (ALICE, contoso.tenant)
    again = sign_in(settings, session, cache, {}, "organizations", interactive=False)
    assert again.account == ALICE and azure.authorize_count == 1


def test_consent_refused_in_the_browser(azure: FakeAzure, contoso: Contoso, settings: Settings,
                                        session: requests.Session,
                                        browser: dict[str, str]) -> None:
    azure.deny_authorize()
    with pytest.raises(HelperError) as caught:
        sign_in(settings, session, MemoryCache(), browser, contoso.tenant)
    assert str(caught.value) == (f"sign-in for {FOR_WHAT} failed: access_denied: AADSTS65004: "
                                 f"User declined to consent to access the app{AGAIN}")


def test_a_browser_nobody_uses_times_out(azure: FakeAzure, contoso: Contoso,
                                         session: requests.Session, browser: dict[str, str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", "true %s")
    settings = settings_for(azure, signin_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(HelperError) as caught:
        sign_in(settings, session, MemoryCache(), browser, contoso.tenant)
    assert str(caught.value) == (f"sign-in for {FOR_WHAT} was not completed within 2 seconds; "
                                 "to try again, run: git credential-pat login --device-code "
                                 f"{ORG_URL}")
    assert time.monotonic() - started < 10


def test_a_browser_launcher_s_output_stays_off_git_s_stdout(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    chatty = tmp_path / "chatty-browser"
    chatty.write_text(f'#!/bin/sh\necho "Opening in existing browser session."\n'
                      f'exec {browser["BROWSER"].replace("%s", chr(34) + "$1" + chr(34))}\n')
    chatty.chmod(0o755)
    monkeypatch.setenv("BROWSER", f"{chatty} %s")
    assert sign_in(settings, session, MemoryCache(), browser, contoso.tenant).account == ALICE
    output = capfd.readouterr()
    assert output.out == ""
    assert "Opening in existing browser session." in output.err


def test_tokens_stay_out_of_the_trace_and_the_prompt(
        azure: FakeAzure, contoso: Contoso, settings: Settings, session: requests.Session,
        browser: dict[str, str], tmp_path: Path) -> None:
    log, cache, lines = tmp_path / "trace.log", MemoryCache(), Lines()
    trace.configure(str(log))
    try:
        token = sign_in(settings, session, cache, browser, contoso.tenant, prompt=lines)
    finally:
        trace.configure("")
    text = log.read_text()
    assert "msal:" in text  # msal's own log lines are traced, through the redaction
    assert "POST login.microsoftonline.com/" in text
    secrets = [token.token, *cache.refresh_tokens()]
    assert len(secrets) == 2
    assert all(secret not in text and secret not in lines.text for secret in secrets)


# -- failing fast ----------------------------------------------------------------------------


def test_never_signed_in_and_not_interactive_answers_at_once(
        azure: FakeAzure, contoso: Contoso, settings: Settings,
        session: requests.Session) -> None:
    started = time.monotonic()
    with pytest.raises(SignInRequired) as caught:
        sign_in(settings, session, MemoryCache(), {"DISPLAY": ":0"}, contoso.tenant,
                interactive=False)
    assert time.monotonic() - started < 0.5
    assert str(caught.value) == NEEDED
    assert azure.requests == []


def test_nobody_to_ask_answers_at_once(azure: FakeAzure, contoso: Contoso,
                                       settings: Settings, session: requests.Session) -> None:
    with pytest.raises(SignInRequired, match=f"^{NEEDED}$"):
        sign_in(settings, session, MemoryCache(), headless_env(GIT_TERMINAL_PROMPT="0"),
                contoso.tenant)
    assert azure.requests == []


def test_interactive_never_answers_at_once(azure: FakeAzure, contoso: Contoso,
                                           session: requests.Session,
                                           browser: dict[str, str]) -> None:
    settings = settings_for(azure, interactive="never")
    with pytest.raises(SignInRequired, match=f"^{NEEDED}$"):
        sign_in(settings, session, MemoryCache(), browser, contoso.tenant)
    assert azure.requests == []


def test_an_unknown_tenant(azure: FakeAzure, contoso: Contoso, settings: Settings,
                           session: requests.Session, browser: dict[str, str]) -> None:
    unknown = "8a9f1c2e-0000-4000-8000-000000000001"
    with pytest.raises(HelperError) as caught:
        sign_in(settings, session, MemoryCache(), browser, unknown)
    assert str(caught.value) == (f"login.microsoftonline.com does not know the tenant "
                                 f"'{unknown}'; if it is wrong, set credential.patTenant")


def test_entra_out_of_reach(azure: FakeAzure, contoso: Contoso, settings: Settings,
                            session: requests.Session, browser: dict[str, str]) -> None:
    azure.drop("openid", times=5)
    with pytest.raises(HelperError) as caught:
        sign_in(settings, session, MemoryCache(), browser, contoso.tenant)
    assert str(caught.value) == (
        "cannot reach login.microsoftonline.com through the proxy 127.0.0.1 (http.proxy) "
        f"while signing in for {FOR_WHAT}; check the proxy and the network")


def test_entra_in_trouble(azure: FakeAzure, contoso: Contoso, settings: Settings,
                          session: requests.Session, browser: dict[str, str]) -> None:
    azure.fail("openid", 503, times=4)  # one more than the retries
    with pytest.raises(HelperError) as caught:
        sign_in(settings, session, MemoryCache(), browser, contoso.tenant)
    assert str(caught.value) == (f"login.microsoftonline.com is having trouble (HTTP 503) while "
                                 f"signing in for {FOR_WHAT}; try again later")


def test_a_portal_page_instead_of_entra(azure: FakeAzure, contoso: Contoso, settings: Settings,
                                        session: requests.Session,
                                        browser: dict[str, str]) -> None:
    cache = MemoryCache()
    sign_in(settings, session, cache, browser, contoso.tenant)
    expire_access_tokens(cache)
    azure.fail("token", 200, body="<html>Captive portal</html>", content_type="text/html")
    with pytest.raises(HelperError) as caught:
        sign_in(settings, session, cache, {}, contoso.tenant, interactive=False)
    assert str(caught.value) == (f"login.microsoftonline.com did not answer like the sign-in "
                                 f"service while signing in for {FOR_WHAT} (is a proxy or "
                                 "portal in the way?)")


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the broker exists there")
def test_the_broker_elsewhere_says_what_works(azure: FakeAzure, contoso: Contoso,
                                              session: requests.Session) -> None:
    settings = settings_for(azure, flow="broker")
    with pytest.raises(HelperError) as caught:
        sign_in(settings, session, MemoryCache(), {}, contoso.tenant)
    assert str(caught.value) == ("the broker sign-in works on Windows and macOS only; set "
                                 "credential.patFlow to browser or device")
    assert azure.requests == []


# -- the cache, for `status` and `logout` ----------------------------------------------------


def test_sign_out(azure: FakeAzure, contoso: Contoso, settings: Settings,
                  session: requests.Session, browser: dict[str, str]) -> None:
    cache = MemoryCache()
    sign_in(settings, session, cache, browser, contoso.tenant, ALICE)
    sign_in(settings, session, cache, browser, contoso.tenant, BOB)
    requests_before = len(azure.requests)
    assert SignIn(settings, session, cache, Lines(), {}).sign_out("ALICE@contoso.com") == [ALICE]
    assert SignIn(settings, session, cache, Lines(), {}).accounts() == [BOB]
    assert len(cache.refresh_tokens()) == 1
    assert len(azure.requests) == requests_before  # signing out needs no network
    with pytest.raises(SignInRequired):
        sign_in(settings, session, cache, {}, contoso.tenant, ALICE, interactive=False)
    assert sign_in(settings, session, cache, {}, contoso.tenant, interactive=False).account == BOB
    assert SignIn(settings, session, cache, Lines(), {}).sign_out(None) == [BOB]
    assert cache.refresh_tokens() == []


def test_an_unreadable_cache_means_signing_in_again(azure: FakeAzure, contoso: Contoso,
                                                    settings: Settings,
                                                    session: requests.Session) -> None:
    for text in ("not json", "[]", '{"AccessToken": '):
        cache = MemoryCache(text)
        with pytest.raises(SignInRequired):
            sign_in(settings, session, cache, {}, contoso.tenant, interactive=False)
        assert SignIn(settings, session, cache, Lines(), {}).accounts() == []


# -- device code and the choice of flow, in processes of their own -------------------------

DEVICE_CHILD = """
import json, os, sys
from git_credential_pat.core.settings import Settings
from git_credential_pat.edges.signin import SignIn
from git_credential_pat.edges.http import new_session
from git_credential_pat.core.errors import HelperError

os.dup2(os.open(os.environ["PROMPT_FILE"], os.O_WRONLY | os.O_CREAT), 2)

class Prompt:
    def say(self, line):
        sys.stderr.write(line + "\\n")

class Cache:
    def load(self):
        return None
    def save(self, text):
        open(os.environ["CACHE_FILE"], "w").write(text)

settings = Settings(proxy=os.environ["FAKE_PROXY"], ca_file=os.environ["FAKE_CA"],
                    timeout=10.0, signin_timeout=float(os.environ["SIGNIN_TIMEOUT"]))
try:
    token = SignIn(settings, new_session(settings), Cache(), Prompt()).token(
        os.environ["TENANT"], interactive=True, for_what="Azure DevOps organization contoso",
        login_url="https://dev.azure.com/contoso")
    print(json.dumps({"account": token.account, "tenant": token.tenant}))
except HelperError as error:
    print(json.dumps({"error": str(error)}))
"""


def device_sign_in(azure: FakeAzure, tenant: str, tmp_path: Path, timeout: float = 20
                   ) -> tuple[dict[str, str], str, Path]:
    prompt, cache = tmp_path / "prompt", tmp_path / "cache"
    env = headless_env(FAKE_PROXY=azure.proxy_url, FAKE_CA=str(azure.ca_path), TENANT=tenant,
                       PROMPT_FILE=str(prompt), CACHE_FILE=str(cache),
                       SIGNIN_TIMEOUT=str(timeout))
    done = run_python(DEVICE_CHILD, env, tty=True)
    assert done.returncode == 0, done
    return json.loads(done.stdout), prompt.read_text(), cache


def test_device_code_at_a_terminal_with_no_browser(azure: FakeAzure, contoso: Contoso,
                                                   settings: Settings,
                                                   session: requests.Session,
                                                   tmp_path: Path) -> None:
    azure.device_flow(approve_after=1, interval=1)
    result, prompt, cache_file = device_sign_in(azure, contoso.tenant, tmp_path)
    assert result == {"account": ALICE, "tenant": contoso.tenant}  # and nothing else on stdout
    assert prompt.startswith(f"to sign in for {FOR_WHAT}: To sign in, use a web browser to open "
                             "the page https://microsoft.com/devicelogin and enter the code ")
    assert prompt.count("\n") == 1
    assert azure.devicecode_count == 1 and azure.authorize_count == 0
    cache = MemoryCache(cache_file.read_text())
    again = sign_in(settings, session, cache, {}, contoso.tenant, interactive=False)
    assert again.account == ALICE


@pytest.mark.parametrize(("outcome", "message"), [
    ("deny", "authorization_declined: AADSTS70000: The user denied the authorization "
             f"request{AGAIN}"),
    ("expire", "expired_token: AADSTS70020: The provided authorization code or refresh token "
               "has expired. Send a new interactive authorization request for this user and "
               f"resource{AGAIN}"),
])
def test_device_code_refused(azure: FakeAzure, contoso: Contoso, tmp_path: Path, outcome: str,
                             message: str) -> None:
    azure.device_flow(approve_after=0, outcome=outcome)
    result, _, _ = device_sign_in(azure, contoso.tenant, tmp_path)
    assert result == {"error": f"sign-in for {FOR_WHAT} failed: {message}"}


def test_device_code_nobody_enters_is_bounded_by_the_sign_in_timeout(
        azure: FakeAzure, contoso: Contoso, tmp_path: Path) -> None:
    azure.device_flow(approve_after=1000, interval=1)
    started = time.monotonic()
    result, _, _ = device_sign_in(azure, contoso.tenant, tmp_path, timeout=2)
    assert result == {"error": f"sign-in for {FOR_WHAT} was not completed within 2 seconds"
                               f"{AGAIN}"}
    assert time.monotonic() - started < 8


FLOW_CHILD = """
import json, os, time
from git_credential_pat.core.settings import Settings
from git_credential_pat.edges.signin import choose_flow
answers, slowest = {}, 0.0
for name, values in [("auto", {}), ("never", {"interactive": "never"}),
                     ("device", {"flow": "device"}), ("browser", {"flow": "browser"}),
                     ("broker", {"flow": "broker"})]:
    started = time.perf_counter()
    answers[name] = choose_flow(Settings(**values), os.environ)
    slowest = max(slowest, time.perf_counter() - started)
print(json.dumps({"answers": answers, "slowest": slowest}))
"""
ALL_ASKED = {"never": None, "browser": "browser", "broker": "broker"}


@pytest.mark.parametrize(("tty", "extra", "auto", "device"), [
    (False, {}, None, None),
    (True, {}, "device", "device"),
    (True, {"GIT_TERMINAL_PROMPT": "0"}, None, None),
    (False, {"DISPLAY": ":0"}, "browser", None),
    (False, {"WAYLAND_DISPLAY": "wayland-0"}, "browser", None),
    (False, {"BROWSER": "firefox"}, "browser", None),
    (True, {"DISPLAY": ":0"}, "browser", "device"),
    (False, {"DISPLAY": ":0", "GIT_TERMINAL_PROMPT": "0"}, "browser", None),
    (True, {"DISPLAY": ":0", "SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}, "device", "device"),
    (True, {"BROWSER": "firefox", "SSH_TTY": "/dev/pts/3"}, "device", "device"),
    (False, {"DISPLAY": ":0", "SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}, None, None),
])
@pytest.mark.skipif(sys.platform != "linux", reason="desktops elsewhere always have a browser")
def test_choose_flow(tty: bool, extra: dict[str, str], auto: str | None,
                     device: str | None) -> None:
    done = run_python(FLOW_CHILD, headless_env(**extra), tty=tty)
    assert done.returncode == 0, done
    result = json.loads(done.stdout)
    assert result["answers"] == {"auto": auto, "device": device, **ALL_ASKED}
    assert result["slowest"] < 0.01


@pytest.mark.parametrize(("ssh", "auto"), [({}, "browser"), ({"SSH_TTY": "/dev/pts/3"}, "device"),
                                           ({"SSH_CONNECTION": "10.0.0.2 5 10.0.0.1 22"},
                                            "device")])
@pytest.mark.skipif(sys.platform != "linux", reason="pretends to be macOS on Linux")
def test_over_ssh_macos_and_windows_choose_a_device_code_too(
        ssh: dict[str, str], auto: str) -> None:
    """Their desktops always have a browser, but over SSH it is on the remote console. Only
    the decision is checked, made at a real terminal by a process that says it is macOS
    (Windows takes the same branch; its console would be CONOUT$)."""
    child = FLOW_CHILD.replace("answers, slowest", "import sys; sys.platform = 'darwin'\n"
                               "answers, slowest", 1)
    done = run_python(child, headless_env(**ssh), tty=True)
    assert done.returncode == 0, done
    assert json.loads(done.stdout)["answers"]["auto"] == auto
