"""Where machines get tokens without a person: managed-identity endpoints and GitHub's OIDC.

Managed identity, as msal 1.39's `managed_identity.py` calls it:

* App Service, Functions, Container Apps: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&
  resource=...` with `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; a user-assigned identity is
  picked with `client_id`, `object_id` or `mi_res_id`. The answer has `expires_on` (Unix
  seconds, as a string); errors are `{statusCode, message}`.
* Azure VMs (IMDS): `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=
  2018-02-01&resource=...` with `Metadata: true`; msal takes another host from
  `AZURE_POD_IDENTITY_AUTHORITY_HOST`, which is how the fake's loopback server is reached.
  Identities are picked with `client_id`, `object_id` or `msi_res_id`; the answer has
  `expires_in`; errors are OAuth-shaped (`error`, `error_description`).

Both are plain HTTP on a local address in Azure, and so here: one server on 127.0.0.1 serves
both paths, for the identities attached to the fake's one `IdentityHost`.

GitHub Actions hands a job `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`;
`GET {url}&audience=...` with `Authorization: Bearer {token}` answers `{"count", "value"}`,
value being a JWT from `https://token.actions.githubusercontent.com` whose subject names the
repository and ref. Here that host sits behind the fake's TLS proxy like Microsoft's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from tests.fakeazure.entra import Entra
from tests.fakeazure.state import (
    ACCESS_TOKEN_LIFETIME,
    ADO_RESOURCE,
    ADO_RESOURCE_URI,
    App,
    State,
    new_guid,
)
from tests.fakeazure.web import Request, Response, json_response, text_response

Handler = Callable[[Request], Response]
APP_SERVICE_PATH = "/msi/token"
IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_VERSION = "2019-08-01"
ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
ACTIONS_HOST_SUFFIX = ".actions.githubusercontent.com"


def resource_id(resource: str) -> str:
    """The resource a token is for, with Azure DevOps' URI spelling folded into its ID."""
    if resource.rstrip("/").lower() == ADO_RESOURCE_URI:
        return ADO_RESOURCE
    return resource.lower()


class IdentityEndpoint:
    """The managed-identity endpoint of the machine the test pretends to be."""

    def __init__(self, state: State, entra: Entra) -> None:
        self.state, self.entra = state, entra

    def route(self, req: Request) -> tuple[str, Handler] | None:
        if req.method != "GET":
            return None
        if req.path == APP_SERVICE_PATH:
            return "identity", self.app_service
        if req.path == IMDS_PATH:
            return "identity", self.imds
        return None

    def pick(self, params: dict[str, str], by_resource_id: str) -> App | None:
        host = self.state.identity_host
        if host is None:
            return None
        wanted = {"client_id": "client_id", "object_id": "object_id",
                  by_resource_id: "resource_id"}
        for param, attribute in wanted.items():
            if params.get(param):
                value = params[param].lower()
                return next((a for a in host.user_assigned
                             if getattr(a, attribute).lower() == value), None)
        return host.system

    def app_service(self, req: Request) -> Response:
        params = req.params()
        host = self.state.identity_host

        def error(status: int, message: str) -> Response:
            return json_response({"statusCode": status, "message": message,
                                  "correlationId": new_guid()}, status)

        if host is None or not secrets.compare_digest(req.header("x-identity-header"),
                                                      host.header):
            return error(401, "The X-IDENTITY-HEADER is missing or does not match.")
        if params.get("api-version") != APP_SERVICE_VERSION:
            return error(400, f"api-version {params.get('api-version', '')!r} is not "
                              "supported; use 2019-08-01.")
        if not params.get("resource"):
            return error(400, "The resource parameter is required.")
        app = self.pick(params, "mi_res_id")
        if app is None:
            return error(400, "No User Assigned or Delegated Managed Identity found for "
                              "specified ClientId/ResourceId/PrincipalId.")
        record = self.entra.mint_app_token(app, resource_id(params["resource"]))
        return json_response({
            "access_token": record.token, "expires_on": str(int(record.expires_at)),
            "resource": params["resource"], "token_type": "Bearer",
            "client_id": app.client_id})

    def imds(self, req: Request) -> Response:
        params = req.params()

        def error(message: str, status: int = 400) -> Response:
            return json_response({"error": "invalid_request", "error_description": message},
                                 status)

        if req.header("metadata").lower() != "true":
            return error("Required metadata header not specified")
        if not params.get("api-version"):
            return error("Required query variable 'api-version' is missing")
        if not params.get("resource"):
            return error("Required query variable 'resource' is missing")
        app = self.pick(params, "msi_res_id")
        if app is None:
            return error("Identity not found")
        record = self.entra.mint_app_token(app, resource_id(params["resource"]))
        return json_response({
            "access_token": record.token, "client_id": app.client_id,
            "expires_in": str(ACCESS_TOKEN_LIFETIME),
            "expires_on": str(int(record.expires_at)),
            "ext_expires_in": str(ACCESS_TOKEN_LIFETIME),
            "not_before": str(int(record.issued_at)), "resource": params["resource"],
            "token_type": "Bearer"})


class ActionsOidc:
    """GitHub Actions' ID-token service, for the jobs `FakeAzure.github_actions` set up."""

    def __init__(self, state: State) -> None:
        self.state = state

    def route(self, req: Request) -> tuple[str, Handler] | None:
        if req.method == "GET" and req.path.endswith("/idtoken"):
            return "oidc", self.id_token
        return None

    def id_token(self, req: Request) -> Response:
        scheme, value = req.authorization()
        with self.state.lock:
            subject = self.state.actions_tokens.get(value) if scheme == "bearer" else None
            issuer = self.state.issuers.get(ACTIONS_ISSUER)
        if subject is None or issuer is None:
            return text_response('{"message":"Bad credentials"}', 401, "application/json")
        repository = subject.split(":")[1]
        audience = req.params().get("audience") or f"https://github.com/{repository}"
        token = issuer.token(subject, self.state.now(), audience=audience,
                                  extra={"repository": repository})
        return json_response({"count": len(token), "value": token})
