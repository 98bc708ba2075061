"""`http`: proxies, CAs, retries, redirects and bodies, against the fake over real TLS.

Each test states what a person would see (the one-line message, how long they waited) and what
reached the server (the fake's ledger).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import http, trace
from tests.fakeazure import FakeAzure
from tests.fakeazure.ca import make_certificates
from tests.fakeazure.state import Fault
from tests.netfixtures import ORG_URL, Contoso, settings_for

STEP = "checking the organization"
PATS = "https://vssps.dev.azure.com/contoso/_apis/tokens/pats?api-version=7.1-preview.1"


def probe(session: requests.Session, timeout: float = 10) -> requests.Response:
    return http.call(session, "HEAD", ORG_URL, step=STEP, timeout=timeout)


def probes(azure: FakeAzure) -> int:
    return len(azure.requests_for("probe"))


def test_git_proxy_setting_wins_over_the_environment(azure: FakeAzure, contoso: Contoso,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with http.new_session(settings_for(azure)) as session:
        assert probe(session).status_code == 401
    assert probes(azure) == 1


def test_without_a_git_proxy_the_environment_proxy_is_used(
        azure: FakeAzure, contoso: Contoso, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", azure.proxy_url)
    with http.new_session(settings_for(azure, proxy="")) as session:
        assert probe(session).status_code == 401
    assert probes(azure) == 1


def test_a_proxy_without_a_scheme_is_plain_http_as_in_git(azure: FakeAzure,
                                                          contoso: Contoso) -> None:
    bare = azure.proxy_url.removeprefix("http://")
    with http.new_session(settings_for(azure, proxy=bare)) as session:
        assert probe(session).status_code == 401


def test_a_burst_of_503s_is_ridden_out(azure: FakeAzure, contoso: Contoso,
                                       session: requests.Session) -> None:
    azure.fail("probe", 503, times=2)
    assert probe(session).status_code == 401
    assert probes(azure) == 3


def test_retry_after_is_honoured(azure: FakeAzure, contoso: Contoso,
                                 session: requests.Session) -> None:
    azure.fail("probe", 429, retry_after=2)
    started = time.monotonic()
    assert probe(session).status_code == 401
    assert time.monotonic() - started >= 2
    assert probes(azure) == 2


def test_retry_after_as_an_http_date(azure: FakeAzure, contoso: Contoso,
                                     session: requests.Session) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
    # The `fail` knob takes seconds; the fault itself sends whatever it holds.
    azure.state.add_fault("probe", Fault("fail", 1, status=429,
                                         retry_after=when))  # type: ignore[arg-type]
    started = time.monotonic()
    assert probe(session).status_code == 401
    assert 0.9 <= time.monotonic() - started < 5


def test_a_retry_after_beyond_the_budget_fails_at_once_and_says_when(
        azure: FakeAzure, contoso: Contoso, session: requests.Session) -> None:
    azure.fail("probe", 503, retry_after=120)
    started = time.monotonic()
    with pytest.raises(HelperError) as caught:
        probe(session, timeout=10)
    assert time.monotonic() - started < 2
    assert str(caught.value) == ("dev.azure.com is having trouble (HTTP 503) while "
                                 f"{STEP}; try again in 120 seconds")
    assert probes(azure) == 1


def test_retries_stop_after_four_attempts(azure: FakeAzure, contoso: Contoso,
                                          session: requests.Session) -> None:
    azure.fail("probe", 500, times=10)
    with pytest.raises(HelperError, match=f"^dev.azure.com is having trouble .HTTP 500. "
                                          f"while {STEP}; try again later$"):
        probe(session)
    assert probes(azure) == 4


def test_dropped_connections_are_retried(azure: FakeAzure, contoso: Contoso,
                                         session: requests.Session) -> None:
    azure.drop("probe", times=2)
    assert probe(session).status_code == 401
    assert probes(azure) == 3


def test_a_server_that_keeps_hanging_up_is_named_with_the_step(
        azure: FakeAzure, contoso: Contoso, session: requests.Session) -> None:
    azure.drop("probe", times=10)
    with pytest.raises(HelperError) as caught:
        probe(session)
    assert str(caught.value) == (
        f"cannot reach dev.azure.com through the proxy 127.0.0.1 (http.proxy) while {STEP}; "
        "check the proxy and the network")


def test_a_slow_server_costs_no_more_than_the_timeout(azure: FakeAzure, contoso: Contoso,
                                                      session: requests.Session) -> None:
    azure.delay("probe", 5, times=10)
    started = time.monotonic()
    with pytest.raises(HelperError, match=f"^dev.azure.com did not answer in time while {STEP}$"):
        probe(session, timeout=1.5)
    assert time.monotonic() - started < 2.5


def test_a_redirect_to_another_host_is_not_followed(azure: FakeAzure, contoso: Contoso,
                                                    session: requests.Session) -> None:
    token = azure.issue_access_token("alice@contoso.com")
    azure.redirect("pat_create", "https://evil.example.com/steal?x=1")
    with pytest.raises(HelperError) as caught:
        http.call(session, "POST", PATS, step="creating a PAT", timeout=10,
                  headers={"Authorization": f"Bearer {token}"}, json={"displayName": "x"})
    message = str(caught.value)
    assert message.startswith("vssps.dev.azure.com redirected to evil.example.com while "
                              "creating a PAT; not following it")
    assert token not in message and "steal" not in message
    assert len(azure.requests_for("pat_create")) == 1
    assert azure.pats == []


def test_msal_gets_a_session_that_does_not_follow_redirects_either(
        azure: FakeAzure, contoso: Contoso, session: requests.Session) -> None:
    azure.redirect("probe", "https://login.microsoftonline.com/elsewhere")
    response = session.get(ORG_URL)  # as msal calls it: plain session methods
    assert response.status_code == 302
    assert azure.requests_for("openid") == []


def test_an_untrusted_certificate_says_how_to_trust_it(azure: FakeAzure, contoso: Contoso,
                                                       tmp_path: Path) -> None:
    other_ca = make_certificates(tmp_path / "other").ca
    with http.new_session(settings_for(azure, ca_file=str(other_ca))) as session, \
            pytest.raises(HelperError) as caught:
        probe(session)
    assert str(caught.value) == (
        "the certificate of dev.azure.com is not trusted (unable to get local issuer "
        "certificate); if your network inspects TLS, set http.sslCAInfo to the file of its CA "
        "(git config --global http.sslCAInfo /path/to/ca.pem)")
    assert probes(azure) == 0


def test_ssl_verify_off_is_honoured_as_git_honours_it(azure: FakeAzure, contoso: Contoso,
                                                      tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    other_ca = make_certificates(tmp_path / "other").ca
    settings = settings_for(azure, ca_file=str(other_ca), ssl_verify=False)
    with http.new_session(settings) as session:
        assert probe(session).status_code == 401
    assert capfd.readouterr().err == ""  # no InsecureRequestWarning on git's stderr


# -- bodies --------------------------------------------------------------------------------


def pat_list(azure: FakeAzure, session: requests.Session) -> requests.Response:
    token = azure.issue_access_token("alice@contoso.com")
    return http.call(session, "GET", PATS, step="listing PATs", timeout=10,
                     headers={"Authorization": f"Bearer {token}"})


def test_json_comes_through(azure: FakeAzure, contoso: Contoso,
                            session: requests.Session) -> None:
    assert http.json_of(pat_list(azure, session), "a page of PATs") == {
        "continuationToken": "", "patTokens": []}


@pytest.mark.parametrize(("body", "content_type", "got"), [
    ("<!DOCTYPE html><html><head><title>Contoso Web Gateway \x1b[31m- Sign in</title></head>"
     "<body>Please sign in</body></html>", "text/html; charset=utf-8",
     "an HTML page titled 'Contoso Web Gateway \\x1b[31m- Sign in'"),
    ("<html><body>no title</body></html>", "application/json", "an HTML page"),
    ('{"continuationToken": "", "patTokens": [{"displayName":', "application/json",
     "a cut-short or malformed JSON body"),
    ('["a", "list"]', "application/json", "a JSON list instead of an object"),
    ("", "application/json", "an empty body"),
    ("all good", "text/plain", "a text/plain body"),
    ('{"x": 1}', None, "a text/plain body"),
])
def test_anything_but_a_json_object_is_one_clear_line(
        azure: FakeAzure, contoso: Contoso, session: requests.Session, body: str,
        content_type: str | None, got: str) -> None:
    azure.fail("pat_list", 200, body=body, content_type=content_type)
    with pytest.raises(HelperError) as caught:
        http.json_of(pat_list(azure, session), "a page of PATs")
    assert str(caught.value) == (f"expected a page of PATs from vssps.dev.azure.com but got "
                                 f"{got} (HTTP 200)")


def test_a_huge_body_is_refused_without_reading_it_all(azure: FakeAzure, contoso: Contoso,
                                                       session: requests.Session) -> None:
    huge = json.dumps({"patTokens": ["x" * 1000] * 20_000})  # 20 MB
    azure.fail("pat_list", 200, body=huge, content_type="application/json")
    response = pat_list(azure, session)
    assert len(response.content) <= http.MAX_BODY + 64 * 1024
    with pytest.raises(HelperError, match=r"but got a body larger than 1 MiB \(HTTP 200\)$"):
        http.json_of(response, "a page of PATs")


def test_tokens_never_reach_the_trace(azure: FakeAzure, contoso: Contoso,
                                      session: requests.Session, tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    trace.configure(str(log))
    try:
        token = azure.issue_access_token("alice@contoso.com")
        azure.fail("pat_list", 503)
        http.call(session, "GET", PATS + "&sig=s3cr3t", step="listing PATs",
                  timeout=10, headers={"Authorization": f"Bearer {token}"})
    finally:
        trace.configure("")
    text = log.read_text()
    assert "GET vssps.dev.azure.com/contoso/_apis/tokens/pats -> 503" in text
    assert "-> 200" in text
    assert token not in text and "s3cr3t" not in text
