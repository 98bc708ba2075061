"""Which Entra tenant signs people in to an Azure DevOps organization.

Azure DevOps says so to anyone who asks without credentials: its 401 carries
`WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/{tenant}` and
`X-VSS-ResourceTenant: {tenant}`. git (2.41+) passes those challenges on as `wwwauth[]`, which
saves the request. Only the tenant is taken from a challenge, and only when its URI names the
configured sign-in host: the helper never signs in wherever a server points it.

The same headers come with a 401 for a refused token: they say which tenant the organization
belongs to now, and with Continuous Access Evaluation which claims a new token must carry.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import requests

from git_credential_pat.core.constants import DEFAULT_AUTHORITY_HOST, MSA_AUTHORITY_TENANT
from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import http, trace

# Organizations backed by Microsoft accounts rather than an Entra directory name this tenant
# (or none); they sign in through the multi-tenant endpoint.
MSA_TENANT = "00000000-0000-0000-0000-000000000000"
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_COMMA_SEPARATED = re.compile(r'(?:[^,"]|"[^"]*")+')


def discover(org: str, session: requests.Session, timeout: float, wwwauth: Iterable[str] = (),
             *, authority_host: str = DEFAULT_AUTHORITY_HOST) -> str:
    """The tenant to sign in to for `org`: a GUID, a domain name, or "organizations"."""
    found = _from_challenges(wwwauth, authority_host)
    if found:
        trace.log(f"tenant of {org} from git's wwwauth[]: {found}")
        return found
    url = f"https://dev.azure.com/{org}"
    for method in ("HEAD", "GET"):
        response = http.call(session, method, url, timeout=timeout,
                             step=f"finding the sign-in tenant of organization {org}")
        if response.status_code == 404:
            raise HelperError(f"the Azure DevOps organization {org} does not exist "
                              "(check the remote URL)")
        found = _from_headers(response.headers, authority_host)
        if found:
            trace.log(f"tenant of {org} from {method} {url}: {found}")
            return found
    raise HelperError(
        f"dev.azure.com did not say which Entra tenant organization {org} uses "
        f"(HTTP {response.status_code}); name it with "
        f"git config --global credential.https://dev.azure.com/{org}.patTenant TENANT")


def named_by(headers: Mapping[str, str], authority_host: str) -> str:
    """The tenant a 401 of Azure DevOps names, or "": it names the organization's tenant
    whatever the credential was, so a token from another tenant learns where to sign in."""
    return _from_headers(headers, authority_host)


def claims_challenge(headers: Mapping[str, str]) -> str:
    """The claims a Continuous Access Evaluation challenge asks a new token to carry, as the
    JSON text msal takes, or "" when the 401 is no such challenge (or its claims do not
    decode to a JSON object, which no token could satisfy)."""
    for scheme, params in _challenges(headers.get("WWW-Authenticate", "")):
        encoded = params.get("claims", "")
        if scheme != "bearer" or params.get("error") != "insufficient_claims" or not encoded:
            continue
        standard = encoded.replace("-", "+").replace("_", "/")
        try:
            text = base64.b64decode(standard + "=" * (-len(standard) % 4),
                                    validate=True).decode("utf-8")
            if isinstance(json.loads(text), dict):
                return text
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            pass
        trace.log("ignoring a claims challenge whose claims are not a JSON object")
    return ""


def _from_headers(headers: Mapping[str, str], authority_host: str) -> str:
    """The tenant named by an unauthenticated answer's headers, or ""."""
    found = _from_challenges([headers.get("WWW-Authenticate", "")], authority_host)
    if found:
        return found
    resource_tenant = headers.get("X-VSS-ResourceTenant", "").split(",")[0].strip()
    return _valid_tenant(resource_tenant)


def _from_challenges(values: Iterable[str], authority_host: str) -> str:
    """The tenant of the first usable Bearer challenge, or "".

    A Bearer challenge with no authorization_uri is what Microsoft-account-backed organizations
    send; such an organization signs in through "organizations".
    """
    bare_bearer = False
    for value in values:
        for scheme, params in _challenges(value):
            if scheme != "bearer":
                continue
            uri = params.get("authorization_uri", "")
            if not uri:
                bare_bearer = True
                continue
            tenant = _tenant_of(uri, authority_host)
            if tenant:
                return tenant
    return MSA_AUTHORITY_TENANT if bare_bearer else ""


def _tenant_of(uri: str, authority_host: str) -> str:
    parts = urlsplit(uri)
    expected = urlsplit(authority_host).hostname or authority_host
    if parts.scheme != "https" or (parts.hostname or "") != expected.lower():
        trace.log(f"ignoring an authorization_uri on {parts.hostname!r}, not {expected!r}")
        return ""
    return _valid_tenant(parts.path.strip("/").split("/")[0])


def _valid_tenant(candidate: str) -> str:
    """A tenant GUID (canonical form) or domain name; the all-zero GUID means Microsoft
    accounts; anything else is refused as ""."""
    candidate = candidate.strip().lower()
    try:
        tenant = str(uuid.UUID(candidate))
    except ValueError:
        return candidate if _DOMAIN.fullmatch(candidate) else ""
    return MSA_AUTHORITY_TENANT if tenant == MSA_TENANT else tenant


def _challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """`WWW-Authenticate` challenges as (scheme in lower case, parameters), good enough for
    the `Scheme name=value, name="value", Other ...` shapes Azure DevOps sends."""
    challenges: list[tuple[str, dict[str, str]]] = []
    for piece in _COMMA_SEPARATED.findall(value):
        piece = piece.strip()
        head, _, rest = piece.partition(" ")
        if head and "=" not in head:
            challenges.append((head.lower(), {}))
            piece = rest.strip()
        name, equals, param = piece.partition("=")
        if challenges and equals:
            challenges[-1][1][name.strip().lower()] = param.strip().strip('"')
    return challenges
