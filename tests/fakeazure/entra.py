"""Microsoft Entra ID's v2.0 endpoints, as far as MSAL Python's public-client flows use them.

What msal 1.39 sends and reads (from its source, `msal/oauth2cli/*.py`, `msal/authority.py`,
`msal/application.py`, `msal/token_cache.py`):

* OpenID discovery at `/{tenant}/v2.0/.well-known/openid-configuration`; msal reads
  `authorization_endpoint`, `token_endpoint`, `device_authorization_endpoint` and `issuer`, and
  takes the cache "realm" from the token endpoint's path, so for `organizations` the endpoints
  keep `organizations` while `issuer` carries the `{tenantid}` placeholder, as Entra's do.
* Instance discovery (`/common/discovery/instance?api-version=1.1`) only when a silent call
  finds nothing for the configured host and looks for aliases; it reads `metadata[].aliases`.
* Authorize: `response_mode=form_post` is mandatory (its loopback listener refuses `?code=`),
  PKCE S256, `client_info=1`, and `nonce` is the SHA-256 hex of a secret: msal compares the
  id_token's `nonce` claim with exactly the value it sent, so the fake echoes it verbatim.
* Token responses: msal decodes but does not verify the id_token (no signature check for
  public clients since 1.38), builds the account from `client_info` (uid/utid) and only
  creates an account record when `client_info` is present, which it asks for with
  `client_info=1` in every token request body. A `claims` parameter (JSON: a claims
  challenge's demands, and `xms_cc` for the client capabilities such as `cp1`) goes with
  every grant's request; the access token remembers it.
* Applications signing in as themselves (`ConfidentialClientApplication.acquire_token_for_client`)
  use the `client_credentials` grant with `scope={resource}/.default` and either
  `client_secret` or `client_assertion_type=...jwt-bearer` plus `client_assertion`: a JWT
  signed with a registered certificate's key (iss = sub = client ID, aud = the token
  endpoint, `x5t#S256` in the header), or a federated token from an issuer the application
  trusts. The answer has no refresh or ID token; the access token carries `idtyp: app`.

Errors follow Entra's shape: HTTP 400, `error`, `error_description` starting with an AADSTS
code, `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import string
import time
from collections.abc import Callable
from urllib.parse import urlencode

from tests.fakeazure import tokens
from tests.fakeazure.state import (
    ACCESS_TOKEN_LIFETIME,
    ADO_RESOURCE,
    ADO_RESOURCE_URI,
    AUTH_CODE_LIFETIME,
    DEVICE_CODE_LIFETIME,
    GRAPH_RESOURCE,
    LOGIN_HOST,
    META_TENANTS,
    REFRESH_TOKEN_IDLE_LIFETIME,
    AccessTokenRecord,
    App,
    AuthCode,
    DeviceCode,
    RefreshTokenRecord,
    State,
    User,
    new_guid,
)
from tests.fakeazure.tokens import b64url
from tests.fakeazure.web import Request, Response, json_response, text_response

BASE = f"https://{LOGIN_HOST}"
MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT_NAMES = {
    "authorization_code": "authorization_code",
    "refresh_token": "refresh_token",
    DEVICE_CODE_GRANT: "device_code",
    CLIENT_CREDENTIALS: CLIENT_CREDENTIALS,
}
# Leeway Entra allows on an assertion's nbf and exp.
CLOCK_SKEW = 300
_LOOPBACK_REDIRECT = re.compile(r"http://localhost:(\d{1,5})/?\Z")
_ROUTE = re.compile(r"/(?P<tenant>[^/]+)/(?P<rest>.*)\Z")

Handler = Callable[[Request], Response]


class OAuthError(Exception):
    """An error answered as Entra's JSON error body."""

    def __init__(self, error: str, code: int, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: AADSTS{code}")
        self.error, self.code, self.description, self.status = error, code, description, status

    def response(self) -> Response:
        trace, correlation = new_guid(), new_guid()
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        return json_response({
            "error": self.error,
            "error_description": (f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
                                  f"Correlation ID: {correlation} Timestamp: {stamp}"),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{BASE}/error?code={self.code}",
        }, self.status)


def make_jwt(claims: dict[str, object]) -> str:
    """A JWT-shaped token with a random, unverifiable signature: clients must not verify
    Entra tokens they are not the audience of, and msal does not verify id_tokens."""
    header = {"typ": "JWT", "alg": "RS256", "kid": "fakeazure"}
    return ".".join([
        b64url(json.dumps(header, separators=(",", ":")).encode()),
        b64url(json.dumps(claims, separators=(",", ":")).encode()),
        b64url(secrets.token_bytes(64)),
    ])


def pkce_s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _resource_of(scope: str) -> tuple[str, str]:
    """("resource id", "scope name") for one scope string."""
    if "/" in scope:
        resource, _, name = scope.rpartition("/")
        if resource.rstrip("/").lower() == ADO_RESOURCE_URI:
            return ADO_RESOURCE, name
        return resource.lower(), name
    return GRAPH_RESOURCE, scope


def parse_scopes(raw: str) -> tuple[list[str], str, tuple[str, ...], str]:
    """Split a scope parameter into (OIDC scopes, resource, resource scope names, the
    resource's spelling as the client wrote it). One resource per request, as Entra insists."""
    oidc, names, resources = [], [], {}
    for scope in raw.split():
        if scope in OIDC_SCOPES:
            oidc.append(scope)
            continue
        resource, name = _resource_of(scope)
        resources[resource] = scope.rpartition("/")[0] if "/" in scope else ""
        names.append(name)
    if len(resources) > 1:
        raise OAuthError("invalid_scope", 28000, "Provided value for the input parameter scope "
                         "is not valid because it contains more than one resource.")
    if not resources:
        return oidc, GRAPH_RESOURCE, ("User.Read",), ""
    resource, spelling = next(iter(resources.items()))
    return oidc, resource, tuple(names), spelling


class Entra:
    """Routes and handlers for login.microsoftonline.com."""

    def __init__(self, state: State) -> None:
        self.state = state

    def route(self, req: Request) -> tuple[str, Handler] | None:
        if req.path == "/common/discovery/instance" and req.method in ("GET", "HEAD"):
            return "discovery", self.instance_discovery
        match = _ROUTE.match(req.path)
        if not match:
            return None
        rest = match.group("rest")
        table: dict[tuple[str, str], tuple[str, Handler]] = {
            ("GET", "v2.0/.well-known/openid-configuration"): ("openid", self.openid),
            ("GET", "discovery/v2.0/keys"): ("openid", self.keys),
            ("GET", "oauth2/v2.0/authorize"): ("authorize", self.authorize),
            ("POST", "oauth2/v2.0/authorize"): ("authorize", self.authorize),
            ("POST", "oauth2/v2.0/devicecode"): ("devicecode", self.devicecode),
            ("POST", "oauth2/v2.0/token"): ("token", self.token),
        }
        method = "GET" if req.method == "HEAD" else req.method
        return table.get((method, rest))

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def tenant_path(req: Request) -> str:
        return req.path.split("/")[1]

    def known_tenant(self, tenant: str) -> bool:
        with self.state.lock:
            return tenant.lower() in META_TENANTS or tenant.lower() in self.state.tenants

    def require_tenant(self, tenant: str) -> None:
        if not self.known_tenant(tenant):
            raise OAuthError("invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to "
                             "make sure you have the correct tenant ID and are signing into the "
                             "correct cloud.")

    def require_client(self, client_id: str) -> None:
        if not client_id:
            raise OAuthError("invalid_request", 900144, "The request body must contain the "
                             "following parameter: 'client_id'.")
        if not self.state.client_allowed(client_id):
            raise OAuthError("unauthorized_client", 700016, f"Application with identifier "
                             f"'{client_id}' was not found in the directory.")

    def token_tenant(self, user: User, tenant_path: str) -> str:
        """The tenant a token is issued for: the home tenant for the meta authorities, else
        the named tenant, where the user must be a member or guest."""
        if tenant_path.lower() in META_TENANTS:
            return user.tenant
        if not user.can_sign_in_to(tenant_path.lower()):
            raise OAuthError("invalid_grant", 50020, f"User account '{user.upn}' from identity "
                             f"provider does not exist in tenant '{tenant_path}' and cannot "
                             "access the application in that tenant.")
        return tenant_path.lower()

    # -- discovery ---------------------------------------------------------------------------

    def openid(self, req: Request) -> Response:
        tenant = self.tenant_path(req)
        try:
            self.require_tenant(tenant)
        except OAuthError as error:
            return error.response()
        issuer_tenant = {"consumers": MSA_TENANT}.get(tenant.lower(), "{tenantid}")
        if tenant.lower() not in META_TENANTS:
            issuer_tenant = tenant.lower()
        root = f"{BASE}/{tenant}"
        return json_response({
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{BASE}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                "c_hash", "email"],
            "kerberos_endpoint": f"{root}/kerberos",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })

    def keys(self, req: Request) -> Response:
        return json_response({"keys": []})

    def instance_discovery(self, req: Request) -> Response:
        endpoint = req.params().get("authorization_endpoint", "")
        if not endpoint.startswith(BASE + "/"):
            return json_response({
                "error": "invalid_instance",
                "error_description": "AADSTS50049: Unknown or invalid instance.",
                "error_codes": [50049],
            }, 400)
        return json_response({
            "tenant_discovery_endpoint": f"{BASE}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": LOGIN_HOST,
                "preferred_cache": "login.windows.net",
                "aliases": [LOGIN_HOST, "login.windows.net", "login.microsoft.com",
                            "sts.windows.net"],
            }],
        })

    # -- authorize ---------------------------------------------------------------------------

    def authorize(self, req: Request) -> Response:
        params = req.form() if req.method == "POST" else req.params()
        tenant = self.tenant_path(req)
        with self.state.lock:
            self.state.authorize_count += 1
        try:
            self.require_tenant(tenant)
            self.require_client(params.get("client_id", ""))
        except OAuthError as error:
            return error_page(error)
        redirect_uri = params.get("redirect_uri", "")
        if not _LOOPBACK_REDIRECT.match(redirect_uri):
            return error_page(OAuthError(
                "invalid_request", 50011, f"The redirect URI '{redirect_uri}' specified in the "
                "request does not match the redirect URIs configured for the application."))
        mode = params.get("response_mode", "query")
        if mode not in ("query", "form_post"):
            return error_page(OAuthError("invalid_request", 900144,
                                         f"response_mode '{mode}' is not supported here."))
        state_param = params.get("state")

        def answer(fields: dict[str, str]) -> Response:
            if state_param is not None:
                fields["state"] = state_param
            return auth_response(redirect_uri, mode, fields)

        try:
            if params.get("response_type") != "code":
                raise OAuthError("unsupported_response_type", 70005,
                                 "The provided value for the input parameter 'response_type' "
                                 "is not allowed for this request.")
            challenge = params.get("code_challenge", "")
            if not challenge or params.get("code_challenge_method") != "S256":
                raise OAuthError("invalid_request", 9002325, "Proof Key for Code Exchange "
                                 "(S256) is required for this client.")
            scopes = params.get("scope", "")
            if not scopes.strip():
                raise OAuthError("invalid_request", 900144, "The request body must contain "
                                 "the following parameter: 'scope'.")
            parse_scopes(scopes)
            with self.state.lock:
                queued = self.state.authorize_errors.pop(0) if self.state.authorize_errors \
                    else None
            if queued:
                return answer({"error": queued[0], "error_description": queued[1]})
            user = self.pick_user(tenant, params.get("login_hint", ""))
            if user is None:
                return error_page(OAuthError("invalid_request", 50034, "The user account does "
                                             "not exist (fakeazure: call set_user first)."))
            self.token_tenant(user, tenant)
        except OAuthError as error:
            return answer({"error": error.error,
                           "error_description": f"AADSTS{error.code}: {error.description}"})
        code = AuthCode(
            code="1.A" + secrets.token_urlsafe(96), client_id=params["client_id"],
            redirect_uri=redirect_uri, code_challenge=challenge,
            code_challenge_method="S256", scopes=tuple(scopes.split()),
            nonce=params.get("nonce"), upn=user.upn, tenant_path=tenant.lower(),
            issued_at=self.state.now(),
        )
        with self.state.lock:
            self.state.auth_codes[code.code] = code
        fields = {"code": code.code}
        if params.get("client_info") == "1":
            fields["client_info"] = client_info(user)
        fields["session_state"] = new_guid()
        return answer(fields)

    def pick_user(self, tenant: str, login_hint: str) -> User | None:
        if login_hint:
            hinted = self.state.user(login_hint)
            if hinted and (tenant.lower() in META_TENANTS or hinted.can_sign_in_to(tenant.lower())):
                return hinted
        return self.state.default_user(tenant.lower())

    # -- device code -------------------------------------------------------------------------

    def devicecode(self, req: Request) -> Response:
        form = req.form()
        tenant = self.tenant_path(req)
        with self.state.lock:
            self.state.devicecode_count += 1
            settings = self.state.device_flow
            interval, approve_after, outcome = (
                settings.interval, settings.approve_after, settings.outcome)
        try:
            self.require_tenant(tenant)
            self.require_client(form.get("client_id", ""))
            parse_scopes(form.get("scope", ""))
        except OAuthError as error:
            return error.response()
        user = self.state.default_user(tenant.lower())
        user_code = "".join(secrets.choice(string.ascii_uppercase + string.digits)
                            for _ in range(9))
        device = DeviceCode(
            device_code="DAQABAAEAAA" + secrets.token_urlsafe(120), user_code=user_code,
            client_id=form["client_id"], scopes=tuple(form.get("scope", "").split()),
            tenant_path=tenant.lower(), upn=user.upn if user else None,
            expires_at=self.state.now() + DEVICE_CODE_LIFETIME,
            approve_after=approve_after, outcome=outcome,
        )
        with self.state.lock:
            self.state.device_codes[device.device_code] = device
        uri = "https://microsoft.com/devicelogin"
        return json_response({
            "user_code": user_code,
            "device_code": device.device_code,
            "verification_uri": uri,
            "expires_in": DEVICE_CODE_LIFETIME,
            "interval": interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the "
                       f"code {user_code} to authenticate.",
        })

    # -- token -------------------------------------------------------------------------------

    def token(self, req: Request) -> Response:
        form = req.form()
        grant = form.get("grant_type", "")
        with self.state.lock:
            self.state.grants[GRANT_NAMES.get(grant, grant or "missing")] += 1
        try:
            tenant = self.tenant_path(req)
            self.require_tenant(tenant)
            if grant != CLIENT_CREDENTIALS:
                self.require_client(form.get("client_id", ""))
            if grant == CLIENT_CREDENTIALS:
                body = self.redeem_client_credentials(form, tenant)
            elif grant == "authorization_code":
                body = self.redeem_code(form, tenant)
            elif grant == "refresh_token":
                body = self.redeem_refresh_token(form, tenant)
            elif grant == DEVICE_CODE_GRANT:
                body = self.redeem_device_code(form, tenant)
            else:
                raise OAuthError("unsupported_grant_type", 70003, "The app requested an "
                                 "unsupported grant type.")
        except OAuthError as error:
            return error.response()
        with self.state.lock:
            self.state.issued[GRANT_NAMES[grant]] += 1
        return json_response(body, headers=[("Cache-Control", "no-store, no-cache"),
                                            ("Pragma", "no-cache")])

    def redeem_code(self, form: dict[str, str], tenant: str) -> dict[str, object]:
        now = self.state.now()
        with self.state.lock:
            code = self.state.auth_codes.get(form.get("code", ""))
            if code is None:
                raise OAuthError("invalid_grant", 70000, "The provided value for the 'code' "
                                 "parameter is not valid.")
            if code.used:
                raise OAuthError("invalid_grant", 54005, "OAuth2 Authorization code was "
                                 "already redeemed, please retry with a new valid code or use "
                                 "an existing refresh token.")
            if code.client_id != form.get("client_id"):
                raise OAuthError("invalid_grant", 70000, "The code was issued to another "
                                 "client.")
            if now - code.issued_at > AUTH_CODE_LIFETIME:
                raise OAuthError("invalid_grant", 70008, "The provided authorization code or "
                                 "refresh token has expired due to inactivity.")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError("invalid_grant", 500112, "The reply address does not match "
                                 "the reply address provided when requesting Authorization "
                                 "code.")
            verifier = form.get("code_verifier", "")
            if not verifier or pkce_s256(verifier) != code.code_challenge:
                raise OAuthError("invalid_grant", 501481, "The Code_Verifier does not match "
                                 "the code_challenge supplied in the authorization request.")
            user = self.state.user(code.upn)
            if user is None or tenant.lower() not in (code.tenant_path, user.tenant):
                raise OAuthError("invalid_grant", 70000, "The code was issued for another "
                                 "tenant.")
            code.used = True
        scopes = form.get("scope") or " ".join(code.scopes)
        return self.issue(user, code.client_id, scopes, code.tenant_path,
                          nonce=code.nonce, want_client_info=form.get("client_info") == "1",
                          claims=form.get("claims", ""))

    def redeem_refresh_token(self, form: dict[str, str], tenant: str) -> dict[str, object]:
        now = self.state.now()
        with self.state.lock:
            record = self.state.refresh_tokens.get(form.get("refresh_token", ""))
            if record is None or record.client_id != form.get("client_id"):
                raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is "
                                 "malformed or invalid.")
            if record.revoked:
                raise OAuthError("invalid_grant", 50173, "The provided grant has expired due "
                                 "to it being revoked, a fresh auth token is needed. The user "
                                 "might have changed or reset their password.")
            if now - record.last_used > REFRESH_TOKEN_IDLE_LIFETIME:
                raise OAuthError("invalid_grant", 700082, "The refresh token has expired due "
                                 "to inactivity. The token was issued on "
                                 f"{_stamp(record.issued_at)} and was inactive for "
                                 "90.00:00:00.")
            user = self.state.user(record.upn)
            if user is None:
                raise OAuthError("invalid_grant", 50034, "The user account does not exist.")
            record.last_used = now
        body = self.issue(user, record.client_id, form.get("scope", ""), tenant,
                          nonce=None, want_client_info=form.get("client_info") == "1",
                          claims=form.get("claims", ""))
        with self.state.lock:
            record.replaced_by = str(body.get("refresh_token") or "") or None
        return body

    def redeem_device_code(self, form: dict[str, str], tenant: str) -> dict[str, object]:
        now = self.state.now()
        with self.state.lock:
            device = self.state.device_codes.get(form.get("device_code", ""))
            if device is None or device.client_id != form.get("client_id"):
                raise OAuthError("invalid_grant", 70000, "The provided value for the "
                                 "'device_code' parameter is not valid.")
            device.polls += 1
            if now > device.expires_at:
                raise OAuthError("expired_token", 70020, "The provided authorization code or "
                                 "refresh token has expired. Send a new interactive "
                                 "authorization request for this user and resource.")
            if device.polls <= device.approve_after:
                raise OAuthError("authorization_pending", 70016, "OAuth 2.0 device flow "
                                 "error. Authorization is pending. Continue polling.")
            if device.outcome == "deny":
                del self.state.device_codes[device.device_code]
                raise OAuthError("authorization_declined", 70000, "The user denied the "
                                 "authorization request.")
            if device.outcome == "expire":
                del self.state.device_codes[device.device_code]
                raise OAuthError("expired_token", 70020, "The provided authorization code or "
                                 "refresh token has expired. Send a new interactive "
                                 "authorization request for this user and resource.")
            user = self.state.user(device.upn) if device.upn else None
            if user is None:
                raise OAuthError("invalid_grant", 50034, "The user account does not exist "
                                 "(fakeazure: call set_user first).")
            del self.state.device_codes[device.device_code]
        return self.issue(user, device.client_id, " ".join(device.scopes), device.tenant_path,
                          nonce=None, want_client_info=form.get("client_info") == "1",
                          claims=form.get("claims", ""))

    def redeem_client_credentials(self, form: dict[str, str], tenant: str) -> dict[str, object]:
        """An application signs in as itself: the registered application must live in the
        tenant asked for, prove itself with a live secret or a valid assertion, and ask for
        one resource's `.default`."""
        if tenant.lower() in META_TENANTS:
            raise OAuthError("invalid_request", 50059, "No tenant-identifying information "
                             "found in either the request or implied by any provided "
                             "credentials.")
        client_id = form.get("client_id", "")
        app = self.state.app(client_id)
        if app is None or app.tenant != tenant.lower():
            raise OAuthError("unauthorized_client", 700016, f"Application with identifier "
                             f"'{client_id}' was not found in the directory '{tenant}'. This "
                             "can happen if the application has not been installed by the "
                             "administrator of the tenant or consented to by any user in the "
                             "tenant. You may have sent your authentication request to the "
                             "wrong tenant.")
        _, resource, names, _ = parse_scopes(form.get("scope", ""))
        if names != (".default",):
            raise OAuthError("invalid_scope", 1002012, f"The provided value for scope "
                             f"{form.get('scope', '')} is not valid. Client credential flows "
                             "must have a scope value with /.default suffixed to the resource "
                             "identifier (application ID URI).")
        if "client_secret" in form:
            self.check_secret(app, form["client_secret"])
        elif form.get("client_assertion"):
            if form.get("client_assertion_type") != JWT_BEARER:
                raise OAuthError("invalid_request", 50027, "Invalid client_assertion_type.")
            self.check_assertion(app, form["client_assertion"], tenant)
        else:
            raise OAuthError("invalid_client", 7000218, "The request body must contain the "
                             "following parameter: 'client_assertion' or 'client_secret'.", 401)
        record = self.mint_app_token(app, resource)
        return {"token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME,
                "ext_expires_in": ACCESS_TOKEN_LIFETIME, "access_token": record.token}

    def check_secret(self, app: App, secret: str) -> None:
        with self.state.lock:
            expires = next((until for value, until in app.secrets.items()
                            if secrets.compare_digest(value, secret)), None)
        if expires is None:
            raise OAuthError("invalid_client", 7000215, "Invalid client secret provided. "
                             "Ensure the secret being sent in the request is the client secret "
                             "value, not the client secret ID, for a secret added to app "
                             f"'{app.client_id}'.", 401)
        if self.state.now() >= expires:
            raise OAuthError("invalid_client", 7000222, "The provided client secret keys for "
                             f"app '{app.client_id}' are expired. Visit the Azure portal to "
                             "create new keys for your app.", 401)

    def check_assertion(self, app: App, assertion: str, tenant: str) -> None:
        """A certificate's assertion names the application as its issuer; anything else is a
        federated token, judged by the application's federated credentials."""
        try:
            jwt = tokens.decode(assertion)
        except tokens.BadJwt:
            raise OAuthError("invalid_client", 50027, "JWT token is invalid or malformed.",
                             401) from None
        if jwt.claims.get("iss") == app.client_id:
            self.check_certificate_assertion(app, jwt, tenant)
        else:
            self.check_federated_assertion(app, jwt)
        self.check_lifetime(jwt)

    def check_certificate_assertion(self, app: App, jwt: tokens.Jwt, tenant: str) -> None:
        with self.state.lock:
            registered = list(app.certificates)
        # Unpadded base64url, as RFC 7515 says; msal sends it padded.
        named = {str(jwt.header[name]).rstrip("=") for name in ("x5t#S256", "x5t")
                 if name in jwt.header}
        cert = next((der for der in registered if named & set(tokens.thumbprints(der))), None)
        if cert is None:
            raise OAuthError("invalid_client", 700027, "The certificate with identifier used "
                             "to sign the client assertion is not registered on application.",
                             401)
        if not tokens.verify(jwt, tokens.certificate_key(cert)):
            raise OAuthError("invalid_client", 700027, "Client assertion failed signature "
                             "validation.", 401)
        if jwt.claims.get("sub") != app.client_id:
            raise OAuthError("invalid_client", 700021, "Client assertion application "
                             "identifier doesn't match 'client_id' parameter.", 401)
        endpoints = {f"{BASE}/{name}/oauth2/v2.0/token".lower() for name in (tenant, app.tenant)}
        if str(jwt.claims.get("aud", "")).lower() not in endpoints:
            raise OAuthError("invalid_client", 700023, "Client assertion audience claim does "
                             "not match Realm issuer.", 401)

    def check_federated_assertion(self, app: App, jwt: tokens.Jwt) -> None:
        issuer, subject = str(jwt.claims.get("iss", "")), str(jwt.claims.get("sub", ""))
        audience = jwt.claims.get("aud")
        audiences = set(audience) if isinstance(audience, list) else {audience}
        with self.state.lock:
            trusted = [f for f in app.federated if f.issuer == issuer]
            known = self.state.issuers.get(issuer)
        key = known.public_key if known and known.kid == jwt.header.get("kid") else None
        if not trusted:
            raise OAuthError("invalid_client", 700211, "No matching federated identity record "
                             f"found for presented assertion issuer '{issuer}'. Please check "
                             "your federated identity credential Subject, Audience and Issuer "
                             "against the presented assertion.", 401)
        if key is None or not tokens.verify(jwt, key):
            raise OAuthError("invalid_client", 700027, "Client assertion failed signature "
                             "validation.", 401)
        if not any(f.audience in audiences for f in trusted):
            raise OAuthError("invalid_client", 700212, "No matching federated identity record "
                             f"found for presented assertion audience '{audience}'.", 401)
        if not any(f.subject == subject for f in trusted):
            raise OAuthError("invalid_client", 700213, "No matching federated identity record "
                             f"found for presented assertion subject '{subject}'. Please check "
                             "your federated identity credential Subject, Audience and Issuer "
                             "against the presented assertion.", 401)

    def check_lifetime(self, jwt: tokens.Jwt) -> None:
        now = self.state.now()
        try:
            expires, starts = float(jwt.claims["exp"]), float(jwt.claims.get("nbf", 0))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise OAuthError("invalid_client", 50027, "JWT token is invalid or malformed.",
                             401) from None
        if now >= expires + CLOCK_SKEW or now + CLOCK_SKEW < starts:
            raise OAuthError("invalid_client", 700024, "Client assertion is not within its "
                             f"valid time range. Current time: {_iso(now)}, assertion valid "
                             f"from {_iso(starts)}, expiry time of assertion {_iso(expires)}.",
                             401)

    # -- issuing -----------------------------------------------------------------------------

    def mint_app_token(self, app: App, resource: str) -> AccessTokenRecord:
        """An application's own access token: no user, the application's object ID."""
        now = self.state.now()
        claims = {
            "aud": resource, "iss": f"https://sts.windows.net/{app.tenant}/", "iat": int(now),
            "nbf": int(now), "exp": int(now) + ACCESS_TOKEN_LIFETIME, "appid": app.client_id,
            "idtyp": "app", "oid": app.object_id, "sub": app.object_id, "tid": app.tenant,
            "ver": "1.0", "uti": secrets.token_urlsafe(16),
        }
        record = AccessTokenRecord(
            token=make_jwt(claims), upn=app.client_id, tenant=app.tenant, audience=resource,
            scopes=(".default",), client_id=app.client_id, issued_at=now,
            expires_at=now + ACCESS_TOKEN_LIFETIME, app=True)
        with self.state.lock:
            self.state.access_tokens[record.token] = record
        return record

    def issue(self, user: User, client_id: str, scope: str, tenant_path: str, *,
              nonce: str | None, want_client_info: bool, claims: str = ""
              ) -> dict[str, object]:
        """Mint an access token (and refresh and ID tokens when the OIDC scopes ask for them)
        and record them in the ledger, with the claims the client asked for."""
        oidc, resource, names, spelling = parse_scopes(scope)
        tid = self.token_tenant(user, tenant_path)
        access = self.mint_access_token(user, tid, resource, names, client_id, claims)
        if resource == ADO_RESOURCE and ".default" in names:
            granted = [f"{spelling}/user_impersonation", f"{spelling}/.default"]
        elif spelling:
            granted = [f"{spelling}/{name}" for name in names]
        else:
            granted = [*(s for s in oidc if s != "offline_access"), *names]
        body: dict[str, object] = {
            "token_type": "Bearer",
            "scope": " ".join(granted),
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": access.token,
        }
        now = self.state.now()
        if "offline_access" in oidc:
            refresh = RefreshTokenRecord(
                token="1.A" + secrets.token_urlsafe(180), upn=user.upn, client_id=client_id,
                issued_at=now, last_used=now)
            with self.state.lock:
                self.state.refresh_tokens[refresh.token] = refresh
            body["refresh_token"] = refresh.token
        if "openid" in oidc:
            claims: dict[str, object] = {
                "aud": client_id,
                "iss": f"{BASE}/{tid}/v2.0",
                "iat": int(now), "nbf": int(now), "exp": int(now) + ACCESS_TOKEN_LIFETIME,
                "name": user.name,
                "oid": user.oid,
                "preferred_username": user.upn,
                "rh": "0.fake",
                "sub": b64url(hashlib.sha256(f"{user.oid}:{client_id}".encode()).digest()),
                "tid": tid,
                "uti": secrets.token_urlsafe(16),
                "ver": "2.0",
            }
            if nonce is not None:
                claims["nonce"] = nonce
            body["id_token"] = make_jwt(claims)
        if want_client_info:
            body["client_info"] = client_info(user)
        return body

    def mint_access_token(self, user: User, tid: str, resource: str, names: tuple[str, ...],
                          client_id: str, requested: str = "") -> AccessTokenRecord:
        """An access token, recording the claims its request asked for (`requested`, JSON)."""
        now = self.state.now()
        audience = resource
        claims = {
            "aud": audience, "iss": f"https://sts.windows.net/{tid}/", "iat": int(now),
            "nbf": int(now), "exp": int(now) + ACCESS_TOKEN_LIFETIME, "appid": client_id,
            "name": user.name, "oid": user.oid, "scp": " ".join(names), "tid": tid,
            "upn": user.upn, "ver": "1.0", "uti": secrets.token_urlsafe(16),
        }
        record = AccessTokenRecord(
            token=make_jwt(claims), upn=user.upn, tenant=tid, audience=audience,
            scopes=names, client_id=client_id, issued_at=now,
            expires_at=now + ACCESS_TOKEN_LIFETIME, claims=requested)
        with self.state.lock:
            self.state.access_tokens[record.token] = record
        return record


def client_info(user: User) -> str:
    return b64url(json.dumps({"uid": user.oid, "utid": user.tenant},
                             separators=(",", ":")).encode())


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _stamp(when: float) -> str:
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(when))


def auth_response(redirect_uri: str, mode: str, fields: dict[str, str]) -> Response:
    """Deliver an authorization response the way Entra does: an auto-submitting form for
    `form_post`, a 302 with a query string otherwise."""
    if mode == "query":
        return Response(302, [("Location", f"{redirect_uri}?{urlencode(fields)}"),
                              ("Content-Length", "0")])
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}" />'
        for k, v in fields.items())
    page = (
        "<html><head><title>Working...</title></head><body>"
        f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">'
        f"{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<input type="submit" value="Submit" /></noscript></form>'
        '<script language="javascript">document.forms[0].submit();</script>'
        "</body></html>")
    return text_response(page, 200, "text/html; charset=utf-8",
                         [("Cache-Control", "no-store, no-cache")])


def error_page(error: OAuthError) -> Response:
    """What a person sees when Entra will not send the response back to the app: an HTML page
    and no form, so a browser has nothing to submit."""
    page = ("<html><head><title>Sign in to your account</title></head><body>"
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f"<p>AADSTS{error.code}: {html.escape(error.description)}</p></body></html>")
    return text_response(page, 400, "text/html; charset=utf-8")
