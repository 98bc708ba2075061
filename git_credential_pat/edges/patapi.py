"""A client of Azure DevOps' PAT Lifecycle Management API, for one organization.

The API authenticates with an Entra access token (never a PAT) and documents HTTP 200 even for
failures, with the reason in `patTokenError`; so the body, not the status, decides success.
Every PAT is created for this organization only (`allOrgs: false`): global PATs stop working
on 1 December 2026 and many organizations forbid them already.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

from git_credential_pat.core.constants import DAY
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import printable, secret
from git_credential_pat.edges import http, trace

API_VERSION = "7.1-preview.1"
PAGE_SIZE = 100
MAX_TOKEN = 1024  # characters; Azure DevOps' PATs have 52 or 84
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", re.ASCII)
MAX_PAGES = 50  # 5,000 PATs; a server that never stops paging must not hold the mint lock
_ISO_DATE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?", re.ASCII)


@dataclass
class Pat:
    """A PAT as the API describes it; `token` is the secret, present only right after create."""

    authorization_id: str
    display_name: str
    scope: str
    valid_from: int
    valid_to: int
    target_accounts: list[str]
    token: str | None
    # validFrom to the fraction of a second, which tells which of two PATs is newer
    created: float = field(default=0.0, compare=False)


class PatApiError(HelperError):
    """The API refused; `code` is its `patTokenError` (or "" for an HTTP-level refusal)."""

    def __init__(self, message: str, code: str = "", status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class TokenRefused(PatApiError):
    """The API refused the access token itself (HTTP 401), not the request: revoked, stale
    after a Continuous Access Evaluation event, or from a tenant the organization has left.
    `challenge` holds the answer's headers that say which (`edges.tenant` reads them)."""

    def __init__(self, message: str, challenge: dict[str, str]) -> None:
        super().__init__(message, "", 401)
        self.challenge = challenge


CHALLENGE_HEADERS = ("WWW-Authenticate", "X-VSS-ResourceTenant")


def _explain(code: str, org: str, scope: str = "", days: int | None = None) -> str:
    """What a `patTokenError` means to the person running git, and what they can do."""
    lifespan = f" of {days} days" if days is not None else ""
    messages = {
        "displayNameRequired": "the PAT needs a name",
        "invalidDisplayName": "the PAT name was refused",
        "invalidValidTo": "the PAT expiry date was refused",
        "invalidScope": f"the PAT scope {scope!r} was refused; check credential.patScope",
        "accessDenied": f"your account may not manage PATs in the organization {org}",
        "authorizationNotFound": f"the organization {org} has no such PAT",
        "invalidAuthorizationId": "the PAT id was refused as malformed",
        "failedToReadTenantPolicy": f"Azure DevOps could not read the PAT policies of {org}; "
                                    "try again later",
        "globalPatPolicyViolation": f"the organization {org} does not allow PATs for all "
                                    "organizations",
        "fullScopePatPolicyViolation": f"the organization {org} does not allow full-access PATs; "
                                       "set credential.patScope to narrower scopes",
        "patLifespanPolicyViolation": f"the organization {org} does not allow PATs with a "
                                      f"lifespan{lifespan}; set credential.patLifespanDays lower",
        "disablePatCreationPolicyViolation": f"the organization {org} does not allow creating "
                                             "PATs",
        "globalPATCreationBlocked": "Azure DevOps no longer creates PATs for all organizations",
        "expiredPatCannotBeExtended": "an expired PAT cannot be extended; create a new one",
        "noPatToken": f"Azure DevOps answered without the PAT for {org}",
    }
    return messages.get(code, f"Azure DevOps refused the PAT request for {org} ({code})")


class PatClient:
    """The PATs of the signed-in user in one organization."""

    def __init__(self, org: str, access_token: str, session: requests.Session,
                 timeout: float) -> None:
        secret(access_token)
        self.org = org
        self.url = f"https://vssps.dev.azure.com/{org}/_apis/tokens/pats"
        self.session = session
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {access_token}",
                         "Accept": "application/json"}

    def create(self, display_name: str, scope: str, valid_to: int) -> Pat:
        """A new PAT, only as the service describes a usable one: a PAT it made but described
        otherwise (no token, say) is revoked at once, since storing it would serve git a
        credential that cannot work until it expires."""
        body = {"displayName": display_name, "scope": scope, "validTo": format_time(valid_to),
                "allOrgs": False}
        step = "creating a PAT"
        response = self._send("POST", step, json=body)
        item = self._result(response, step, body).get("patToken")
        if not isinstance(item, dict):
            raise PatApiError(_explain("noPatToken", self.org), "noPatToken",
                              response.status_code)
        pat: Pat | None = None
        try:
            pat = _pat(item, self.org)
            problem = _unusable(pat, time.time())
        except HelperError:
            problem = "a PAT without an id or dates"
        if pat is not None and not problem:
            return pat
        made = item.get("authorizationId")
        revoked = isinstance(made, str) and bool(_GUID.fullmatch(made)) and self._revoke_made(made)
        raise PatApiError(f"Azure DevOps answered the creation of a PAT for {self.org} with "
                          f"{problem}; {'it was revoked; ' if revoked else ''}try again later",
                          "unusableAnswer", response.status_code)

    def _revoke_made(self, authorization_id: str) -> bool:
        try:
            self.revoke(authorization_id)
        except HelperError as error:
            trace.log(f"could not revoke the unusable PAT {authorization_id}: {error}")
            return False
        return True

    def revoke(self, authorization_id: str) -> None:
        step = "revoking a PAT"
        response = self._send("DELETE", step, params={"authorizationId": authorization_id})
        if response.status_code >= 400 or response.content.strip() not in (b"", b"{}"):
            self._result(response, step, {})  # a refusal, which comes with a patTokenError

    def list(self, status: str = "active") -> Iterator[Pat]:
        """Every PAT with that status (active, revoked, expired or all), fetched page by page."""
        seen: set[str] = set()
        continuation = ""
        for _ in range(MAX_PAGES):
            params = {"displayFilterOption": status, "$top": str(PAGE_SIZE)}
            if continuation:
                params["continuationToken"] = continuation
            step = "listing PATs"
            page = self._result(self._send("GET", step, params=params), step, {})
            for item in page.get("patTokens") or []:
                yield _pat(item, self.org)
            continuation = str(page.get("continuationToken") or "")
            if not continuation:
                return
            if continuation in seen:
                trace.log("the PAT list repeated a continuation token; stopping")
                return
            seen.add(continuation)
        raise PatApiError(f"Azure DevOps kept sending more pages of PATs of {self.org} "
                          f"(over {MAX_PAGES} pages of {PAGE_SIZE}); stopped listing them")

    def _send(self, method: str, step: str, *, params: dict[str, str] | None = None,
              json: dict | None = None) -> requests.Response:
        query = {"api-version": API_VERSION, **(params or {})}
        return http.call(self.session, method, self.url, step=f"{step} in {self.org}",
                         timeout=self.timeout, headers=self._headers, params=query, json=json)

    def _result(self, response: requests.Response, step: str, request: dict) -> dict:
        """The answer's JSON, once neither its `patTokenError` nor its status is a refusal.

        The body is read first: the API may send its error codes with any status.
        """
        status = response.status_code
        if status >= 400 and not _has_pat_error(response):
            if status == 401:
                raise TokenRefused(f"Azure DevOps refused the sign-in for the organization "
                                   f"{self.org} (HTTP 401 while {step})",
                                   {name: response.headers.get(name, "")
                                    for name in CHALLENGE_HEADERS})
            if status == 403:
                raise PatApiError(f"your account may not manage PATs in the organization "
                                  f"{self.org} (HTTP {status} while {step})", "", status)
            raise PatApiError(f"Azure DevOps refused {step} in {self.org} (HTTP {status})",
                              "", status)
        result = http.json_of(response, f"the result of {step}")
        code = printable(str(result.get("patTokenError") or "none"))[:80]
        if code != "none":
            raise PatApiError(_explain(code, self.org, request.get("scope", ""),
                                       _days_from_now(request.get("validTo"))), code, status)
        return result


def pat_works(org_url: str, token: str, session: requests.Session, timeout: float) -> bool:
    """Whether Azure DevOps takes a PAT at all: the organization's connection data, which
    every PAT of it may read whatever its scope."""
    secret(token)
    response = http.call(session, "GET", f"{org_url}/_apis/connectionData",
                         step="checking a refused PAT", timeout=timeout, auth=("pat", token))
    return response.status_code == 200


def _unusable(pat: Pat, now: float) -> str:
    """What makes a just-created PAT unusable, or "": a token git can be handed on one line,
    an id the API can be asked about, and dates with the expiry still ahead."""
    token = pat.token or ""
    if not token or len(token) > MAX_TOKEN or not token.isprintable() or " " in token:
        return "no usable token"
    if not _GUID.fullmatch(pat.authorization_id):
        return "a malformed id"
    if not pat.valid_from <= pat.valid_to or pat.valid_to <= now:
        return "an expiry that has passed"
    return ""


def _has_pat_error(response: requests.Response) -> bool:
    return b'"patTokenError"' in response.content[:http.MAX_BODY]


def _days_from_now(valid_to: str | None) -> int | None:
    """The lifespan a request asked for, in whole days as people set it."""
    return round((parse_time(valid_to) - time.time()) / DAY) if valid_to else None


def _pat(item: dict, org: str) -> Pat:
    try:
        pat = Pat(
            authorization_id=str(item["authorizationId"]),
            display_name=str(item.get("displayName") or ""),
            scope=str(item.get("scope") or ""),
            valid_from=parse_time(item["validFrom"]),
            valid_to=parse_time(item["validTo"]),
            target_accounts=[str(a) for a in item.get("targetAccounts") or []],
            token=item["token"] if isinstance(item.get("token"), str) and item["token"] else None,
            created=parse_instant(item["validFrom"]),
        )
    except (KeyError, TypeError, ValueError):
        raise HelperError(f"Azure DevOps described a PAT of {org} in an unexpected shape "
                          "(no authorizationId or dates)") from None
    secret(pat.token)
    return pat


def parse_time(text: str) -> int:
    """Whole Unix seconds from the API's ISO 8601 dates (`2020-11-02T22:56:52.1033333Z`)."""
    return int(parse_instant(text))


def parse_instant(text: str) -> float:
    """Unix seconds with their fraction, from dates whose seven fractional digits Python 3.9's
    `fromisoformat` refuses."""
    match = _ISO_DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an ISO 8601 date: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = float(match.group(7) or 0)
    zone = match.group(8) or "Z"
    offset = 0
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return calendar.timegm((year, month, day, hour, minute, second)) - offset + fraction


def format_time(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
