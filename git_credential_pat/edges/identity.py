"""Signing in as a machine: a service principal, a managed identity, or a federated workload.

These identities answer git with the Entra access token itself, because none of them may
create a PAT. Their details come from the variables Azure tooling already sets (azure-identity,
`az login`, `azure/login`, AKS' workload-identity webhook), so a job set up for those needs
nothing new; git config can name the same things per URL. A secret is read from a file or an
environment variable, never from git config, which is world-readable and often committed.

Nothing here waits for a person and nothing falls back to one: a failure is one line that
names the identity, the tenant and what to change. Tokens live in msal's in-memory cache for
this process only. msal's confidential-client cache would hold nothing but access tokens
(bearer credentials, live for an hour) for these grants, and the credential that gets a new
one (secret, key, token file, endpoint) is at hand on every run; so a persisted cache would
only put a live token in the keyring or on disk to save one round trip per git command.

msal is imported only when a token is wanted; `describe` and `resolve` work offline, for
`status` and `doctor`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from git_credential_pat.core.constants import AZURE_DEVOPS_RESOURCE, AZURE_DEVOPS_SCOPES
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import secret
from git_credential_pat.edges import http

if TYPE_CHECKING:
    import requests

    from git_credential_pat.core.settings import Settings
    from git_credential_pat.edges.signin import AccessToken

SERVICE_PRINCIPAL = "service-principal"
MANAGED_IDENTITY = "managed-identity"
WORKLOAD_IDENTITY = "workload-identity"
KINDS = (SERVICE_PRINCIPAL, MANAGED_IDENTITY, WORKLOAD_IDENTITY)
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
IMDS_HOST = "169.254.169.254"
MAX_FILE = 64 * 1024
# What msal's managed-identity client reads from the process environment, not from an argument.
_MSAL_MI_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
                      "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
                      "AZURE_POD_IDENTITY_AUTHORITY_HOST")


@dataclass(frozen=True)
class Identity:
    """Who signs in and with what, resolved from settings and environment (no secrets: those
    are read when a token is wanted). `source` says where the credential comes from, in the
    words a person would use to fix it (a variable, a file, an endpoint)."""

    kind: str
    tenant: str
    client_id: str = ""
    object_id: str = ""
    resource_id: str = ""
    credential: str = ""  # secret-file | secret-env | certificate | token-file | github-actions
    # | endpoint
    source: str = ""

    @property
    def label(self) -> str:
        """The identity as error messages and `status` name it."""
        if self.kind == MANAGED_IDENTITY:
            chosen = (f"client ID {self.client_id}" if self.client_id
                      else f"object ID {self.object_id}" if self.object_id
                      else f"resource ID {self.resource_id}" if self.resource_id
                      else "system-assigned")
            return f"managed identity ({chosen})"
        name = "service principal" if self.kind == SERVICE_PRINCIPAL else "workload identity"
        who = f"{name} {self.client_id or '(no client ID)'}"
        return f"{who} in tenant {self.tenant}" if self.tenant else who

    @property
    def needs_tenant(self) -> bool:
        return self.kind != MANAGED_IDENTITY


def _first(*values: str) -> str:
    return next((v.strip() for v in values if v and v.strip()), "")


def resolve(settings: Settings, environ: Mapping[str, str]) -> Identity:
    """The identity `settings.identity` names, with its details filled in: git config and
    GIT_CREDENTIAL_PAT_* first, then the variables Azure tooling sets. Offline and
    quick; raises `HelperError` when nothing says how this identity proves itself."""
    kind = settings.identity
    tenant = _first(settings.tenant, environ.get("AZURE_TENANT_ID", ""))
    client_id = _first(settings.identity_client_id, environ.get("AZURE_CLIENT_ID", ""))
    if kind == MANAGED_IDENTITY:
        return _managed(settings, environ, client_id)
    if not client_id:
        raise HelperError(f"{Identity(kind, tenant).label} has no client ID; set "
                          "AZURE_CLIENT_ID or credential.patIdentityClientId")
    details = {SERVICE_PRINCIPAL: _service_principal, WORKLOAD_IDENTITY: _workload}[kind]
    return details(Identity(kind, tenant, client_id), settings, environ)


def _service_principal(found: Identity, settings: Settings, environ: Mapping[str, str]
                       ) -> Identity:
    """A secret file or certificate named in git config wins over the ambient variables;
    among those, the secret comes first, as in azure-identity."""
    secret_env = settings.identity_secret_env
    if settings.identity_secret_file:
        return replace(found, credential="secret-file", source=settings.identity_secret_file)
    if settings.identity_certificate:
        return replace(found, credential="certificate", source=settings.identity_certificate)
    if environ.get(secret_env):
        return replace(found, credential="secret-env", source=secret_env)
    if environ.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        return replace(found, credential="certificate",
                       source=environ["AZURE_CLIENT_CERTIFICATE_PATH"])
    raise HelperError(f"{found.label} has no secret or certificate; set {secret_env}, "
                      "AZURE_CLIENT_CERTIFICATE_PATH or credential.patIdentitySecretFile")


def _workload(found: Identity, settings: Settings, environ: Mapping[str, str]) -> Identity:
    token_file = _first(settings.identity_token_file, environ.get("AZURE_FEDERATED_TOKEN_FILE", ""))
    if token_file:
        return replace(found, credential="token-file", source=token_file)
    if environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") and environ.get(
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        return replace(found, credential="github-actions", source="GitHub Actions' OIDC token")
    raise HelperError(f"{found.label} has no federated token; set AZURE_FEDERATED_TOKEN_FILE "
                      "(AKS sets it for pods labelled azure.workload.identity/use), or give "
                      "the GitHub Actions job `permissions: id-token: write`")


def _managed(settings: Settings, environ: Mapping[str, str], client_id: str) -> Identity:
    chosen = {"client ID": client_id, "object ID": settings.identity_object_id.strip(),
              "resource ID": settings.identity_resource_id.strip()}
    named = [name for name, value in chosen.items() if value]
    if len(named) > 1:
        raise HelperError(f"a managed identity is chosen by one of client ID, object ID or "
                          f"resource ID, but {' and '.join(named)} are all set; unset one "
                          "(AZURE_CLIENT_ID, credential.patIdentityObjectId, "
                          "credential.patIdentityResourceId)")
    return Identity(MANAGED_IDENTITY, "", client_id, chosen["object ID"],
                    chosen["resource ID"], "endpoint", _endpoint(environ))


def _endpoint(environ: Mapping[str, str]) -> str:
    """Where msal will ask, as msal decides it (App Service-like hosts name their endpoint;
    otherwise the VM's instance metadata service)."""
    url, variable = _endpoint_url(environ)
    if variable:
        return f"the identity endpoint at {http.host_of(url)} ({variable})"
    return f"the instance metadata service at {http.host_of(url)}"


def _endpoint_url(environ: Mapping[str, str]) -> tuple[str, str]:
    """The managed-identity endpoint's URL, and the variable that named it ("" for IMDS)."""
    for variable in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        if environ.get(variable):
            return environ[variable], variable
    return environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or f"http://{IMDS_HOST}", ""


def describe(settings: Settings, environ: Mapping[str, str]) -> str:
    """One line for `status` and `doctor`: who signs in and where its credential comes from,
    or what is missing."""
    try:
        found = resolve(settings, environ)
    except HelperError as error:
        return str(error)
    tenant = "" if found.tenant or not found.needs_tenant else (
        " (tenant from the organization)")
    return f"{found.label}{tenant}, with {_credential_words(found)}"


def _credential_words(found: Identity) -> str:
    return {"secret-file": f"the client secret in {found.source}",
            "secret-env": f"the client secret in {found.source}",
            "certificate": f"the certificate {found.source}",
            "token-file": f"the federated token in {found.source}",
            "github-actions": found.source,
            "endpoint": found.source}[found.credential]


# -- getting the token ---------------------------------------------------------------------


def token(found: Identity, settings: Settings, environ: Mapping[str, str],
          session: requests.Session) -> AccessToken:
    """An access token to Azure DevOps for this identity, from Entra or the machine's
    managed-identity endpoint. `session` carries git's proxy and CA settings; the
    managed-identity endpoint, a local address, is asked directly."""
    import msal
    import requests

    from git_credential_pat.edges import signin

    signin.route_msal_logs()
    step = (f"asking {found.source} for a token for the {found.label}"
            if found.kind == MANAGED_IDENTITY else f"getting a token for the {found.label}")
    started = time.time()
    try:
        if found.kind == MANAGED_IDENTITY:
            result = _from_endpoint(found, settings, environ, step)
        else:
            result = _from_entra(found, settings, environ, session, step)
    except requests.RequestException as error:
        where = (_endpoint_url(environ)[0] if found.kind == MANAGED_IDENTITY
                 else settings.authority_host)
        raise http.failure(error, where, step, session) from None
    except msal.exceptions.MsalServiceError:
        raise HelperError(f"{http.host_of(settings.authority_host)} is having trouble while "
                          f"{step}; try again later") from None
    secret(result.get("access_token"))
    if "access_token" not in result:
        raise refused(found, result)
    return signin.AccessToken(token=result["access_token"],
                              expires_on=int(started) + int(result.get("expires_in", 0)),
                              account="", tenant=found.tenant)


def _from_entra(found: Identity, settings: Settings, environ: Mapping[str, str],
                session: requests.Session, step: str) -> dict:
    import msal

    from git_credential_pat.edges.signin import MsalHttp

    if not found.tenant:
        raise HelperError(f"{found.label} needs its tenant; set AZURE_TENANT_ID or "
                          "credential.patTenant")
    credential = _credential(found, settings, environ, session)
    authority = f"{settings.authority_host.rstrip('/')}/{found.tenant}"
    try:
        app = msal.ConfidentialClientApplication(
            found.client_id, client_credential=credential, authority=authority,
            http_client=MsalHttp(session, settings.timeout, step), http_cache={},
            token_cache=msal.TokenCache())
    except ValueError:
        # msal could not read the tenant's OpenID configuration: no such tenant, or a page
        # that is not the sign-in service (a proxy's).
        raise HelperError(f"{found.label}: {http.host_of(settings.authority_host)} does not "
                          f"know the tenant {found.tenant}; check AZURE_TENANT_ID or "
                          "credential.patTenant") from None
    return app.acquire_token_for_client(list(AZURE_DEVOPS_SCOPES))


def _credential(found: Identity, settings: Settings, environ: Mapping[str, str],
                session: requests.Session) -> str | dict[str, object]:
    if found.credential in ("secret-file", "secret-env"):
        value = (_read(found, found.source, "client secret file")
                 if found.credential == "secret-file" else environ.get(found.source, "")).strip()
        secret(value)
        if not value:
            raise HelperError(f"{found.label}: the client secret in {found.source} is empty")
        return value
    if found.credential == "certificate":
        return _certificate(found, environ)
    if found.credential == "token-file":
        return {"client_assertion": lambda: _federated_from_file(found)}
    return {"client_assertion": lambda: _federated_from_github(found, settings, environ,
                                                               session)}


def _read(found: Identity, path: str, what: str) -> str:
    try:
        with open(os.path.expanduser(path), "rb") as stream:
            data = stream.read(MAX_FILE + 1)
    except OSError as error:
        raise HelperError(f"{found.label}: cannot read the {what} {path} "
                          f"({error.strerror})") from None
    if len(data) > MAX_FILE:
        raise HelperError(f"{found.label}: the {what} {path} is larger than 64 KiB")
    return data.decode("utf-8", "replace")


def _certificate(found: Identity, environ: Mapping[str, str]) -> dict[str, object]:
    """The PEM file's private key signs msal's assertion; its certificate gives the SHA-256
    thumbprint Entra looks the key up by (and the x5c chain, for subject-name/issuer
    trust). The key is opened here first, so a wrong password is named as such."""
    from cryptography.hazmat.primitives import serialization

    pem = _read(found, found.source, "certificate file")
    password = environ.get("AZURE_CLIENT_CERTIFICATE_PASSWORD", "")
    secret(password)
    if "PRIVATE KEY-----" not in pem or "-----BEGIN CERTIFICATE-----" not in pem:
        raise HelperError(f"{found.label}: {found.source} must hold the private key and the "
                          "certificate, both in PEM")
    try:
        serialization.load_pem_private_key(pem.encode(), password.encode() or None)
    except (TypeError, ValueError):
        raise HelperError(f"{found.label}: cannot open the private key in {found.source}; "
                          "if it is encrypted, set AZURE_CLIENT_CERTIFICATE_PASSWORD to its "
                          "password") from None
    return {"private_key": pem, "public_certificate": pem, "passphrase": password or None}


def _federated_from_file(found: Identity) -> str:
    """Read afresh for every assertion: AKS rotates the projected token file in place."""
    value = _read(found, found.source, "federated token file").strip()
    secret(value)
    if not value:
        raise HelperError(f"{found.label}: the federated token file {found.source} is empty")
    return value


def _federated_from_github(found: Identity, settings: Settings, environ: Mapping[str, str],
                           session: requests.Session) -> str:
    """GitHub's ID token for this job, with the audience Entra's federated credentials
    expect; asked through the same session as Entra, so proxies apply to it too."""
    url, bearer = (environ["ACTIONS_ID_TOKEN_REQUEST_URL"],
                   environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
    secret(bearer)
    step = f"getting GitHub Actions' ID token for the {found.label}"
    response = http.call(session, "GET", url, step=step, timeout=settings.timeout,
                         params={"audience": FEDERATION_AUDIENCE},
                         headers={"Authorization": f"Bearer {bearer}"})
    if response.status_code != 200:
        raise HelperError(f"{found.label}: GitHub Actions refused the ID token request "
                          f"(HTTP {response.status_code}); the job needs `permissions: "
                          "id-token: write`")
    value = str(http.json_of(response, "an ID token").get("value") or "")
    secret(value)
    if not value:
        raise HelperError(f"{found.label}: GitHub Actions answered without an ID token")
    return value


def _from_endpoint(found: Identity, settings: Settings, environ: Mapping[str, str],
                   step: str) -> dict:
    import msal

    from git_credential_pat.edges.signin import MsalHttp

    if found.client_id:
        chosen: msal.ManagedIdentity = msal.UserAssignedManagedIdentity(client_id=found.client_id)
    elif found.object_id:
        chosen = msal.UserAssignedManagedIdentity(object_id=found.object_id)
    elif found.resource_id:
        chosen = msal.UserAssignedManagedIdentity(resource_id=found.resource_id)
    else:
        chosen = msal.SystemAssignedManagedIdentity()
    # The endpoint is on a local or link-local address: never through a proxy.
    local = http.new_session(settings.replace(proxy=""))
    local.trust_env = False
    local.proxies = {}
    with local, _process_environ(environ):
        client = msal.ManagedIdentityClient(
            chosen, http_client=MsalHttp(local, settings.timeout, step), http_cache={},
            token_cache=msal.TokenCache())
        try:
            return client.acquire_token_for_client(resource=AZURE_DEVOPS_RESOURCE)
        except ValueError:  # msal found no JSON where the endpoint's answer should be
            raise HelperError(f"{found.label}: {found.source} did not answer like a "
                              "managed-identity endpoint") from None


@contextlib.contextmanager
def _process_environ(environ: Mapping[str, str]) -> Iterator[None]:
    """msal picks the managed-identity endpoint from `os.environ` itself; when the caller's
    environment is another mapping, lend it the variables msal reads for the call."""
    if environ is os.environ:
        yield
        return
    saved = {name: os.environ.get(name) for name in _MSAL_MI_VARIABLES}
    try:
        for name in _MSAL_MI_VARIABLES:
            os.environ.pop(name, None)
            if environ.get(name):
                os.environ[name] = environ[name]
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


# -- refusals, in words --------------------------------------------------------------------

# AADSTS codes these grants meet, as what went wrong and what to change; {source} is where
# the credential came from.
_REFUSALS: dict[int, tuple[str, str]] = {
    7000215: ("the client secret is wrong",
              "put the secret's value (not its ID) in {source}"),
    7000222: ("the client secret has expired",
              "create a new secret for the app registration and put it in {source}"),
    700016: ("the application is not in this tenant",
             "check AZURE_CLIENT_ID and AZURE_TENANT_ID (or credential.patTenant)"),
    90002: ("the tenant does not exist", "check AZURE_TENANT_ID or credential.patTenant"),
    50059: ("no tenant was named", "set AZURE_TENANT_ID or credential.patTenant"),
    7000112: ("the application is disabled", "ask the tenant's administrator to enable it"),
    700027: ("Entra cannot verify the assertion's signature",
             "upload the certificate in {source} to the app registration"),
    700024: ("the client assertion is expired or not yet valid", "check this machine's clock"),
    700211: ("no federated credential of the application trusts the token's issuer",
             "add a federated credential for the issuer of {source}"),
    700212: ("no federated credential of the application accepts the token's audience",
             f"issue the token for the audience {FEDERATION_AUDIENCE}"),
    700213: ("no federated credential of the application matches the token's subject",
             "add a federated credential for the subject of {source}"),
    50027: ("the client assertion is not a valid JWT", "check {source}"),
    53003: ("Conditional Access blocked the sign-in",
            "ask the tenant's administrator to exempt this identity"),
    500011: ("Azure DevOps is not known in this tenant",
             "check the tenant: it must be the one the organization is connected to"),
}
# The same codes, when the assertion is a federated token rather than a certificate's.
_FEDERATED_REFUSALS: dict[int, tuple[str, str]] = {
    700027: ("Entra cannot verify the federated token's signature",
             "check that {source} comes from the issuer the federated credential names"),
    700024: ("the federated token has expired or is not yet valid",
             "refresh {source} (a federated token lasts about an hour) and check the clock"),
    50027: ("the federated token is not a valid JWT", "check {source}"),
}


def refused(found: Identity, result: Mapping[str, object]) -> HelperError:
    """msal's error dict as one line naming the identity, what went wrong and the fix."""
    description = str(result.get("error_description") or "")
    codes = result.get("error_codes")
    code = codes[0] if isinstance(codes, list) and codes else _code_in(description)
    federated = found.credential in ("token-file", "github-actions")
    known = {**_REFUSALS, **(_FEDERATED_REFUSALS if federated else {})}
    if code in known:
        words, fix = known[code]
        return HelperError(f"{found.label}: {words} (AADSTS{code}); "
                           f"{fix.format(source=found.source)}")
    from git_credential_pat.edges.signin import sign_in_failure

    hint = ("; check that the identity is assigned to this machine"
            if found.kind == MANAGED_IDENTITY else "")
    return HelperError(f"{sign_in_failure(dict(result), f'the {found.label}')}{hint}")


def _code_in(description: str) -> int | None:
    head = description.partition(":")[0].strip()
    digits = head.removeprefix("AADSTS")
    return int(digits) if head.startswith("AADSTS") and digits.isdigit() else None

