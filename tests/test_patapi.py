"""`patapi.PatClient` against the fake PAT Lifecycle Management API, with Entra tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from hypothesis import given, strategies as st

from git_credential_pat.core import policy
from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import trace
from git_credential_pat.edges.patapi import (
    Pat,
    PatApiError,
    PatClient,
    TokenRefused,
    format_time,
    parse_time,
)
from tests.fakeazure import FakeAzure
from tests.netfixtures import ALICE, BOB, ORG, Contoso

DAY = 86400
NAME = "git-credential-pat: contoso on laptop (abc123)"


@pytest.fixture
def client(azure: FakeAzure, contoso: Contoso, session: requests.Session) -> PatClient:
    return PatClient(ORG, azure.issue_access_token(ALICE), session, 10)


def in_days(days: float) -> int:
    return int(time.time() + days * DAY)


def test_create_mints_an_organization_scoped_pat(azure: FakeAzure, contoso: Contoso,
                                                 client: PatClient) -> None:
    valid_to = in_days(30)
    pat = client.create(NAME, "vso.code_write", valid_to)
    [record] = azure.pats
    assert pat == Pat(record.authorization_id, NAME, "vso.code_write", pat.valid_from, valid_to,
                      [contoso.org_id], record.token)
    assert abs(pat.valid_from - time.time()) < 5
    assert (record.all_orgs, record.user, record.scope) == (False, ALICE, "vso.code_write")
    assert [r.auth for r in azure.requests_for("pat_create")] == ["bearer"]


def test_a_created_pat_is_listed_until_it_is_revoked(azure: FakeAzure, client: PatClient) -> None:
    made = client.create(NAME, "vso.code", in_days(7))
    [listed] = [p for p in client.list() if p.authorization_id == made.authorization_id]
    assert listed == Pat(made.authorization_id, NAME, "vso.code", made.valid_from,
                         made.valid_to, made.target_accounts, None)
    client.revoke(made.authorization_id)
    assert azure.live_pats() == []


def test_list_pages_through_every_pat(azure: FakeAzure, client: PatClient) -> None:
    made = {azure.issue_pat(ORG, ALICE, display_name=f"pat {i}").authorization_id
            for i in range(230)}
    azure.issue_pat(ORG, BOB)
    revoked = azure.issue_pat(ORG, ALICE, display_name="revoked")
    azure.revoke_pat(revoked.authorization_id)

    listed = list(client.list())
    assert {p.authorization_id for p in listed} == made
    assert all(p.token is None for p in listed)
    pages = azure.requests_for("pat_list")
    assert len(pages) == 3
    assert all("%24top=100" in r.query and "displayFilterOption=active" in r.query
               for r in pages)
    assert [p.authorization_id for p in client.list("revoked")] == [revoked.authorization_id]


def test_list_stops_when_the_continuation_token_repeats(azure: FakeAzure,
                                                        client: PatClient) -> None:
    page = {"continuationToken": "MTAw", "patTokens": [{
        "authorizationId": "4c60c9ed-a378-4883-af16-d655ca025b11", "displayName": "loop",
        "scope": "vso.code", "targetAccounts": None, "token": None,
        "validFrom": "2020-10-24T03:04:57.52Z", "validTo": "2020-11-23T04:04:38.5233333Z"}]}
    azure.fail("pat_list", 200, body=json.dumps(page), content_type="application/json",
               times=10)
    assert len(list(client.list())) == 2
    assert len(azure.requests_for("pat_list")) == 2


def test_a_pat_is_never_created_for_all_organizations(azure: FakeAzure,
                                                      client: PatClient) -> None:
    azure.policy(ORG, forbid_global=False)
    client.create(NAME, "vso.code", in_days(1))
    [record] = azure.pats
    assert record.all_orgs is False


# -- refusals ------------------------------------------------------------------------------


def refusal(call: Callable[[], object]) -> PatApiError:
    with pytest.raises(PatApiError) as caught:
        call()
    return caught.value


def test_the_lifespan_policy_says_what_to_change(azure: FakeAzure, client: PatClient) -> None:
    azure.policy(ORG, max_lifespan_days=7)
    error = refusal(lambda: client.create(NAME, "vso.code_write", in_days(30)))
    assert str(error) == ("the organization contoso does not allow PATs with a lifespan of 30 "
                          "days; set credential.patLifespanDays lower")
    assert error.code == "patLifespanPolicyViolation"
    assert client.create(NAME, "vso.code_write", in_days(7)).valid_to == in_days(7)


def test_the_full_scope_policy(azure: FakeAzure, client: PatClient) -> None:
    azure.policy(ORG, forbid_full_scope=True)
    error = refusal(lambda: client.create(NAME, "app_token", in_days(1)))
    assert str(error) == ("the organization contoso does not allow full-access PATs; set "
                          "credential.patScope to narrower scopes")
    assert error.code == "fullScopePatPolicyViolation"


def test_disabled_creation_comes_as_access_denied_in_7_1(azure: FakeAzure,
                                                         client: PatClient) -> None:
    azure.policy(ORG, disable_creation=True)
    error = refusal(lambda: client.create(NAME, "vso.code", in_days(1)))
    assert str(error) == "your account may not manage PATs in the organization contoso"
    assert error.code == "accessDenied"
    assert azure.pats == []


def test_an_invalid_scope_names_the_setting(client: PatClient) -> None:
    error = refusal(lambda: client.create(NAME, "vso.code write!", in_days(1)))
    assert str(error) == "the PAT scope 'vso.code write!' was refused; check credential.patScope"
    assert error.code == "invalidScope"


def test_errors_with_an_http_error_status_are_read_the_same(azure: FakeAzure,
                                                           client: PatClient) -> None:
    azure.pat_errors_with_status(400)
    azure.policy(ORG, max_lifespan_days=7)
    error = refusal(lambda: client.create(NAME, "vso.code", in_days(30)))
    assert (error.code, error.status) == ("patLifespanPolicyViolation", 400)


def test_a_missing_pat_is_named(client: PatClient) -> None:
    unknown = "3d3aca0c-9ad3-4b07-8334-08ec8b1ddc32"
    error = refusal(lambda: client.revoke(unknown))
    assert (str(error), error.code) == ("the organization contoso has no such PAT",
                                        "authorizationNotFound")
    assert refusal(lambda: client.revoke("not-a-guid")).code == "invalidAuthorizationId"


@pytest.mark.parametrize(("code", "message", "falls_back"), [
    ("displayNameRequired", "the PAT needs a name", False),
    ("invalidDisplayName", "the PAT name was refused", False),
    ("invalidValidTo", "the PAT expiry date was refused", False),
    ("invalidScope", "the PAT scope 'vso.code' was refused; check credential.patScope", False),
    ("accessDenied", "your account may not manage PATs in the organization contoso", True),
    ("authorizationNotFound", "the organization contoso has no such PAT", False),
    ("invalidAuthorizationId", "the PAT id was refused as malformed", False),
    ("failedToReadTenantPolicy",
     "Azure DevOps could not read the PAT policies of contoso; try again later", False),
    ("globalPatPolicyViolation",
     "the organization contoso does not allow PATs for all organizations", False),
    ("fullScopePatPolicyViolation", "the organization contoso does not allow full-access PATs; "
     "set credential.patScope to narrower scopes", False),
    ("patLifespanPolicyViolation", "the organization contoso does not allow PATs with a "
     "lifespan of 30 days; set credential.patLifespanDays lower", False),
    ("disablePatCreationPolicyViolation",
     "the organization contoso does not allow creating PATs", True),
    ("globalPATCreationBlocked",
     "Azure DevOps no longer creates PATs for all organizations", True),
    ("expiredPatCannotBeExtended", "an expired PAT cannot be extended; create a new one", False),
    ("someFutureError\x1b[2J",
     "Azure DevOps refused the PAT request for contoso (someFutureError\\x1b[2J)", False),
])
def test_every_error_code_is_one_clear_line(azure: FakeAzure, client: PatClient, code: str,
                                            message: str, falls_back: bool) -> None:
    body = json.dumps({"patToken": None, "patTokenError": code})
    azure.fail("pat_create", 200, body=body, content_type="application/json")
    error = refusal(lambda: client.create(NAME, "vso.code", in_days(30)))
    assert str(error) == message
    assert policy.falls_back("auto", error.code, error.status) is falls_back
    assert error.code == code.replace("\x1b", "\\x1b")


def test_a_null_pat_without_an_error_code_is_still_a_failure(azure: FakeAzure,
                                                             client: PatClient) -> None:
    body = json.dumps({"patToken": None, "patTokenError": "none"})
    azure.fail("pat_create", 200, body=body, content_type="application/json")
    error = refusal(lambda: client.create(NAME, "vso.code", in_days(1)))
    assert str(error) == "Azure DevOps answered without the PAT for contoso"


def test_a_pat_is_refused_as_the_credential(azure: FakeAzure, contoso: Contoso,
                                            session: requests.Session) -> None:
    pat = azure.issue_pat(ORG, ALICE)
    error = refusal(lambda: PatClient(ORG, pat.token, session, 10).create(NAME, "vso.code",
                                                                          in_days(1)))
    assert str(error) == ("Azure DevOps refused the sign-in for the organization contoso "
                          "(HTTP 401 while creating a PAT)")
    assert (error.status, error.code) == (401, "")
    assert isinstance(error, TokenRefused)
    assert not policy.falls_back("auto", error.code, error.status)  # never for the token itself


def test_a_refusal_carries_the_headers_that_say_why(azure: FakeAzure, contoso: Contoso,
                                                    session: requests.Session) -> None:
    token = azure.issue_access_token(ALICE)
    claims = azure.cae_event(ALICE)
    error = refusal(lambda: list(PatClient(ORG, token, session, 10).list()))
    assert isinstance(error, TokenRefused)
    assert error.challenge["X-VSS-ResourceTenant"] == contoso.tenant
    assert "insufficient_claims" not in error.challenge["WWW-Authenticate"]  # no cp1 declared
    assert claims and "Bearer authorization_uri=" in error.challenge["WWW-Authenticate"]


def test_a_token_of_another_tenant_is_refused(azure: FakeAzure, contoso: Contoso,
                                              session: requests.Session) -> None:
    elsewhere = azure.add_tenant()
    azure.add_user("eve@fabrikam.com", elsewhere)
    client = PatClient(ORG, azure.issue_access_token("eve@fabrikam.com"), session, 10)
    assert refusal(lambda: list(client.list())).status == 401


def test_forbidden(azure: FakeAzure, client: PatClient) -> None:
    azure.fail("pat_list", 403, body='{"message": "TF400813"}', content_type="application/json")
    error = refusal(lambda: list(client.list()))
    assert str(error) == ("your account may not manage PATs in the organization contoso "
                          "(HTTP 403 while listing PATs)")


def test_an_unknown_organization(azure: FakeAzure, contoso: Contoso,
                                 session: requests.Session) -> None:
    client = PatClient("nosuchorg", azure.issue_access_token(ALICE), session, 10)
    error = refusal(lambda: client.create(NAME, "vso.code", in_days(1)))
    assert str(error) == "Azure DevOps refused creating a PAT in nosuchorg (HTTP 404)"


def test_a_create_that_hit_a_503_is_retried_once_created(azure: FakeAzure,
                                                         client: PatClient) -> None:
    azure.fail("pat_create", 503)
    pat = client.create(NAME, "vso.code", in_days(1))
    assert [p.authorization_id for p in azure.pats] == [pat.authorization_id]


def test_an_html_page_instead_of_the_api(azure: FakeAzure, client: PatClient) -> None:
    azure.fail("pat_create", 200, body="<html><title>Sign in</title></html>",
               content_type="text/html")
    with pytest.raises(HelperError) as caught:
        client.create(NAME, "vso.code", in_days(1))
    assert str(caught.value) == ("expected the result of creating a PAT from "
                                 "vssps.dev.azure.com but got an HTML page titled 'Sign in' "
                                 "(HTTP 200)")


def test_the_pat_and_the_access_token_never_reach_the_trace(
        azure: FakeAzure, contoso: Contoso, session: requests.Session, tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    trace.configure(str(log))
    try:
        access_token = azure.issue_access_token(ALICE)
        client = PatClient(ORG, access_token, session, 10)
        pat = client.create(NAME, "vso.code", in_days(1))
        azure.policy(ORG, max_lifespan_days=1)
        trace.log(f"refused: {refusal(lambda: client.create(NAME, 'vso.code', in_days(9)))}")
        trace.log(f"minted {pat}")
    finally:
        trace.configure("")
    text = log.read_text()
    assert "POST vssps.dev.azure.com/contoso/_apis/tokens/pats -> 200" in text
    assert "minted Pat(" in text and "lifespan of 9 days" in text
    assert pat.token and pat.token not in text and access_token not in text


# -- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("2020-11-02T22:56:52.1033333Z", 1604357812),
    ("2020-12-01T23:46:23.32Z", 1606866383),
    ("2020-12-01T23:46:23Z", 1606866383),
    ("2020-12-01T23:46:23", 1606866383),
    ("2020-12-02T01:46:23.5+02:00", 1606866383),
    ("2020-12-01T21:16:23-0230", 1606866383),
])
def test_api_dates(text: str, seconds: int) -> None:
    assert parse_time(text) == seconds


@given(st.integers(min_value=0, max_value=4102444800))
def test_dates_round_trip(seconds: int) -> None:
    assert parse_time(format_time(seconds)) == seconds


def test_a_pat_without_dates_is_an_unexpected_shape(azure: FakeAzure, client: PatClient) -> None:
    body = json.dumps({"patTokenError": "none", "patToken": {"authorizationId": "x"}})
    azure.fail("pat_create", 200, body=body, content_type="application/json")
    with pytest.raises(HelperError, match=r"^Azure DevOps answered the creation of a PAT for "
                                          r"contoso with a PAT without an id or dates; try "
                                          r"again later$"):
        client.create(NAME, "vso.code", in_days(1))
