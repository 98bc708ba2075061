"""The fake's sign-ins without a person, checked with the real clients: msal's confidential
client and managed-identity client, requests and git.

Each grant is shown to work the way msal uses it, and to refuse what Entra refuses, with the
AADSTS code Entra gives: a wrong or expired secret, an assertion signed by the wrong key or
for the wrong audience, an expired or untrusted federated token. Tokens for applications
open git but not the PAT API, which only users may use.
"""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.azurefixtures import REPO_URL
from tests.fakeazure import ADO_RESOURCE, FakeAzure
from tests.fakeazure.identities import ACTIONS_ISSUER
from tests.fakeazure.state import FEDERATION_AUDIENCE, App
from tests.fakeazure.tokens import Issuer, make_client_certificate, thumbprints
from tests.gitenv import GitEnv
from tests.netfixtures import Contoso
from tests.test_fakeazure import PATS, V71, git

SCOPES = [f"{ADO_RESOURCE}/.default"]
AKS_ISSUER = "https://oidc.prod-aks.azure.com/6a8b5f6c-0000-4000-8000-000000000001/"
AKS_SUBJECT = "system:serviceaccount:ci:mirror"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def confidential(azure: FakeAzure, app: App, credential: object,
                 tenant: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        app.client_id, client_credential=credential,
        authority=f"https://login.microsoftonline.com/{tenant or app.tenant}",
        http_client=azure.requests_session(), http_cache={})


def error_code(result: dict) -> str:
    return str(result.get("error_description", "")).split(":")[0]


def works_for_git_not_for_pats(azure: FakeAzure, genv: GitEnv, token: str) -> None:
    """What an application's token is good for: git, yes; creating a PAT, no."""
    listed = git(genv, azure, "ls-remote", REPO_URL, "main", password=token)
    assert listed.stdout.endswith(b"\trefs/heads/main\n")
    with azure.requests_session() as http:
        refused = http.post(PATS, params=V71, timeout=10, json={
            "displayName": "x", "scope": "vso.code", "allOrgs": False,
            "validTo": "2030-01-01T00:00:00Z"}, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and "cannot manage personal access tokens" in refused.text
    assert azure.pats == []


@pytest.fixture
def repo(azure: FakeAzure, contoso: Contoso) -> None:
    azure.add_repo("contoso", "proj", "repo")


# -- client secret ---------------------------------------------------------------------------


def test_a_service_principal_signs_in_with_its_secret(azure: FakeAzure, contoso: Contoso,
                                                      repo: None, genv: GitEnv) -> None:
    app = azure.add_service_principal(contoso.tenant, secret="s3cret-value")
    result = confidential(azure, app, "s3cret-value").acquire_token_for_client(SCOPES)
    assert "refresh_token" not in result and "id_token" not in result
    assert result["expires_in"] == 3600
    token = result["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["appid"], claims["idtyp"], claims["tid"]) == (app.client_id, "app",
                                                                 contoso.tenant)
    works_for_git_not_for_pats(azure, genv, token)
    assert azure.requests_for("git")[-1].user == app.client_id


@pytest.mark.parametrize(("case", "code"), [
    ("wrong secret", "AADSTS7000215"),
    ("expired secret", "AADSTS7000222"),
    ("other tenant", "AADSTS700016"),
    ("meta tenant", "AADSTS50059"),
])
@pytest.mark.filterwarnings("ignore:Using /common or /organizations authority")
def test_secrets_entra_refuses(azure: FakeAzure, contoso: Contoso, case: str,
                               code: str) -> None:
    app = azure.add_service_principal(contoso.tenant, secret="right")
    azure.add_client_secret(app.client_id, "old", days=-1)
    secret, tenant = {"wrong secret": ("wrong", None), "expired secret": ("old", None),
                      "other tenant": ("right", azure.add_tenant()),
                      "meta tenant": ("right", "organizations")}[case]
    result = confidential(azure, app, secret, tenant).acquire_token_for_client(SCOPES)
    assert "access_token" not in result and error_code(result) == code


def test_client_credentials_want_a_resource_default_scope(azure: FakeAzure,
                                                         contoso: Contoso) -> None:
    app = azure.add_service_principal(contoso.tenant, secret="right")
    result = confidential(azure, app, "right").acquire_token_for_client(
        [f"{ADO_RESOURCE}/vso.code"])
    assert error_code(result) == "AADSTS1002012"
    with azure.requests_session() as http:
        bare = http.post(f"https://login.microsoftonline.com/{contoso.tenant}/oauth2/v2.0/token",
                         data={"grant_type": "client_credentials", "client_id": app.client_id,
                               "scope": SCOPES[0]}, timeout=10)
    assert bare.status_code == 401 and bare.json()["error_codes"] == [7000218]


# -- certificate -----------------------------------------------------------------------------


def test_a_service_principal_signs_in_with_a_certificate(azure: FakeAzure, contoso: Contoso,
                                                         repo: None, genv: GitEnv,
                                                         tmp_path: Path) -> None:
    app = azure.add_service_principal(contoso.tenant)
    cert = azure.add_certificate(app.client_id, tmp_path / "sp.pem", passphrase="pw")
    pem = cert.pem.read_text()
    result = confidential(azure, app, {"private_key": pem, "public_certificate": pem,
                                       "passphrase": "pw"}).acquire_token_for_client(SCOPES)
    works_for_git_not_for_pats(azure, genv, result["access_token"])

    stranger = make_client_certificate(tmp_path / "stranger.pem").pem.read_text()
    unregistered = confidential(azure, app, {"private_key": stranger,
                                             "public_certificate": stranger})
    assert error_code(unregistered.acquire_token_for_client(SCOPES)) == "AADSTS700027"


@pytest.mark.parametrize(("case", "code"), [
    ("signed by another key", "AADSTS700027"),
    ("another subject", "AADSTS700021"),
    ("another audience", "AADSTS700023"),
    ("expired", "AADSTS700024"),
    ("not a JWT", "AADSTS50027"),
])
def test_certificate_assertions_entra_refuses(azure: FakeAzure, contoso: Contoso,
                                              tmp_path: Path, case: str, code: str) -> None:
    app = azure.add_service_principal(contoso.tenant)
    cert = azure.add_certificate(app.client_id, tmp_path / "sp.pem")
    key = serialization.load_pem_private_key(cert.pem.read_bytes(), None)
    if case == "signed by another key":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    endpoint = f"https://login.microsoftonline.com/{contoso.tenant}/oauth2/v2.0/token"
    now = time.time()
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": endpoint, "jti": "1",
              "iat": int(now), "exp": int(now) + 600}
    claims.update({"another subject": {"sub": "someone-else"},
                   "another audience": {"aud": "https://login.microsoftonline.com/x/token"},
                   "expired": {"exp": int(now) - 3600}}.get(case, {}))
    assertion = jwt.encode(claims, key, algorithm="PS256",  # type: ignore[arg-type]
                           headers={"x5t#S256": thumbprints(cert.der)[0]})
    if case == "not a JWT":
        assertion = "not.a-jwt"
    with azure.requests_session() as http:
        answer = http.post(endpoint, timeout=10, data={
            "grant_type": "client_credentials", "client_id": app.client_id,
            "scope": SCOPES[0], "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion})
    assert answer.status_code == 401
    assert answer.json()["error_description"].startswith(f"{code}:")


# -- workload identity federation ------------------------------------------------------------


@pytest.fixture
def federated(azure: FakeAzure, contoso: Contoso) -> tuple[App, Issuer]:
    app = azure.add_service_principal(contoso.tenant, "mirror")
    issuer = azure.issuer(AKS_ISSUER)
    azure.add_federated_credential(app.client_id, AKS_ISSUER, AKS_SUBJECT)
    return app, issuer


def test_a_federated_token_is_exchanged(azure: FakeAzure, contoso: Contoso, repo: None,
                                        genv: GitEnv, federated: tuple[App, Issuer]) -> None:
    app, issuer = federated
    token = issuer.token(AKS_SUBJECT, azure.now(), audience=FEDERATION_AUDIENCE)
    result = confidential(azure, app, {"client_assertion": lambda: token}
                          ).acquire_token_for_client(SCOPES)
    works_for_git_not_for_pats(azure, genv, result["access_token"])


@pytest.mark.parametrize(("case", "code"), [
    ("expired", "AADSTS700024"),
    ("another subject", "AADSTS700213"),
    ("another audience", "AADSTS700212"),
    ("untrusted issuer", "AADSTS700211"),
    ("forged", "AADSTS700027"),
])
def test_federated_tokens_entra_refuses(azure: FakeAzure, contoso: Contoso,
                                        federated: tuple[App, Issuer], case: str,
                                        code: str) -> None:
    app, issuer = federated
    now = azure.now()
    token = {
        "expired": lambda: issuer.token(AKS_SUBJECT, now, audience=FEDERATION_AUDIENCE,
                                        lifetime=-600),
        "another subject": lambda: issuer.token("system:serviceaccount:ci:other", now,
                                                audience=FEDERATION_AUDIENCE),
        "another audience": lambda: issuer.token(AKS_SUBJECT, now, audience="api://other"),
        "untrusted issuer": lambda: Issuer("https://elsewhere.example/").token(
            AKS_SUBJECT, now, audience=FEDERATION_AUDIENCE),
        "forged": lambda: Issuer(AKS_ISSUER).token(AKS_SUBJECT, now,
                                                   audience=FEDERATION_AUDIENCE),
    }[case]()
    result = confidential(azure, app, {"client_assertion": lambda: token}
                          ).acquire_token_for_client(SCOPES)
    assert "access_token" not in result and error_code(result) == code


def test_github_actions_hands_its_job_a_token_to_exchange(azure: FakeAzure, contoso: Contoso,
                                                          repo: None, genv: GitEnv) -> None:
    env, subject = azure.github_actions("contoso/app")
    assert subject == "repo:contoso/app:ref:refs/heads/main"
    app = azure.add_service_principal(contoso.tenant, "deploy")
    azure.add_federated_credential(app.client_id, ACTIONS_ISSUER, subject)
    url = f"{env['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={FEDERATION_AUDIENCE}"
    with azure.requests_session() as http:
        assert http.get(url, timeout=10).status_code == 401
        answer = http.get(url, timeout=10, headers={
            "Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"})
    token = answer.json()["value"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["sub"], claims["aud"]) == (ACTIONS_ISSUER, subject,
                                                             FEDERATION_AUDIENCE)
    result = confidential(azure, app, {"client_assertion": lambda: token}
                          ).acquire_token_for_client(SCOPES)
    works_for_git_not_for_pats(azure, genv, result["access_token"])
    assert [r.step for r in azure.requests if r.step == "oidc"] == ["oidc", "oidc"]


# -- managed identity ------------------------------------------------------------------------


def managed(identity: msal.ManagedIdentity) -> dict:
    with requests.Session() as http:
        return msal.ManagedIdentityClient(identity, http_client=http, http_cache={}
                                          ).acquire_token_for_client(resource=ADO_RESOURCE)


@pytest.mark.parametrize("shape", ["app-service", "imds"])
def test_managed_identities_get_tokens_from_the_machine(
        azure: FakeAzure, contoso: Contoso, repo: None, genv: GitEnv,
        monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    system = azure.add_managed_identity(contoso.tenant, "vm", system=True)
    user = azure.add_managed_identity(contoso.tenant, "ci-identity")
    for name, value in azure.managed_identity_env(shape).items():
        monkeypatch.setenv(name, value)  # msal reads the process environment itself
    chosen = {
        system.client_id: msal.SystemAssignedManagedIdentity(),
        user.client_id: msal.UserAssignedManagedIdentity(client_id=user.client_id),
    }
    for client_id, identity in [*chosen.items(),
                                (user.client_id, msal.UserAssignedManagedIdentity(
                                    object_id=user.object_id)),
                                (user.client_id, msal.UserAssignedManagedIdentity(
                                    resource_id=user.resource_id))]:
        token = managed(identity)["access_token"]
        assert jwt.decode(token, options={"verify_signature": False})["appid"] == client_id
    works_for_git_not_for_pats(azure, genv, token)
    unknown = managed(msal.UserAssignedManagedIdentity(client_id="0" * 8))
    assert "access_token" not in unknown
    assert {r.step for r in azure.requests if r.host.startswith("127.0.0.1")} == {"identity"}


def test_app_service_endpoint_wants_its_header(azure: FakeAzure, contoso: Contoso,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    azure.add_managed_identity(contoso.tenant, "app", system=True)
    env = azure.managed_identity_env()
    monkeypatch.setenv("IDENTITY_ENDPOINT", env["IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    result = managed(msal.SystemAssignedManagedIdentity())
    assert "access_token" not in result and "401" in result["error_description"]
    with requests.get(env["IDENTITY_ENDPOINT"], timeout=10, params={
            "api-version": "2019-08-01", "resource": ADO_RESOURCE}) as bare:
        assert bare.status_code == 401
