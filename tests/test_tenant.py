"""`tenant.discover`: which Entra tenant an organization signs in with."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import tenant
from tests.fakeazure import MSA_ORG_TENANT, FakeAzure
from tests.netfixtures import ORG, Contoso

OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def discover(session: requests.Session, org: str = ORG, wwwauth: tuple[str, ...] = (),
             **kwargs: str) -> str:
    return tenant.discover(org, session, 10, list(wwwauth), **kwargs)


def test_the_organization_names_its_tenant(azure: FakeAzure, contoso: Contoso,
                                           session: requests.Session) -> None:
    assert discover(session) == contoso.tenant
    [probe] = azure.requests_for("probe")
    assert (probe.method, probe.host, probe.path, probe.auth) == (
        "HEAD", "dev.azure.com", f"/{ORG}", "none")


def test_git_s_wwwauth_saves_the_request(azure: FakeAzure, contoso: Contoso,
                                         session: requests.Session) -> None:
    wwwauth = (f"Bearer authorization_uri=https://login.microsoftonline.com/{OTHER_TENANT}",
               'Basic realm="https://tfsprodcus3.visualstudio.com/"', "TFS-Federated")
    assert discover(session, wwwauth=wwwauth) == OTHER_TENANT
    assert azure.requests == []


def test_challenges_folded_into_one_value_are_read(azure: FakeAzure,
                                                   session: requests.Session) -> None:
    wwwauth = ('Basic realm="https://a.example/, with a comma", Bearer '
               f'authorization_uri="https://login.microsoftonline.com/{OTHER_TENANT.upper()}"',)
    assert discover(session, wwwauth=wwwauth) == OTHER_TENANT


@pytest.mark.parametrize("uri", [
    f"https://login.evil.example/{OTHER_TENANT}",
    f"http://login.microsoftonline.com/{OTHER_TENANT}",
    f"https://login.microsoftonline.com.evil.example/{OTHER_TENANT}",
    "https://login.microsoftonline.com/..%2F..%2Fevil",
    "https://login.microsoftonline.com/not_a_tenant!",
])
def test_a_challenge_pointing_elsewhere_is_ignored(azure: FakeAzure, contoso: Contoso,
                                                   session: requests.Session, uri: str) -> None:
    assert discover(session, wwwauth=(f"Bearer authorization_uri={uri}",)) == contoso.tenant
    assert len(azure.requests_for("probe")) == 1


def test_a_sovereign_cloud_trusts_only_its_own_sign_in_host(azure: FakeAzure, contoso: Contoso,
                                                            session: requests.Session) -> None:
    us_gov = "https://login.microsoftonline.us"
    wwwauth = (f"Bearer authorization_uri={us_gov}/{OTHER_TENANT}",)
    assert discover(session, wwwauth=wwwauth, authority_host=us_gov) == OTHER_TENANT
    # The fake's organization answers with login.microsoftonline.com, which the US cloud
    # does not trust; X-VSS-ResourceTenant still names the tenant.
    assert discover(session, authority_host=us_gov) == contoso.tenant


def test_a_domain_name_tenant_is_accepted(azure: FakeAzure, session: requests.Session) -> None:
    wwwauth = ("Bearer authorization_uri=https://login.microsoftonline.com/Contoso.onmicrosoft.com",)
    assert discover(session, wwwauth=wwwauth) == "contoso.onmicrosoft.com"


def test_a_microsoft_account_organization_signs_in_through_organizations(
        azure: FakeAzure, session: requests.Session) -> None:
    azure.add_org("personal", MSA_ORG_TENANT)
    assert discover(session, "personal") == "organizations"
    assert discover(session, wwwauth=("Bearer", "Basic realm=x")) == "organizations"
    zeros = f"Bearer authorization_uri=https://login.microsoftonline.com/{MSA_ORG_TENANT}"
    assert discover(session, wwwauth=(zeros,)) == "organizations"


def test_an_unknown_organization_is_named(azure: FakeAzure, session: requests.Session) -> None:
    with pytest.raises(HelperError) as caught:
        discover(session, "nosuchorg")
    assert str(caught.value) == ("the Azure DevOps organization nosuchorg does not exist "
                                 "(check the remote URL)")


def test_get_is_tried_when_head_says_nothing(azure: FakeAzure, contoso: Contoso,
                                             session: requests.Session) -> None:
    azure.fail("probe", 401, body="")  # a 401 stripped of its headers, as some proxies do
    assert discover(session) == contoso.tenant
    assert [r.method for r in azure.requests_for("probe")] == ["HEAD", "GET"]


def test_when_nothing_names_the_tenant_the_setting_to_pin_it_is_named(
        azure: FakeAzure, contoso: Contoso, session: requests.Session) -> None:
    azure.fail("probe", 401, body="", times=2)
    with pytest.raises(HelperError) as caught:
        discover(session)
    assert str(caught.value) == (
        "dev.azure.com did not say which Entra tenant organization contoso uses (HTTP 401); "
        "name it with git config --global "
        "credential.https://dev.azure.com/contoso.patTenant TENANT")


def test_a_flaky_probe_is_retried(azure: FakeAzure, contoso: Contoso,
                                  session: requests.Session) -> None:
    azure.fail("probe", 503, retry_after=1)
    started = time.monotonic()
    assert discover(session) == contoso.tenant
    assert time.monotonic() - started >= 1


CAE = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
       'authorize", client_id="00000003-0000-0000-c000-000000000000", '
       'error="insufficient_claims", claims="{claims}", Basic realm="https://x.example/"')
CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}'


@pytest.mark.parametrize("encoded", [
    base64.b64encode(CLAIMS.encode()).decode(),
    base64.urlsafe_b64encode(CLAIMS.encode()).decode().rstrip("="),
])
def test_a_claims_challenge_is_decoded_for_msal(encoded: str) -> None:
    headers = {"WWW-Authenticate": CAE.format(claims=encoded)}
    assert tenant.claims_challenge(headers) == CLAIMS
    assert tenant.named_by(headers, "https://login.microsoftonline.com") == ""  # "common"


@pytest.mark.parametrize("value", [
    'Bearer authorization_uri="https://login.microsoftonline.com/common"',
    CAE.format(claims="not base64!"),
    CAE.format(claims=base64.b64encode(b"[1, 2]").decode()),
    CAE.format(claims=base64.b64encode(b"\xff\xfe").decode()),
    CAE.replace("insufficient_claims", "invalid_token").format(
        claims=base64.b64encode(CLAIMS.encode()).decode()),
])
def test_anything_else_is_no_claims_challenge(value: str) -> None:
    assert tenant.claims_challenge({"WWW-Authenticate": value}) == ""


def test_a_refusal_names_the_organization_s_tenant() -> None:
    headers = {"WWW-Authenticate": f"Bearer authorization_uri=https://login.microsoftonline.com/"
                                   f"{OTHER_TENANT}, Basic realm=\"x\"",
               "X-VSS-ResourceTenant": OTHER_TENANT}
    assert tenant.named_by(headers, "https://login.microsoftonline.com") == OTHER_TENANT
