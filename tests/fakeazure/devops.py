"""Azure DevOps: the unauthenticated tenant probe, who a credential belongs to, and the PAT
Lifecycle Management API (MicrosoftDocs/vsts-rest-api-specs, specification/tokens/*/tokens.json
and its httpExamples).

Shapes follow the spec: every PAT operation answers `PatTokenResult`
(`{patToken, patTokenError}`) except list (`PagedPatTokens`: `{continuationToken, patTokens}`,
an empty continuation token on the last page) and revoke (204, empty body). The spec documents
HTTP 200 for errors too, with `patTokenError` naming the problem and `patToken` null; a knob
makes the fake answer those with another status, for clients that must cope with both.
`targetAccounts` holds organization IDs (GUIDs), null for an all-organizations PAT, and
`token` is only filled in by create. Dates are written the way .NET does (up to seven
fractional digits, trailing zeros dropped, `Z`).

Callers are authenticated with Entra access tokens for the Azure DevOps resource whose tenant
owns the organization; a PAT is refused with 401, as the real API refuses PATs, and an
application's own token (a service principal's or managed identity's) with 403: only users
have PATs. Git and the probe accept those tokens like a user's. A user's token issued before
their sessions were revoked is refused everywhere with the usual 401; after a Continuous
Access Evaluation event, a token not minted with the event's claims is refused too, and the
PAT API answers a client that declared the `cp1` capability with a claims challenge.
"""

from __future__ import annotations

import base64
import datetime
import re
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from tests.fakeazure.state import (
    ADO_RESOURCE,
    DAY,
    AccessTokenRecord,
    Org,
    PatRecord,
    State,
    declares_cae,
    new_guid,
)
from tests.fakeazure.web import Request, Response, json_response, text_response

Handler = Callable[[Request], Response]

BASIC_REALM = "https://tfsprodcus3.visualstudio.com/"
API_VERSIONS = frozenset({"6.1", "7.0", "7.1", "7.2"})
PAT_WRITE_SCOPES = frozenset({"user_impersonation", ".default", "vso.pats_manage"})
PAT_READ_SCOPES = PAT_WRITE_SCOPES | {"vso.pats"}
GIT_READ_SCOPES = frozenset({"vso.code", "vso.code_write", "vso.code_manage", "vso.code_full",
                             "app_token"})
GIT_WRITE_SCOPES = GIT_READ_SCOPES - {"vso.code"}
MAX_PAT_DAYS = 366
_SCOPE_NAME = re.compile(r"(vso\.[a-z_]+|app_token)\Z")
_PAT_ALPHABET = string.ascii_letters + string.digits


def new_pat_token() -> str:
    """84 characters like today's Azure DevOps PATs: 76 random, the `AZDO` signature, and
    four more (a stand-in for the checksum)."""
    def pick(n: int) -> str:
        return "".join(secrets.choice(_PAT_ALPHABET) for _ in range(n))
    return pick(76) + "AZDO" + pick(4)


def dotnet_date(when: float) -> str:
    stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    ticks = stamp.microsecond * 10
    base = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ticks:07d}".rstrip("0").rstrip(".") + "Z"


def parse_date(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    # Python 3.9's fromisoformat takes exactly 3 or 6 fractional digits.
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def vss_error(message: str, type_key: str, status: int,
              headers: list[tuple[str, str]] | None = None) -> Response:
    """Azure DevOps' JSON error body for failures outside the PAT error enum."""
    return json_response({
        "$id": "1", "innerException": None, "message": message,
        "typeName": f"Microsoft.VisualStudio.Services.WebApi.{type_key}, "
                    "Microsoft.VisualStudio.Services.WebApi",
        "typeKey": type_key, "errorCode": 0, "eventId": 3000,
    }, status, headers)


def challenge_headers(org: Org) -> list[tuple[str, str]]:
    """What Azure DevOps sends with a 401: one WWW-Authenticate per scheme, the Bearer one
    naming the organization's Entra tenant (bare for Microsoft-account organizations), and the
    tenant again in X-VSS-ResourceTenant."""
    bearer = "Bearer" if org.msa else (
        f"Bearer authorization_uri=https://login.microsoftonline.com/{org.tenant}")
    return [
        ("WWW-Authenticate", bearer),
        ("WWW-Authenticate", f'Basic realm="{BASIC_REALM}"'),
        ("WWW-Authenticate", "TFS-Federated"),
        ("X-TFS-FedAuthRealm", BASIC_REALM),
        ("X-TFS-FedAuthIssuer", f"https://{org.name}.visualstudio.com/"),
        ("X-VSS-AuthorizationEndpoint", f"https://vssps.dev.azure.com/{org.name}/"),
        ("X-VSS-ResourceTenant", org.tenant),
    ]


def unauthorized(org: Org, message: str = "") -> Response:
    return vss_error(message or "TF400813: The user '' is not authorized to access this "
                     "resource.", "UnauthorizedRequestException", 401, challenge_headers(org))


@dataclass
class Caller:
    """Who a request authenticated as, and with what."""

    kind: str  # pat | entra
    user: str
    pat: PatRecord | None = None
    token: AccessTokenRecord | None = None


@dataclass
class Presented:
    """What an Authorization header carried, before deciding whether it is good enough."""

    scheme: str  # none | basic | bearer | other
    kind: str | None  # pat | entra | unknown | None
    pat: PatRecord | None = None
    token: AccessTokenRecord | None = None
    username: str = ""


def presented(state: State, req: Request) -> Presented:
    scheme, value = req.authorization()
    if scheme == "none":
        return Presented("none", None)
    if scheme == "bearer":
        token = state.find_access_token(value)
        return Presented("bearer", "entra" if token else "unknown", token=token)
    if scheme == "basic":
        pair = req.basic_credentials()
        if pair is None:
            return Presented("basic", "unknown")
        username, password = pair
        if not password:  # git's first try for a URL with a user name in it: no credential yet
            return Presented("basic", None, username=username)
        pat = state.find_pat(password)
        if pat:
            return Presented("basic", "pat", pat=pat, username=username)
        token = state.find_access_token(password)
        return Presented("basic", "entra" if token else "unknown", token=token,
                         username=username)
    return Presented("other", "unknown")


def token_ok_for(state: State, token: AccessTokenRecord | None, org: Org) -> bool:
    """A live Entra access token for Azure DevOps, from the organization's tenant (any tenant
    for a Microsoft-account organization), that no revocation or CAE event has refused."""
    return (token is not None and state.now() < token.expires_at
            and token.audience == ADO_RESOURCE and (org.msa or token.tenant == org.tenant)
            and not state.token_refusal(token))


def claims_challenge(org: Org, claims: str) -> Response:
    """Continuous Access Evaluation's answer to a token an event has made stale, sent only to
    clients that declared the `cp1` capability: 401 with `error="insufficient_claims"` and the
    claims a new token must carry, base64-encoded (learn.microsoft.com, "claims challenges")."""
    encoded = base64.b64encode(claims.encode()).decode()
    bearer = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
              'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", '
              f'error="insufficient_claims", claims="{encoded}"')
    headers = [(name, value) for name, value in challenge_headers(org)
               if not (name == "WWW-Authenticate" and value.startswith("Bearer"))]
    return vss_error("TF400813: The user is not authorized to access this resource: the "
                     "access token does not satisfy the claims of a continuous access "
                     "evaluation event.", "UnauthorizedRequestException", 401,
                     [("WWW-Authenticate", bearer), *headers])


def pat_ok_for(state: State, pat: PatRecord | None, org: Org) -> bool:
    return (pat is not None and pat.live(state.now())
            and (pat.all_orgs or org.id in (pat.target_accounts or [])))


def caller_for_org(state: State, seen: Presented, org: Org) -> Caller | None:
    """Who may act in `org` with what was presented: a live PAT of the organization (Basic,
    non-empty user name), or a live Entra token for it (Bearer, or Basic as the password)."""
    if seen.kind == "pat" and seen.username and pat_ok_for(state, seen.pat, org):
        assert seen.pat is not None
        return Caller("pat", seen.pat.user, pat=seen.pat)
    if seen.kind == "entra" and (seen.scheme == "bearer" or seen.username) and token_ok_for(
            state, seen.token, org):
        assert seen.token is not None
        return Caller("entra", seen.token.upn, token=seen.token)
    return None


class DevOps:
    """Routes and handlers for dev.azure.com, {org}.visualstudio.com and the vssps hosts."""

    def __init__(self, state: State, git_route: Callable[[Request, Org, list[str]],
                                                          tuple[str, Handler] | None]) -> None:
        self.state = state
        self.git_route = git_route

    # -- routing -----------------------------------------------------------------------------

    def route(self, req: Request) -> tuple[str, Handler] | None:
        host = req.host
        segments = [s for s in req.path.split("/") if s]
        if host == "app.vssps.visualstudio.com":
            return "profile", self.profile
        if host == "vssps.dev.azure.com":
            if len(segments) >= 4 and [s.lower() for s in segments[1:4]] == [
                    "_apis", "tokens", "pats"]:
                return self.pat_route(req, segments[0])
            return None
        if host.endswith(".vssps.visualstudio.com"):
            org_name = host.split(".")[0]
            if [s.lower() for s in segments[:3]] == ["_apis", "tokens", "pats"]:
                return self.pat_route(req, org_name)
            return None
        if host == "dev.azure.com":
            if not segments:
                return None
            org_name, rest = segments[0], segments[1:]
        elif host.endswith(".visualstudio.com"):
            org_name, rest = host.split(".")[0], segments
            if rest and rest[0].lower() == "defaultcollection":
                rest = rest[1:]
        else:
            return None
        org = self.state.org(org_name)
        if org is None:
            return "probe", self.not_found
        if "_git" in rest:
            return self.git_route(req, org, rest)
        return "probe", lambda r: self.probe(r, org)

    def pat_route(self, req: Request, org_name: str) -> tuple[str, Handler]:
        step = {"POST": "pat_create", "PUT": "pat_update", "DELETE": "pat_revoke"}.get(
            req.method, "pat_get" if "authorizationid" in req.query.lower() else "pat_list")
        return step, lambda r: self.pats(r, org_name)

    # -- probe -------------------------------------------------------------------------------

    def not_found(self, req: Request) -> Response:
        return text_response("404 - The organization could not be found.", 404)

    def probe(self, req: Request, org: Org) -> Response:
        seen = presented(self.state, req)
        caller = caller_for_org(self.state, seen, org)
        if caller is None:
            response = unauthorized(org)
            response.credential = seen.kind
            return response
        path = req.path.rstrip("/").lower()
        if path.endswith("/_apis/connectiondata"):
            response = json_response(self.connection_data(org, caller))
        else:
            response = text_response(f"<html><body>Azure DevOps: {org.name}</body></html>",
                                     200, "text/html; charset=utf-8")
        response.credential, response.user = caller.kind, caller.user
        return response

    def connection_data(self, org: Org, caller: Caller) -> dict[str, object]:
        user = self.state.user(caller.user)
        identity = {
            "id": user.oid if user else new_guid(),
            "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{org.tenant}\\"
                          f"{caller.user}",
            "subjectDescriptor": "aad." + base64.urlsafe_b64encode(
                caller.user.encode()).decode().rstrip("="),
            "providerDisplayName": user.name if user else caller.user,
            "isActive": True,
            "properties": {"Account": {"$type": "System.String", "$value": caller.user}},
            "resourceVersion": 2, "metaTypeId": 0,
        }
        return {"authenticatedUser": identity, "authorizedUser": identity,
                "instanceId": org.id, "deploymentType": "hosted",
                "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                                        "defaultAccessMappingMoniker": "PublicAccessMapping"}}

    # -- profile (app.vssps.visualstudio.com) ------------------------------------------------

    def profile(self, req: Request) -> Response:
        seen = presented(self.state, req)
        token = seen.token
        if seen.kind != "entra" or token is None or self.state.now() >= token.expires_at \
                or token.audience != ADO_RESOURCE:
            return vss_error("TF400813: The user '' is not authorized to access this resource.",
                             "UnauthorizedRequestException", 401)
        user = self.state.user(token.upn)
        path = req.path.rstrip("/").lower()
        if path == "/_apis/profile/profiles/me":
            response = json_response({
                "displayName": user.name if user else token.upn,
                "publicAlias": user.oid if user else "", "emailAddress": token.upn,
                "coreRevision": 1, "timeStamp": dotnet_date(self.state.now()),
                "id": user.oid if user else "", "revision": 1})
        elif path == "/_apis/accounts":
            with self.state.lock:
                orgs = [o for o in self.state.orgs.values()
                        if o.msa or o.tenant == token.tenant]
            response = json_response({"count": len(orgs), "value": [
                {"accountId": o.id, "accountUri": f"https://vssps.dev.azure.com/{o.name}/",
                 "accountName": o.name, "properties": {}} for o in orgs]})
        else:
            return text_response("Not found", 404)
        response.credential, response.user = "entra", token.upn
        return response

    # -- PAT lifecycle API -------------------------------------------------------------------

    def pats(self, req: Request, org_name: str) -> Response:
        org = self.state.org(org_name)
        if org is None:
            return vss_error(f"TF400813: Organization '{org_name}' not found.",
                             "AccountNotFoundException", 404)
        version = req.params().get("api-version", "")
        match = re.fullmatch(r"(\d+\.\d+)-preview(\.1)?", version)
        if not version:
            return vss_error("No api-version was supplied for the \"GET\" request. The "
                             "version must be supplied either as part of the Accept header "
                             "(e.g. \"application/json; api-version=1.0\") or as a query "
                             "parameter (e.g. '?api-version=1.0').",
                             "VssVersionNotSpecifiedException", 400)
        if not match or match.group(1) not in API_VERSIONS:
            return vss_error(f"The requested REST API version of {version} is out of range "
                             "or lacks the -preview flag this preview API requires.",
                             "VssVersionOutOfRangeException", 400)
        v72 = match.group(1) == "7.2"
        seen = presented(self.state, req)
        if seen.kind != "entra" or not token_ok_for(self.state, seen.token, org):
            response = self.refused(org, seen.token)
            response.credential = seen.kind
            return response
        assert seen.token is not None
        if seen.token.app:
            response = vss_error("TF400813: Service principals and managed identities cannot "
                                 "manage personal access tokens; the PAT lifecycle API needs a "
                                 "user's token.", "UnauthorizedRequestException", 403)
            response.credential, response.user = "entra", seen.token.upn
            return response
        caller = Caller("entra", seen.token.upn, token=seen.token)
        allowed = PAT_READ_SCOPES if req.method == "GET" else PAT_WRITE_SCOPES
        if not allowed & set(seen.token.scopes):
            response = self.pat_error("accessDenied")
        elif req.method == "POST":
            response = self.create(req, org, caller, v72)
        elif req.method == "GET" and "authorizationid" in req.query.lower():
            response = self.get(req, caller)
        elif req.method == "GET":
            response = self.list(req, org, caller)
        elif req.method == "PUT":
            response = self.update(req, org, caller, v72)
        elif req.method == "DELETE":
            response = self.revoke(req, caller)
        else:
            response = vss_error("The requested resource does not support http method "
                                 f"'{req.method}'.", "HttpMethodNotAllowed", 405)
        response.credential, response.user = "entra", caller.user
        return response

    def refused(self, org: Org, token: AccessTokenRecord | None) -> Response:
        """The 401 for a token the API does not take: a claims challenge when a CAE event made
        it stale and its client can answer one, else the usual challenge (which names the
        organization's tenant, so a token of another tenant learns which one to ask)."""
        if token is not None and self.state.token_refusal(token) == "claims" \
                and declares_cae(token.claims):
            with self.state.lock:
                _, claims = self.state.cae_events[token.upn.lower()]
            return claims_challenge(org, claims)
        return unauthorized(org)

    def pat_error(self, code: str) -> Response:
        return json_response({"patToken": None, "patTokenError": code},
                             self.state.pat_error_status)

    @staticmethod
    def pat_json(pat: PatRecord, with_token: bool = False) -> dict[str, object]:
        return {
            "displayName": pat.display_name,
            "validTo": dotnet_date(pat.valid_to),
            "scope": pat.scope,
            "targetAccounts": None if pat.all_orgs else list(pat.target_accounts or []),
            "validFrom": dotnet_date(pat.valid_from),
            "authorizationId": pat.authorization_id,
            "token": pat.token if with_token else None,
        }

    def body_json(self, req: Request) -> dict[str, object] | Response:
        try:
            body = req.json()
        except ValueError:
            return vss_error("The request body could not be parsed as JSON.",
                             "VssRequestContentException", 400)
        if not isinstance(body, dict):
            return vss_error("The request body must be a JSON object.",
                             "VssRequestContentException", 400)
        return body

    def check_fields(self, body: dict[str, object], org: Org, creating: bool
                     ) -> tuple[str | None, dict[str, object]]:
        """Validate create/update fields against the spec and the organization's policy.
        Returns (patTokenError or None, normalized fields present in the body)."""
        now, policy, out = self.state.now(), org.policy, {}
        if "displayName" in body or creating:
            name = body.get("displayName")
            if not isinstance(name, str) or not name.strip():
                return "displayNameRequired", {}
            if len(name) > 256 or any(ord(c) < 32 for c in name):
                return "invalidDisplayName", {}
            out["display_name"] = name
        if "scope" in body or creating:
            scope = body.get("scope")
            names = scope.split() if isinstance(scope, str) else []
            if not names or not all(_SCOPE_NAME.match(n) for n in names):
                return "invalidScope", {}
            if "app_token" in names and policy.forbid_full_scope:
                return "fullScopePatPolicyViolation", {}
            out["scope"] = " ".join(names)
        if "validTo" in body or creating:
            valid_to = parse_date(body.get("validTo")) if "validTo" in body else now + 30 * DAY
            if valid_to is None or valid_to <= now:
                return "invalidValidTo", {}
            if policy.max_lifespan_days is not None and \
                    valid_to > now + policy.max_lifespan_days * DAY + 60:
                return "patLifespanPolicyViolation", {}
            if valid_to > now + MAX_PAT_DAYS * DAY:
                return "invalidValidTo", {}
            out["valid_to"] = valid_to
        if "allOrgs" in body or creating:
            all_orgs = body.get("allOrgs", False)
            if not isinstance(all_orgs, bool):
                return "invalidTargetAccounts", {}
            if all_orgs and policy.forbid_global:
                return "globalPatPolicyViolation", {}
            out["all_orgs"] = all_orgs
        return None, out

    def create(self, req: Request, org: Org, caller: Caller, v72: bool) -> Response:
        body = self.body_json(req)
        if isinstance(body, Response):
            return body
        if org.policy.disable_creation:
            return self.pat_error("disablePatCreationPolicyViolation" if v72 else "accessDenied")
        error, fields = self.check_fields(body, org, creating=True)
        if error:
            return self.pat_error(error)
        pat = PatRecord(
            authorization_id=new_guid(), token=new_pat_token(), org=org.name,
            user=caller.user, scope=str(fields["scope"]),
            display_name=str(fields["display_name"]), valid_from=self.state.now(),
            valid_to=float(fields["valid_to"]),  # type: ignore[arg-type]
            all_orgs=bool(fields["all_orgs"]),
            target_accounts=None if fields["all_orgs"] else [org.id],
        )
        with self.state.lock:
            self.state.pats.append(pat)
            changed = self.state.create_answers.pop(0) if self.state.create_answers else {}
        return json_response({"patToken": {**self.pat_json(pat, with_token=True), **changed},
                              "patTokenError": "none"})

    def owned(self, caller: Caller, authorization_id: str) -> PatRecord | str:
        try:
            uuid.UUID(authorization_id)
        except ValueError:
            return "invalidAuthorizationId"
        pat = self.state.pat_by_id(authorization_id)
        if pat is None or pat.user != caller.user:
            return "authorizationNotFound"
        return pat

    def get(self, req: Request, caller: Caller) -> Response:
        found = self.owned(caller, req.params().get("authorizationId", ""))
        if isinstance(found, str):
            return self.pat_error(found)
        return json_response({"patToken": self.pat_json(found), "patTokenError": "none"})

    def list(self, req: Request, org: Org, caller: Caller) -> Response:
        params = req.params()
        show = params.get("displayFilterOption", "active").lower()
        sort_by = params.get("sortByOption", "displayDate").lower()
        ascending = params.get("isSortAscending", "true").lower() != "false"
        if show not in ("active", "revoked", "expired", "all") or sort_by not in (
                "displayname", "displaydate", "status"):
            return vss_error("Invalid filter or sort option.", "ArgumentException", 400)
        try:
            top = int(params.get("$top", "100"))
            offset = int(base64.urlsafe_b64decode(
                params.get("continuationToken", "") + "===").decode() or "0")
        except ValueError:
            return vss_error("Invalid $top or continuationToken.", "ArgumentException", 400)
        top = max(1, min(top, 100))
        now = self.state.now()
        with self.state.lock:
            mine = [p for p in self.state.pats if p.user == caller.user
                    and (p.all_orgs or org.id in (p.target_accounts or []))
                    and (show == "all" or p.status(now) == show)]
        keys: dict[str, Callable[[PatRecord], object]] = {
            "displayname": lambda p: (p.display_name.lower(), p.valid_to),
            "displaydate": lambda p: (p.valid_to, p.display_name.lower()),
            "status": lambda p: (p.status(now), p.valid_to),
        }
        mine.sort(key=keys[sort_by], reverse=not ascending)  # type: ignore[arg-type]
        page = mine[offset:offset + top]
        more = offset + top < len(mine) or self.state.endless_pat_pages
        token = base64.urlsafe_b64encode(str(offset + top).encode()).decode() if more else ""
        return json_response({"continuationToken": token,
                              "patTokens": [self.pat_json(p) for p in page]})

    def update(self, req: Request, org: Org, caller: Caller, v72: bool) -> Response:
        body = self.body_json(req)
        if isinstance(body, Response):
            return body
        found = self.owned(caller, str(body.get("authorizationId") or ""))
        if isinstance(found, str):
            return self.pat_error(found)
        if found.revoked:
            return self.pat_error("authorizationNotFound")
        if found.status(self.state.now()) == "expired":
            return self.pat_error("expiredPatCannotBeExtended" if v72 else "invalidValidTo")
        error, fields = self.check_fields(body, org, creating=False)
        if error:
            return self.pat_error(error)
        with self.state.lock:
            found.display_name = str(fields.get("display_name", found.display_name))
            found.scope = str(fields.get("scope", found.scope))
            found.valid_to = float(fields.get("valid_to", found.valid_to))  # type: ignore[arg-type]
            if "all_orgs" in fields:
                found.all_orgs = bool(fields["all_orgs"])
                found.target_accounts = None if found.all_orgs else [org.id]
        return json_response({"patToken": self.pat_json(found), "patTokenError": "none"})

    def revoke(self, req: Request, caller: Caller) -> Response:
        found = self.owned(caller, req.params().get("authorizationId", ""))
        if isinstance(found, str):
            return self.pat_error(found)
        with self.state.lock:
            found.revoked = True
        return Response(204, [])
