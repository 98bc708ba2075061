"""The fake Microsoft servers, checked with the real clients: requests, msal and git.

Every assertion is about what a client observes (status, headers, bodies, git's exit status and
the repository it leaves behind), plus the fake's ledger where a test needs to know what
reached the server. One server runs for the module; `reset()` gives each test a clean world.
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import json
import shutil
import subprocess
import threading
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msal
import pytest
import requests

from tests.fakeazure import ADO_RESOURCE, MSA_ORG_TENANT, FakeAzure
from tests.fakeazure.fake import VISUAL_STUDIO_CLIENT_ID
from tests.fakeazure.proxy import host_allowed
from tests.gitenv import GitEnv

CLIENT_ID = VISUAL_STUDIO_CLIENT_ID
ADO_SCOPE = f"{ADO_RESOURCE}/.default"
ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"
PATS = "https://vssps.dev.azure.com/contoso/_apis/tokens/pats"
V71 = {"api-version": "7.1-preview.1"}
# Answers `get` with the password in $FAKE_GIT_PASSWORD, like a helper that has a PAT.
GIT_HELPER = ("!f() { test \"$1\" = get && "
              "printf 'username=user\\npassword=%s\\n' \"$FAKE_GIT_PASSWORD\"; }; f")


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAzure]:
    with FakeAzure(tmp_path_factory.mktemp("fakeazure")) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeAzure) -> FakeAzure:
    fake_server.reset()
    return fake_server


@dataclass
class World:
    tenant: str
    org_id: str


@pytest.fixture
def world(fake: FakeAzure) -> World:
    """Contoso: one Entra tenant with Alice and Bob, the organization `contoso`, a repo."""
    tenant = fake.add_tenant()
    fake.add_user(ALICE, tenant, name="Alice Example")
    fake.add_user(BOB, tenant)
    org = fake.add_org("contoso", tenant)
    fake.add_repo("contoso", "Proj", "repo")
    return World(tenant, org.id)


@pytest.fixture
def http(fake: FakeAzure) -> Iterator[requests.Session]:
    with fake.requests_session() as session:
        yield session


def app(fake: FakeAzure, tenant: str) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        CLIENT_ID, authority=f"https://login.microsoftonline.com/{tenant}",
        http_client=fake.requests_session(), http_cache={})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(password: str, user: str = "user") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def create_pat(http: requests.Session, token: str, **body: object) -> requests.Response:
    payload = {"displayName": "test", "scope": "vso.code_write", "allOrgs": False,
               "validTo": _iso(time.time() + 7 * 86400), **body}
    return http.post(PATS, params=V71, json=payload, headers=bearer(token), timeout=10)


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when))


def git(genv: GitEnv, fake: FakeAzure, *args: str, password: str = "",
        cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {**fake.client_env(), "FAKE_GIT_PASSWORD": password}
    return genv.run("git", "-c", "credential.helper=", "-c", f"credential.helper={GIT_HELPER}",
                    *args, extra_env=env, cwd=cwd, check=check)


# -- networking ------------------------------------------------------------------------------


def test_probe_names_the_tenant_in_both_headers(fake: FakeAzure, world: World,
                                                http: requests.Session) -> None:
    for method, url in (("GET", "https://dev.azure.com/contoso"),
                        ("HEAD", "https://dev.azure.com/contoso"),
                        ("GET", "https://contoso.visualstudio.com/")):
        response = http.request(method, url, timeout=10)
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
        assert f"Bearer authorization_uri=https://login.microsoftonline.com/{world.tenant}" \
            in challenge
        assert 'Basic realm="' in challenge
        assert response.headers["X-VSS-ResourceTenant"] == world.tenant
    fake.add_org("personal", MSA_ORG_TENANT)
    msa = http.get("https://dev.azure.com/personal", timeout=10)
    assert msa.status_code == 401
    assert msa.headers["X-VSS-ResourceTenant"] == MSA_ORG_TENANT
    assert msa.headers["WWW-Authenticate"].split(",")[0].strip() == "Bearer"
    assert http.get("https://dev.azure.com/nobody", timeout=10).status_code == 404
    assert [r.step for r in fake.requests] == ["probe"] * 5
    assert {r.auth for r in fake.requests} == {"none"}


def test_proxy_tunnels_only_the_fake_hosts(fake: FakeAzure, world: World,
                                           http: requests.Session) -> None:
    for url in ("https://dev.azure.com.evil.example/contoso", "https://example.com/",
                "https://a.b.visualstudio.com/"):
        with pytest.raises(requests.exceptions.ProxyError):
            http.get(url, headers=basic("secret"), timeout=10)
    assert fake.refused == ["dev.azure.com.evil.example:443", "example.com:443",
                            "a.b.visualstudio.com:443"]
    assert fake.requests == []  # nothing, and no secret, reached any server
    assert host_allowed("contoso.visualstudio.com")
    assert host_allowed("contoso.vssps.visualstudio.com")
    assert not host_allowed(".visualstudio.com")


def test_close_stops_every_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    fake = FakeAzure(tmp_path).start()
    with fake.requests_session() as session:  # keep-alive connections left open on purpose
        for _ in range(3):
            session.get("https://dev.azure.com/x", timeout=10)
        assert len(set(threading.enumerate()) - before) >= 4  # server, proxy, 2 connections
        fake.close()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before:
        assert time.monotonic() < deadline, set(threading.enumerate()) - before
        time.sleep(0.05)
    assert fake.proxy is not None and fake.proxy.active_threads == 0


# -- Entra ID through msal ---------------------------------------------------------------------


@pytest.fixture
def browser(fake: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> Path:
    """BROWSER is the fake browser; webbrowser re-reads it (it caches its choice)."""
    for key, value in fake.client_env(browser=True).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    return fake.browser_log


def test_interactive_sign_in_then_silent_and_refresh(fake: FakeAzure, world: World,
                                                     browser: Path) -> None:
    client = app(fake, world.tenant)
    result = client.acquire_token_interactive([ADO_SCOPE], timeout=20)
    assert "access_token" in result, result
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == ALICE
    assert claims["tid"] == world.tenant and claims["aud"] == CLIENT_ID
    assert "POST http://localhost:" in browser.read_text()
    assert fake.authorize_count == 1 and fake.issued["authorization_code"] == 1
    [account] = client.get_accounts()
    assert account["username"] == ALICE and account["realm"] == world.tenant

    cached = client.acquire_token_silent([ADO_SCOPE], account=account)
    assert cached["access_token"] == result["access_token"]
    assert sum(fake.grants.values()) == 1  # answered from msal's cache, no request

    refreshed = client.acquire_token_silent([ADO_SCOPE], account=account, force_refresh=True)
    assert refreshed["access_token"] != result["access_token"]
    assert fake.issued["refresh_token"] == 1

    assert fake.revoke_refresh_tokens(ALICE) == 2  # the first and the rotated one
    failed = client.acquire_token_silent_with_error([ADO_SCOPE], account=account,
                                                    force_refresh=True)
    assert failed["error"] == "invalid_grant" and "AADSTS50173" in failed["error_description"]


def test_interactive_consent_denied_then_login_hint(fake: FakeAzure, world: World,
                                                    browser: Path) -> None:
    fake.deny_authorize()
    denied = app(fake, world.tenant).acquire_token_interactive([ADO_SCOPE], timeout=20)
    assert denied["error"] == "access_denied"
    hinted = app(fake, world.tenant).acquire_token_interactive(
        [ADO_SCOPE], login_hint=BOB, timeout=20)
    assert hinted["id_token_claims"]["preferred_username"] == BOB


def test_device_flow_at_organizations_signs_in_the_home_tenant(fake: FakeAzure,
                                                               world: World) -> None:
    fake.set_user("organizations", BOB)
    client = app(fake, "organizations")
    flow = client.initiate_device_flow([ADO_SCOPE])
    assert flow["interval"] == 1 and flow["user_code"] in flow["message"]
    result = client.acquire_token_by_device_flow(flow)
    assert result["id_token_claims"]["preferred_username"] == BOB
    assert result["id_token_claims"]["tid"] == world.tenant
    assert fake.grants["device_code"] == 2  # authorization_pending once, then tokens
    assert fake.devicecode_count == 1
    [account] = client.get_accounts()
    assert account["home_account_id"].endswith("." + world.tenant)


@pytest.mark.parametrize(("outcome", "error"), [("deny", "authorization_declined"),
                                                ("expire", "expired_token")])
def test_device_flow_can_be_refused_while_pending(fake: FakeAzure, world: World,
                                                  outcome: str, error: str) -> None:
    client = app(fake, world.tenant)
    flow = client.initiate_device_flow([ADO_SCOPE])
    fake.device_flow(approve_after=0, outcome=outcome)
    result = client.acquire_token_by_device_flow(flow)
    assert result["error"] == error
    assert fake.grants["device_code"] == 1 and fake.issued == {}


def test_a_guest_gets_tokens_for_the_other_tenant_silently(
        fake: FakeAzure, world: World, http: requests.Session) -> None:
    fabrikam = fake.add_tenant()
    fake.add_org("fabrikam", fabrikam)
    fake.add_guest(ALICE, fabrikam)
    fake.device_flow(approve_after=0)
    home = app(fake, world.tenant)
    home.acquire_token_by_device_flow(home.initiate_device_flow([ADO_SCOPE]))
    away = msal.PublicClientApplication(
        CLIENT_ID, authority=f"https://login.microsoftonline.com/{fabrikam}",
        http_client=fake.requests_session(), http_cache={}, token_cache=home.token_cache)
    [account] = away.get_accounts()
    token = away.acquire_token_silent([ADO_SCOPE], account=account)
    assert token["id_token_claims"]["tid"] == fabrikam and fake.issued["refresh_token"] == 1
    created = http.post("https://vssps.dev.azure.com/fabrikam/_apis/tokens/pats", params=V71,
                        headers=bearer(token["access_token"]), timeout=10, json={
                            "displayName": "x", "scope": "vso.code",
                            "validTo": _iso(time.time() + 86400)})
    assert created.json()["patTokenError"] == "none"
    # Bob is no guest there: Entra refuses his refresh token for that tenant.
    fake.set_user(world.tenant, BOB)
    bob_home = app(fake, world.tenant)
    bob_home.acquire_token_by_device_flow(bob_home.initiate_device_flow([ADO_SCOPE]))
    bob_away = msal.PublicClientApplication(
        CLIENT_ID, authority=f"https://login.microsoftonline.com/{fabrikam}",
        http_client=fake.requests_session(), http_cache={}, token_cache=bob_home.token_cache)
    refused = bob_away.acquire_token_silent_with_error(
        [ADO_SCOPE], account=bob_away.get_accounts()[0])
    assert refused["error"] == "invalid_grant" and "AADSTS50020" in refused["error_description"]


def cae_app(fake: FakeAzure, tenant: str) -> msal.PublicClientApplication:
    """An application that declares it can answer claims challenges, as the helper does."""
    return msal.PublicClientApplication(
        CLIENT_ID, authority=f"https://login.microsoftonline.com/{tenant}",
        http_client=fake.requests_session(), http_cache={}, client_capabilities=["CP1"])


def signed_in(fake: FakeAzure, client: msal.PublicClientApplication) -> tuple[str, dict]:
    fake.device_flow(approve_after=0)
    result = client.acquire_token_by_device_flow(client.initiate_device_flow([ADO_SCOPE]))
    return result["access_token"], client.get_accounts()[0]


def test_revoked_sessions_refuse_live_access_tokens_and_refresh_tokens(
        fake: FakeAzure, world: World, http: requests.Session) -> None:
    client = app(fake, world.tenant)
    token, account = signed_in(fake, client)
    fake.revoke_sessions(ALICE)
    refused = http.get(PATS, params=V71, headers=bearer(token), timeout=10)
    assert refused.status_code == 401 and "insufficient_claims" not in str(refused.headers)
    assert refused.headers["X-VSS-ResourceTenant"] == world.tenant
    failed = client.acquire_token_silent_with_error([ADO_SCOPE], account=account,
                                                    force_refresh=True)
    assert failed["error"] == "invalid_grant"
    git_refused = http.get("https://dev.azure.com/contoso/Proj/_git/repo/info/refs",
                           params={"service": "git-upload-pack"}, headers=basic(token),
                           timeout=10)
    assert git_refused.status_code == 401
    fresh, _ = signed_in(fake, app(fake, world.tenant))  # a new sign-in works
    assert http.get(PATS, params=V71, headers=bearer(fresh), timeout=10).status_code == 200


def test_a_cae_event_challenges_a_capable_client_that_refreshes_with_the_claims(
        fake: FakeAzure, world: World, http: requests.Session) -> None:
    client = cae_app(fake, world.tenant)
    token, account = signed_in(fake, client)
    claims = fake.cae_event(ALICE)
    refused = http.get(PATS, params=V71, headers=bearer(token), timeout=10)
    assert refused.status_code == 401
    challenge = refused.headers["WWW-Authenticate"]
    assert 'error="insufficient_claims"' in challenge
    sent = challenge.split('claims="')[1].split('"')[0]
    assert json.loads(base64.b64decode(sent)) == json.loads(claims)
    # A refresh without the claims is not enough; with them, the new token passes.
    plain = client.acquire_token_silent([ADO_SCOPE], account=account, force_refresh=True)
    assert http.get(PATS, params=V71, headers=bearer(plain["access_token"]),
                    timeout=10).status_code == 401
    answered = client.acquire_token_silent([ADO_SCOPE], account=account,
                                           claims_challenge=base64.b64decode(sent).decode())
    assert http.get(PATS, params=V71, headers=bearer(answered["access_token"]),
                    timeout=10).status_code == 200


def test_a_cae_event_refuses_a_client_without_the_capability_with_a_plain_401(
        fake: FakeAzure, world: World, http: requests.Session) -> None:
    token, _ = signed_in(fake, app(fake, world.tenant))
    fake.cae_event(ALICE)
    refused = http.get(PATS, params=V71, headers=bearer(token), timeout=10)
    assert refused.status_code == 401
    assert "insufficient_claims" not in refused.headers["WWW-Authenticate"]


def test_a_moved_organization_names_its_new_tenant_and_drops_its_pats(
        fake: FakeAzure, world: World, http: requests.Session) -> None:
    pat = fake.issue_pat("contoso", ALICE)
    token = fake.issue_access_token(ALICE)
    fabrikam = fake.add_tenant()
    fake.add_guest(ALICE, fabrikam)
    fake.move_org("contoso", fabrikam)
    refused = http.get(PATS, params=V71, headers=bearer(token), timeout=10)
    assert refused.status_code == 401
    assert refused.headers["X-VSS-ResourceTenant"] == fabrikam
    assert fabrikam in refused.headers["WWW-Authenticate"]
    assert fake.live_pats() == [] and fake.pats[0].authorization_id == pat.authorization_id
    guest_token = fake.issue_access_token(ALICE, fabrikam)
    assert http.get(PATS, params=V71, headers=bearer(guest_token), timeout=10).status_code == 200


def test_broken_discovery_reaches_msal(fake: FakeAzure, world: World) -> None:
    fake.fail("openid", status=503, retry_after=7)
    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):
        app(fake, world.tenant)
    assert app(fake, world.tenant).authority.tenant == world.tenant  # one failure only
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        app(fake, "11111111-2222-3333-4444-555555555555")  # no such tenant: HTTP 400
    assert [r.status for r in fake.requests_for("openid")] == [503, 200, 400]


# -- PAT lifecycle API -------------------------------------------------------------------------


def test_pat_create_list_get_update_revoke(fake: FakeAzure, world: World,
                                           http: requests.Session) -> None:
    token = fake.issue_access_token(ALICE)
    created = [create_pat(http, token, displayName=f"pat {i}",
                          validTo=_iso(time.time() + (i + 1) * 86400)) for i in range(3)]
    first = created[0].json()
    assert created[0].status_code == 200 and first["patTokenError"] == "none"
    pat = first["patToken"]
    assert set(pat) == {"authorizationId", "displayName", "scope", "targetAccounts",
                        "validFrom", "validTo", "token"}
    assert len(pat["token"]) == 84 and pat["targetAccounts"] == [world.org_id]
    assert pat["validTo"].endswith("Z")

    page1 = http.get(PATS, params={**V71, "$top": "2", "sortByOption": "displayName"},
                     headers=bearer(token), timeout=10).json()
    assert [p["displayName"] for p in page1["patTokens"]] == ["pat 0", "pat 1"]
    assert page1["continuationToken"]
    assert all(p["token"] is None for p in page1["patTokens"])
    page2 = http.get(PATS, params={**V71, "$top": "2", "sortByOption": "displayName",
                                   "continuationToken": page1["continuationToken"]},
                     headers=bearer(token), timeout=10).json()
    assert [p["displayName"] for p in page2["patTokens"]] == ["pat 2"]
    assert page2["continuationToken"] == ""

    pid = pat["authorizationId"]
    got = http.get(PATS, params={**V71, "authorizationId": pid}, headers=bearer(token),
                   timeout=10).json()
    assert got["patToken"]["displayName"] == "pat 0" and got["patToken"]["token"] is None
    updated = http.put(PATS, params=V71, headers=bearer(token), timeout=10, json={
        "authorizationId": pid, "displayName": "renamed", "scope": "vso.code"}).json()
    assert updated["patTokenError"] == "none"
    assert (updated["patToken"]["displayName"], updated["patToken"]["scope"]) == (
        "renamed", "vso.code")

    revoked = http.delete(PATS, params={**V71, "authorizationId": pid}, headers=bearer(token),
                          timeout=10)
    assert revoked.status_code == 204 and revoked.content == b""
    listed = http.get(PATS, params={**V71, "displayFilterOption": "revoked"},
                      headers=bearer(token), timeout=10).json()
    assert [p["authorizationId"] for p in listed["patTokens"]] == [pid]
    assert fake.minted_count() == 3 and len(fake.live_pats("contoso")) == 2
    assert [r.step for r in fake.requests] == ["pat_create"] * 3 + [
        "pat_list", "pat_list", "pat_get", "pat_update", "pat_revoke", "pat_list"]
    assert {(r.auth, r.credential, r.user) for r in fake.requests} == {
        ("bearer", "entra", ALICE)}


def test_pat_errors_come_in_the_body(fake: FakeAzure, world: World,
                                     http: requests.Session) -> None:
    token = fake.issue_access_token(ALICE)
    fake.policy("contoso", max_lifespan_days=3, forbid_full_scope=True)
    too_long = create_pat(http, token)
    assert too_long.status_code == 200
    assert too_long.json() == {"patToken": None, "patTokenError": "patLifespanPolicyViolation"}
    assert create_pat(http, token, allOrgs=True, validTo=_iso(time.time() + 86400)).json()[
        "patTokenError"] == "globalPatPolicyViolation"
    assert create_pat(http, token, scope="app_token", validTo=_iso(time.time() + 86400)).json()[
        "patTokenError"] == "fullScopePatPolicyViolation"
    assert create_pat(http, token, displayName="").json()["patTokenError"] == \
        "displayNameRequired"

    fake.policy("contoso", disable_creation=True)
    fake.pat_errors_with_status(400)
    refused = create_pat(http, token)
    assert refused.status_code == 400 and refused.json()["patTokenError"] == "accessDenied"
    refused72 = http.post(PATS, params={"api-version": "7.2-preview.1"}, headers=bearer(token),
                          json={"displayName": "x", "scope": "vso.code",
                                "validTo": _iso(time.time() + 86400)}, timeout=10)
    assert refused72.json()["patTokenError"] == "disablePatCreationPolicyViolation"
    assert fake.pats == []


def test_pat_api_wants_a_live_entra_token_of_the_right_tenant(
        fake: FakeAzure, world: World, http: requests.Session) -> None:
    other = fake.add_tenant()
    fake.add_user("mallory@fabrikam.com", other)
    pat = fake.issue_pat("contoso", ALICE)
    refusals = {
        "pat": http.get(PATS, params=V71, headers=basic(pat.token), timeout=10),
        "wrong tenant": http.get(PATS, params=V71, timeout=10,
                                 headers=bearer(fake.issue_access_token("mallory@fabrikam.com"))),
        "graph token": http.get(PATS, params=V71, timeout=10, headers=bearer(
            fake.issue_access_token(ALICE, resource="00000003-0000-0000-c000-000000000000"))),
        "no token": http.get(PATS, params=V71, timeout=10),
    }
    for why, response in refusals.items():
        assert response.status_code == 401, why
        assert "patTokenError" not in response.json(), why
        assert response.headers["X-VSS-ResourceTenant"] == world.tenant, why
    token = fake.issue_access_token(ALICE)
    assert http.get(PATS, params=V71, headers=bearer(token), timeout=10).status_code == 200
    assert http.get(PATS, headers=bearer(token), timeout=10).status_code == 400  # no version
    fake.advance(seconds=3601)
    assert http.get(PATS, params=V71, headers=bearer(token), timeout=10).status_code == 401
    assert [r.credential for r in fake.requests][:2] == ["pat", "entra"]


def test_chunked_request_bodies_are_read(fake: FakeAzure, world: World,
                                         http: requests.Session) -> None:
    body = json.dumps({"displayName": "chunked", "scope": "vso.code",
                       "validTo": _iso(time.time() + 86400)}).encode()
    response = http.post(PATS, params=V71, data=iter([body[:10], body[10:]]), timeout=10,
                         headers={**bearer(fake.issue_access_token(ALICE)),
                                  "Content-Type": "application/json"})
    assert response.json()["patToken"]["displayName"] == "chunked"


# -- faults ------------------------------------------------------------------------------------


def test_faults_apply_to_one_step_a_given_number_of_times(
        fake: FakeAzure, world: World, http: requests.Session) -> None:
    url = "https://dev.azure.com/contoso"
    fake.fail("probe", status=429, retry_after=5, body="<html>sign in</html>",
              content_type="text/html")
    throttled = http.get(url, timeout=10)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "5")
    assert throttled.text == "<html>sign in</html>"
    assert http.get(url, timeout=10).status_code == 401
    fake.fail("probe", retry_after="Wed, 21 Oct 2099 07:28:00 GMT", times=2)
    assert [http.get(url, timeout=10).headers.get("Retry-After") for _ in range(3)] == [
        "Wed, 21 Oct 2099 07:28:00 GMT", "Wed, 21 Oct 2099 07:28:00 GMT", None]

    fake.drop("probe")
    with pytest.raises(requests.ConnectionError):
        http.get(url, timeout=10)

    fake.delay("probe", 0.3)
    started = time.monotonic()
    assert http.get(url, timeout=10).status_code == 401
    assert time.monotonic() - started >= 0.3

    fake.redirect("probe", "https://login.evil.example/steal")
    moved = http.get(url, timeout=10, allow_redirects=False)
    assert (moved.status_code, moved.headers["Location"]) == (
        302, "https://login.evil.example/steal")
    fake.redirect("probe", "https://login.evil.example/steal")
    with pytest.raises(requests.exceptions.ProxyError):
        http.get(url, timeout=10)
    assert fake.refused == ["login.evil.example:443"]
    with pytest.raises(ValueError, match="unknown step"):
        fake.fail("nonsense")


def test_reset_keeps_the_servers(fake: FakeAzure, world: World,
                                 http: requests.Session) -> None:
    port, proxy = fake.port, fake.proxy_url
    fake.issue_pat("contoso", ALICE)
    fake.advance(days=2)
    fake.reset()
    assert (fake.port, fake.proxy_url, fake.offset_seconds) == (port, proxy, 0)
    assert fake.pats == [] and fake.requests == []
    assert http.get("https://dev.azure.com/contoso", timeout=10).status_code == 404


# -- git over smart HTTP -----------------------------------------------------------------------


def test_git_clone_and_push_with_a_minted_pat(fake: FakeAzure, world: World, genv: GitEnv,
                                              http: requests.Session) -> None:
    token = fake.issue_access_token(ALICE)
    pat = create_pat(http, token, scope="vso.code_write").json()["patToken"]["token"]
    url = "https://dev.azure.com/contoso/Proj/_git/repo"
    git(genv, fake, "clone", "-q", url, "work", password=pat)
    work = genv.home / "work"
    assert (work / "README.md").read_text() == "# repo\n"
    (work / "new.txt").write_text("hello\n")
    genv.git("add", "new.txt", cwd=work)
    genv.git("commit", "-qm", "add new.txt", cwd=work)
    git(genv, fake, "push", "-q", "origin", "HEAD:main", password=pat, cwd=work)
    head = genv.git("rev-parse", "HEAD", cwd=work).stdout
    bare = fake.repo_path("contoso", "proj", "REPO")
    assert genv.git("--git-dir", str(bare), "rev-parse", "main").stdout == head
    pushes = [r for r in fake.requests_for("git") if r.path.endswith("/git-receive-pack")]
    assert [(r.status, r.credential, r.user) for r in pushes] == [(200, "pat", ALICE)]

    for other in ("https://contoso.visualstudio.com/Proj/_git/repo",
                  "https://contoso.visualstudio.com/DefaultCollection/Proj/_git/repo"):
        listed = git(genv, fake, "ls-remote", other, "main", password=pat)
        assert listed.stdout.split()[0] == head.strip()


def test_git_refuses_weak_revoked_and_expired_credentials(
        fake: FakeAzure, world: World, genv: GitEnv) -> None:
    url = "https://dev.azure.com/contoso/Proj/_git/repo"
    reader = fake.issue_pat("contoso", ALICE, scope="vso.code", days=1)
    git(genv, fake, "clone", "-q", url, "work", password=reader.token)
    work = genv.home / "work"
    genv.git("commit", "-q", "--allow-empty", "-m", "x", cwd=work)
    push = git(genv, fake, "push", "origin", "HEAD:main", password=reader.token, cwd=work,
               check=False)
    assert push.returncode != 0 and b"403" in push.stderr

    writer = fake.issue_pat("contoso", ALICE, scope="vso.code_full", days=1)
    fake.revoke_pat(writer.authorization_id)
    revoked = git(genv, fake, "ls-remote", url, password=writer.token, check=False)
    assert revoked.returncode != 0 and b"Authentication failed" in revoked.stderr

    fake.advance(days=2)
    expired = git(genv, fake, "ls-remote", url, password=reader.token, check=False)
    assert expired.returncode != 0
    assert fake.requests_for("git")[-1].status == 401


def test_git_accepts_an_entra_token_and_gzip_bodies(fake: FakeAzure, world: World,
                                                    genv: GitEnv, http: requests.Session
                                                    ) -> None:
    url = "https://dev.azure.com/contoso/Proj/_git/repo"
    token = fake.issue_access_token(ALICE)
    listed = git(genv, fake, "ls-remote", url, "main", password=token)
    sha = listed.stdout.split()[0].decode()
    # An upload-pack request the way git sends big ones: gzip-encoded.
    want = f"want {sha}\n"
    request = f"{len(want) + 4:04x}{want}0000" + "0009done\n"
    answer = http.post(f"{url}/git-upload-pack", data=gzip.compress(request.encode()),
                       timeout=10, headers={
                           **basic(token), "Content-Encoding": "gzip",
                           "Content-Type": "application/x-git-upload-pack-request"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert answer.content.startswith(b"0008NAK\nPACK")


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs libfaketime (tests/run)")
def test_a_client_a_year_ahead_shares_the_fake_clock(fake: FakeAzure, world: World,
                                                     genv: GitEnv, http: requests.Session
                                                     ) -> None:
    pat = fake.issue_pat("contoso", ALICE, days=400)
    fake.advance(days=365)
    url = "https://dev.azure.com/contoso/Proj/_git/repo"
    listed = genv.run("faketime", "-f", fake.faketime, "git", "-c", "credential.helper=",
                      "-c", f"credential.helper={GIT_HELPER}", "ls-remote", url, "main",
                      extra_env={**fake.client_env(), "FAKE_GIT_PASSWORD": pat.token})
    assert listed.stdout.endswith(b"\trefs/heads/main\n")  # TLS and the PAT still good
    probe = http.get("https://dev.azure.com/contoso", timeout=10)
    served = email.utils.parsedate_to_datetime(probe.headers["Date"]).timestamp()
    assert abs(served - fake.now()) < 5
