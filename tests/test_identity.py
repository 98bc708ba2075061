"""`edges.identity`: service principals, managed identities and workload identity federation,
with real msal against the local Entra ID and managed-identity endpoints, through the
helper's own HTTP session (git's proxy and CA).

A token is judged by what Azure Repos does with it (git's smart-HTTP refs answer), and a
failure by the one line a person reads.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.settings import Settings
from git_credential_pat.edges import http, identity
from git_credential_pat.edges.signin import AccessToken
from tests.fakeazure import FakeAzure
from tests.fakeazure.identities import ACTIONS_ISSUER
from tests.fakeazure.state import FEDERATION_AUDIENCE, App
from tests.netfixtures import Contoso, settings_for

REFS = "https://dev.azure.com/contoso/proj/_git/repo/info/refs?service=git-upload-pack"
AKS_ISSUER = "https://oidc.prod-aks.azure.com/6a8b5f6c-0000-4000-8000-000000000001/"
AKS_SUBJECT = "system:serviceaccount:ci:mirror"


def get_token(settings: Settings, environ: dict[str, str]) -> AccessToken:
    with http.new_session(settings) as session:
        return identity.token(identity.resolve(settings, environ), settings, environ, session)


def refusal(settings: Settings, environ: dict[str, str]) -> str:
    with pytest.raises(HelperError) as caught:
        get_token(settings, environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


def opens_git(azure: FakeAzure, token: str) -> bool:
    with azure.requests_session() as session:
        answer = session.get(REFS, auth=("build", token), timeout=10)
    return answer.status_code == 200 and b"# service=git-upload-pack" in answer.content


@pytest.fixture(autouse=True)
def repo(azure: FakeAzure, contoso: Contoso) -> None:
    azure.add_repo("contoso", "proj", "repo")


@pytest.fixture
def sp(azure: FakeAzure, contoso: Contoso) -> App:
    return azure.add_service_principal(contoso.tenant, secret="the-secret")


def sp_settings(azure: FakeAzure, **values: object) -> Settings:
    return settings_for(azure, identity="service-principal", **values)


# -- service principal -----------------------------------------------------------------------


def test_a_service_principal_with_a_secret_from_the_environment(
        azure: FakeAzure, contoso: Contoso, sp: App) -> None:
    env = {"AZURE_TENANT_ID": contoso.tenant, "AZURE_CLIENT_ID": sp.client_id,
           "AZURE_CLIENT_SECRET": "the-secret"}
    settings = sp_settings(azure)
    assert identity.describe(settings, env) == (
        f"service principal {sp.client_id} in tenant {contoso.tenant}, "
        "with the client secret in AZURE_CLIENT_SECRET")
    token = get_token(settings, env)
    assert opens_git(azure, token.token)
    assert abs(token.expires_on - (time.time() + 3600)) < 30
    assert (token.account, token.tenant) == ("", contoso.tenant)
    assert azure.grants["client_credentials"] == 1


def test_a_secret_file_named_in_config_wins_over_the_variable(
        azure: FakeAzure, contoso: Contoso, sp: App, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("the-secret\n")
    settings = sp_settings(azure, tenant=contoso.tenant, identity_client_id=sp.client_id,
                           identity_secret_file=str(secret))
    assert opens_git(azure, get_token(settings, {"AZURE_CLIENT_SECRET": "stale"}).token)
    other = sp_settings(azure, tenant=contoso.tenant, identity_client_id=sp.client_id,
                        identity_secret_env="DEPLOY_SECRET")
    assert opens_git(azure, get_token(other, {"DEPLOY_SECRET": "the-secret"}).token)


def test_a_wrong_or_expired_secret_is_named_with_its_fix(
        azure: FakeAzure, contoso: Contoso, sp: App) -> None:
    env = {"AZURE_TENANT_ID": contoso.tenant, "AZURE_CLIENT_ID": sp.client_id,
           "AZURE_CLIENT_SECRET": "not-the-secret"}
    who = f"service principal {sp.client_id} in tenant {contoso.tenant}"
    assert refusal(sp_settings(azure), env) == (
        f"{who}: the client secret is wrong (AADSTS7000215); put the secret's value (not its "
        "ID) in AZURE_CLIENT_SECRET")
    azure.add_client_secret(sp.client_id, "old-secret", days=-1)
    assert refusal(sp_settings(azure), {**env, "AZURE_CLIENT_SECRET": "old-secret"}) == (
        f"{who}: the client secret has expired (AADSTS7000222); create a new secret for the "
        "app registration and put it in AZURE_CLIENT_SECRET")
    elsewhere = azure.add_tenant()
    assert refusal(sp_settings(azure), {**env, "AZURE_TENANT_ID": elsewhere}).startswith(
        f"service principal {sp.client_id} in tenant {elsewhere}: the application is not in "
        "this tenant (AADSTS700016)")
    unknown = "00000000-1111-2222-3333-444444444444"
    assert refusal(sp_settings(azure), {**env, "AZURE_TENANT_ID": unknown}) == (
        f"service principal {sp.client_id} in tenant {unknown}: login.microsoftonline.com "
        f"does not know the tenant {unknown}; check AZURE_TENANT_ID or credential.patTenant")


def test_a_service_principal_with_a_certificate(azure: FakeAzure, contoso: Contoso,
                                                tmp_path: Path) -> None:
    app = azure.add_service_principal(contoso.tenant)
    cert = azure.add_certificate(app.client_id, tmp_path / "sp.pem", passphrase="pem-pass")
    env = {"AZURE_TENANT_ID": contoso.tenant, "AZURE_CLIENT_ID": app.client_id,
           "AZURE_CLIENT_CERTIFICATE_PATH": str(cert.pem),
           "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pem-pass"}
    assert opens_git(azure, get_token(sp_settings(azure), env).token)
    who = f"service principal {app.client_id} in tenant {contoso.tenant}"
    assert refusal(sp_settings(azure), {**env, "AZURE_CLIENT_CERTIFICATE_PASSWORD": "x"}) == (
        f"{who}: cannot open the private key in {cert.pem}; if it is encrypted, set "
        "AZURE_CLIENT_CERTIFICATE_PASSWORD to its password")
    missing = tmp_path / "gone.pem"
    assert refusal(sp_settings(azure, identity_certificate=str(missing)), env) == (
        f"{who}: cannot read the certificate file {missing} (No such file or directory)")
    stranger = azure.add_service_principal(contoso.tenant)
    assert refusal(sp_settings(azure), {**env, "AZURE_CLIENT_ID": stranger.client_id}) == (
        f"service principal {stranger.client_id} in tenant {contoso.tenant}: Entra cannot "
        f"verify the assertion's signature (AADSTS700027); upload the certificate in "
        f"{cert.pem} to the app registration")


def test_what_is_missing_is_said_before_any_request(azure: FakeAzure, sp: App) -> None:
    settings = sp_settings(azure)
    with pytest.raises(HelperError, match="has no client ID; set AZURE_CLIENT_ID"):
        identity.resolve(settings, {})
    assert identity.describe(settings, {"AZURE_CLIENT_ID": sp.client_id}) == (
        f"service principal {sp.client_id} has no secret or certificate; set "
        "AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or credential.patIdentitySecretFile")
    found = identity.resolve(settings, {"AZURE_CLIENT_ID": sp.client_id,
                                        "AZURE_CLIENT_SECRET": "x"})
    assert found.needs_tenant and not found.tenant
    with http.new_session(settings) as session, pytest.raises(
            HelperError, match=r"needs its tenant; set AZURE_TENANT_ID or credential\.patTenant"):
        identity.token(found, settings, {}, session)
    assert azure.requests == []


# -- workload identity federation ------------------------------------------------------------


@pytest.fixture
def mirror(azure: FakeAzure, contoso: Contoso) -> App:
    app = azure.add_service_principal(contoso.tenant, "mirror")
    azure.add_federated_credential(app.client_id, AKS_ISSUER, AKS_SUBJECT)
    return app


def test_a_federated_token_file_is_exchanged_and_read_afresh(
        azure: FakeAzure, contoso: Contoso, mirror: App, tmp_path: Path) -> None:
    issuer = azure.issuer(AKS_ISSUER)
    token_file = tmp_path / "azure-identity-token"
    env = {"AZURE_TENANT_ID": contoso.tenant, "AZURE_CLIENT_ID": mirror.client_id,
           "AZURE_FEDERATED_TOKEN_FILE": str(token_file)}
    settings = settings_for(azure, identity="workload-identity")
    token_file.write_text(issuer.token(AKS_SUBJECT, azure.now(), audience=FEDERATION_AUDIENCE,
                                       lifetime=-600))
    assert refusal(settings, env) == (
        f"workload identity {mirror.client_id} in tenant {contoso.tenant}: the federated "
        f"token has expired or is not yet valid (AADSTS700024); refresh {token_file} (a "
        "federated token lasts about an hour) and check the clock")
    token_file.write_text(issuer.token(AKS_SUBJECT, azure.now(), audience=FEDERATION_AUDIENCE))
    assert opens_git(azure, get_token(settings, env).token)


def test_a_federated_token_for_another_subject_is_refused(
        azure: FakeAzure, contoso: Contoso, mirror: App, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(azure.issuer(AKS_ISSUER).token(
        "system:serviceaccount:ci:other", azure.now(), audience=FEDERATION_AUDIENCE))
    settings = settings_for(azure, identity="workload-identity", tenant=contoso.tenant,
                            identity_client_id=mirror.client_id,
                            identity_token_file=str(token_file))
    assert refusal(settings, {}).endswith(
        "no federated credential of the application matches the token's subject "
        f"(AADSTS700213); add a federated credential for the subject of {token_file}")


def test_github_actions_oidc_is_exchanged(azure: FakeAzure, contoso: Contoso) -> None:
    env, subject = azure.github_actions("contoso/app")
    app = azure.add_service_principal(contoso.tenant, "deploy")
    azure.add_federated_credential(app.client_id, ACTIONS_ISSUER, subject)
    env.update(AZURE_TENANT_ID=contoso.tenant, AZURE_CLIENT_ID=app.client_id)
    settings = settings_for(azure, identity="workload-identity")
    assert identity.describe(settings, env).endswith("with GitHub Actions' OIDC token")
    assert opens_git(azure, get_token(settings, env).token)
    assert len(azure.requests_for("oidc")) == 1
    stale = {**env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "expired-request-token"}
    assert refusal(settings, stale) == (
        f"workload identity {app.client_id} in tenant {contoso.tenant}: GitHub Actions "
        "refused the ID token request (HTTP 401); the job needs `permissions: id-token: "
        "write`")
    with pytest.raises(HelperError, match="has no federated token; set AZURE_FEDERATED_TOKEN"):
        identity.resolve(settings, {"AZURE_CLIENT_ID": app.client_id})


# -- managed identity ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["app-service", "imds"])
def test_managed_identities_from_the_machine_endpoint_never_through_the_proxy(
        azure: FakeAzure, contoso: Contoso, shape: str) -> None:
    system = azure.add_managed_identity(contoso.tenant, "vm", system=True)
    user = azure.add_managed_identity(contoso.tenant, "ci")
    env = azure.managed_identity_env(shape)
    settings = settings_for(azure, identity="managed-identity")
    where = ("the identity endpoint at 127.0.0.1 (IDENTITY_ENDPOINT)" if shape == "app-service"
             else "the instance metadata service at 127.0.0.1")
    assert identity.describe(settings, env) == f"managed identity (system-assigned), with {where}"
    first = get_token(settings, env)
    second = get_token(settings, {**env, "AZURE_CLIENT_ID": user.client_id})
    by_object = get_token(settings.replace(identity_object_id=user.object_id), env)
    assert opens_git(azure, first.token) and opens_git(azure, second.token)
    owners = {azure.state.find_access_token(t.token).client_id  # type: ignore[union-attr]
              for t in (first, second, by_object)}
    assert owners == {system.client_id, user.client_id}
    assert azure.refused == [] and len(azure.requests_for("identity")) == 3
    assert not any(name in os.environ for name in env)  # lent to msal, then taken back


def test_an_identity_the_machine_does_not_have(azure: FakeAzure, contoso: Contoso) -> None:
    azure.add_managed_identity(contoso.tenant, "vm", system=True)
    settings = settings_for(azure, identity="managed-identity",
                            identity_client_id="5b1c0e8e-0000-4000-8000-00000000000a")
    message = refusal(settings, azure.managed_identity_env())
    assert message.startswith("sign-in for the managed identity (client ID "
                              "5b1c0e8e-0000-4000-8000-00000000000a) failed: ")
    assert message.endswith("No User Assigned or Delegated Managed Identity found for "
                            "specified ClientId/ResourceId/PrincipalId.; check that the "
                            "identity is assigned to this machine")


def test_an_unreachable_endpoint_fails_within_seconds(azure: FakeAzure) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"IDENTITY_ENDPOINT": f"http://127.0.0.1:{port}/msi/token", "IDENTITY_HEADER": "h"}
    started = time.monotonic()
    message = refusal(settings_for(azure, identity="managed-identity"), env)
    assert time.monotonic() - started < 5
    assert message == ("cannot connect to 127.0.0.1 while asking the identity endpoint at "
                       "127.0.0.1 (IDENTITY_ENDPOINT) for a token for the managed identity "
                       "(system-assigned); check the network")


def test_one_managed_identity_is_chosen_by_one_id(azure: FakeAzure) -> None:
    settings = settings_for(azure, identity="managed-identity", identity_object_id="o",
                            identity_resource_id="/subscriptions/s")
    with pytest.raises(HelperError, match="but client ID and object ID and resource ID are "):
        identity.resolve(settings, {"AZURE_CLIENT_ID": "c"})



def test_a_busy_endpoint_or_entra_is_ridden_out_within_the_time_budget(
        azure: FakeAzure, contoso: Contoso, sp: App) -> None:
    """The same retries as every other request of the helper: a 503 or a dropped connection
    once is not a failure, for the managed-identity endpoint nor for Entra's token endpoint."""
    azure.add_managed_identity(contoso.tenant, "vm", system=True)
    azure.fail("identity", 503)
    azure.drop("identity")
    managed = settings_for(azure, identity="managed-identity")
    assert opens_git(azure, get_token(managed, azure.managed_identity_env("imds")).token)
    assert [r.status for r in azure.requests_for("identity")] == [503, 0, 200]
    azure.fail("token", 503, retry_after=0)
    env = {"AZURE_TENANT_ID": contoso.tenant, "AZURE_CLIENT_ID": sp.client_id,
           "AZURE_CLIENT_SECRET": "the-secret"}
    assert opens_git(azure, get_token(sp_settings(azure), env).token)
    assert [r.status for r in azure.requests_for("token")] == [503, 200]
