"""`FakeAzure`: Microsoft Entra ID and Azure DevOps on loopback, for tests of the real thing.

Tests run the real `git`, `msal` and `requests`; only Microsoft's servers are replaced. Clients
use the real host names through `ConnectProxy` (HTTPS_PROXY) and trust a throwaway CA, so
every TLS check, redirect and proxy code path in the client is exercised as in production.

    with FakeAzure(tmp_path) as fake:
        tenant = fake.add_tenant()
        fake.add_user("alice@contoso.com", tenant)
        fake.add_org("contoso", tenant)
        fake.add_repo("contoso", "proj", "repo")
        env = fake.with_client_env(os.environ, browser=True)
        # ... run git / the helper with env; then inspect fake.pats, fake.requests ...

Machines with no person sign in as applications: `add_service_principal` (a secret,
`add_certificate`, or `add_federated_credential` with an `issuer` such as an AKS cluster's or
`github_actions`'), or `add_managed_identity` with `managed_identity_env` for the machine's
endpoint (App Service's or the VM's IMDS shape, on loopback).

What happens to people's sign-ins on the server side: `revoke_pat`, `revoke_refresh_tokens`,
`revoke_sessions` (refresh tokens and live access tokens), `cae_event` (a Continuous Access
Evaluation claims challenge), `add_guest` (an account in a second tenant) and `move_org` (an
organization connected to another tenant).

One instance per test session is enough: `reset()` forgets everything except the servers.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tests.fakeazure.ca import CertFiles, make_certificates
from tests.fakeazure.devops import DevOps, new_pat_token
from tests.fakeazure.entra import Entra
from tests.fakeazure.githttp import GitHttp, create_repo
from tests.fakeazure.identities import (
    ACTIONS_HOST_SUFFIX,
    ACTIONS_ISSUER,
    APP_SERVICE_PATH,
    ActionsOidc,
    IdentityEndpoint,
)
from tests.fakeazure.proxy import ConnectProxy
from tests.fakeazure.server import FakeServer, Route
from tests.fakeazure.state import (
    ADO_RESOURCE,
    DAY,
    FEDERATION_AUDIENCE,
    LOGIN_HOST,
    MSA_ORG_TENANT,
    App,
    Fault,
    FederatedCredential,
    IdentityHost,
    Org,
    PatRecord,
    Policy,
    RequestRecord,
    State,
    User,
    new_guid,
)
from tests.fakeazure.tokens import ClientCertificate, Issuer, make_client_certificate
from tests.fakeazure.web import Request

if TYPE_CHECKING:
    from requests import Session

BROWSER_SCRIPT = Path(__file__).with_name("browser.py")
# Variables that would send clients around the proxy, or to another one.
PROXY_VARS_TO_DROP = ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                      "all_proxy")
VISUAL_STUDIO_CLIENT_ID = "872cd9fa-d31f-45e0-9eab-6e460a02d1f1"


class FakeAzure:
    """The fake's servers, its knobs and its ledger. All methods are thread-safe."""

    def __init__(self, workdir: Path | str) -> None:
        self.workdir = Path(workdir)
        self.state = State()
        self.certs: CertFiles | None = None
        self.server: FakeServer | None = None
        self.identity_server: FakeServer | None = None
        self.proxy: ConnectProxy | None = None
        self.repos_root = self.workdir / "repos"
        self.browser_log = self.workdir / "browser.log"
        self.backend_log = self.workdir / "http-backend.log"
        self._git = GitHttp(self.state, self.repos_root, self.workdir, self.backend_log)
        self._entra = Entra(self.state)
        self._devops = DevOps(self.state, self._git.route)
        self._identity = IdentityEndpoint(self.state, self._entra)
        self._actions = ActionsOidc(self.state)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeAzure:
        """Create the CA, start the TLS server and the proxy (both on 127.0.0.1, free ports)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.repos_root.mkdir(exist_ok=True)
        self.certs = make_certificates(self.workdir / "certs")
        self.server = FakeServer(self.certs, self.state, self._route)
        self.server.start()
        self.identity_server = FakeServer(None, self.state, self._identity.route)
        self.identity_server.start()
        self.proxy = ConnectProxy(self.server.port)
        return self

    def close(self) -> None:
        """Stop the proxy and the server and every connection thread they started."""
        if self.proxy:
            self.proxy.close()
        for server in (self.server, self.identity_server):
            if server:
                server.stop()

    def __enter__(self) -> FakeAzure:
        return self.start() if self.server is None else self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def reset(self) -> None:
        """Forget tenants, users, orgs, repos, tokens, PATs, knobs, faults, the ledger and the
        clock offset; keep the servers, the CA and the ports (so cached env stays valid)."""
        self.state.clear()
        if self.proxy:
            self.proxy.reset()
        shutil.rmtree(self.repos_root, ignore_errors=True)
        self.repos_root.mkdir(parents=True, exist_ok=True)
        for log in (self.browser_log, self.backend_log):
            log.unlink(missing_ok=True)

    def _route(self, req: Request) -> Route | None:
        if req.host == LOGIN_HOST:
            return self._entra.route(req)
        if req.host.endswith(ACTIONS_HOST_SUFFIX):
            return self._actions.route(req)
        return self._devops.route(req)

    # -- how clients reach it ----------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        assert self.certs is not None, "start() first"
        return self.certs.ca

    @property
    def proxy_url(self) -> str:
        assert self.proxy is not None, "start() first"
        return f"http://127.0.0.1:{self.proxy.port}"

    @property
    def port(self) -> int:
        """The TLS server's own port (for a client that connects to 127.0.0.1 directly and
        sends the right Host/SNI; normal clients go through the proxy)."""
        assert self.server is not None, "start() first"
        return self.server.port

    def client_env(self, browser: bool = False) -> dict[str, str]:
        """Variables that make git, curl, requests and msal reach the fake: the proxy (both
        spellings) and the CA for each TLS stack. NO_PROXY must be absent: see
        `with_client_env`. With `browser=True`, also BROWSER (the fake browser)."""
        ca = str(self.ca_path)
        env = {
            "HTTPS_PROXY": self.proxy_url, "https_proxy": self.proxy_url,
            "REQUESTS_CA_BUNDLE": ca, "GIT_SSL_CAINFO": ca, "SSL_CERT_FILE": ca,
            "CURL_CA_BUNDLE": ca,
        }
        if browser:
            env.update(self.browser_env())
        return env

    def with_client_env(self, base: Mapping[str, str], browser: bool = False
                        ) -> dict[str, str]:
        """A copy of `base` with `client_env()` added and the proxy-bypass variables removed."""
        env = {k: v for k, v in base.items() if k not in PROXY_VARS_TO_DROP}
        env.update(self.client_env(browser))
        return env

    def browser_env(self) -> dict[str, str]:
        """BROWSER for Python's `webbrowser` (so msal opens the fake browser), and where that
        browser appends a line per page it visited."""
        command = f"{shlex.quote(sys.executable)} {shlex.quote(str(BROWSER_SCRIPT))} %s"
        return {"BROWSER": command, "FAKEAZURE_BROWSER_LOG": str(self.browser_log)}

    def requests_session(self) -> Session:
        """A requests session wired to the fake (proxy and CA), for tests and msal's
        `http_client`."""
        import requests

        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_path)
        session.proxies = {"https": self.proxy_url}
        return session

    # -- directory ---------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str | None = None) -> str:
        """An Entra tenant (a random GUID unless given); returns its ID."""
        tenant = (tenant_id or new_guid()).lower()
        with self.state.lock:
            self.state.tenants.add(tenant)
        return tenant

    def add_user(self, upn: str, tenant: str, *, name: str | None = None,
                 guest_in: Iterable[str] = ()) -> User:
        """A user whose home is `tenant`, optionally a guest in other tenants."""
        user = User(upn=upn, tenant=tenant.lower(), oid=new_guid(),
                    name=name or upn.split("@")[0].title(),
                    guest_in={t.lower() for t in guest_in})
        with self.state.lock:
            self.state.tenants.add(user.tenant)
            self.state.users[upn.lower()] = user
        return user

    def add_guest(self, upn: str, tenant: str) -> None:
        """Make an existing user a guest of another tenant (B2B), so tokens for it work."""
        user = self.state.user(upn)
        if user is None:
            raise ValueError(f"unknown user {upn}")
        with self.state.lock:
            self.state.tenants.add(tenant.lower())
            user.guest_in.add(tenant.lower())

    def set_user(self, tenant: str, upn: str) -> None:
        """Who signs in next at this authority (a tenant GUID, `organizations` or `common`)
        when the request has no usable `login_hint`. Without it: the tenant's first user."""
        if self.state.user(upn) is None:
            raise ValueError(f"unknown user {upn}")
        with self.state.lock:
            self.state.signin_user[tenant.lower()] = upn

    def add_client(self, client_id: str) -> None:
        """Register an application. Until one is registered any GUID is accepted; after that
        only registered ones (others get AADSTS700016)."""
        with self.state.lock:
            self.state.clients.add(client_id)

    def add_org(self, name: str, tenant: str) -> Org:
        """An Azure DevOps organization backed by `tenant` (MSA_ORG_TENANT, all zeros, for a
        Microsoft-account organization). Its default policy forbids global PATs."""
        org = Org(name=name.lower(), tenant=tenant.lower(), id=new_guid())
        with self.state.lock:
            if org.tenant != MSA_ORG_TENANT:
                self.state.tenants.add(org.tenant)
            self.state.orgs[org.name] = org
        return org

    def add_repo(self, org: str, project: str, repo: str) -> Path:
        """A bare repository with one commit on `main`, served at
        dev.azure.com/{org}/{project}/_git/{repo} and its visualstudio.com forms."""
        if self.state.org(org) is None:
            raise ValueError(f"unknown organization {org}; add_org first")
        path = create_repo(self._git.repo_dir(org.lower(), project, repo), self.workdir)
        with self.state.lock:
            self.state.repos[(org.lower(), project.lower(), repo.lower())] = (
                org.lower(), project, repo)
        return path

    def repo_path(self, org: str, project: str, repo: str) -> Path:
        with self.state.lock:
            found = self.state.repos[(org.lower(), project.lower(), repo.lower())]
        return self._git.repo_dir(*found)

    def policy(self, org: str, *, disable_creation: bool = False,
               max_lifespan_days: int | None = None, forbid_full_scope: bool = False,
               forbid_global: bool = True) -> None:
        """Set the organization's PAT policies (all of them; unnamed ones to defaults)."""
        found = self.state.org(org)
        if found is None:
            raise ValueError(f"unknown organization {org}")
        with self.state.lock:
            found.policy = Policy(disable_creation, max_lifespan_days, forbid_full_scope,
                                  forbid_global)

    # -- applications and machines -----------------------------------------------------------

    def add_service_principal(self, tenant: str, name: str = "build", *,
                              secret: str | None = None, secret_days: float = 365) -> App:
        """An app registration with its service principal in `tenant`, optionally with a
        client secret valid for `secret_days` (negative: expired that long ago)."""
        app = App(client_id=new_guid(), tenant=tenant.lower(), object_id=new_guid(), name=name)
        with self.state.lock:
            self.state.tenants.add(app.tenant)
            self.state.apps[app.client_id] = app
        if secret is not None:
            self.add_client_secret(app.client_id, secret, secret_days)
        return app

    def add_client_secret(self, client_id: str, secret: str, days: float = 365) -> None:
        app = self._app(client_id)
        with self.state.lock:
            app.secrets[secret] = self.now() + days * DAY

    def add_certificate(self, client_id: str, pem: Path, passphrase: str = ""
                        ) -> ClientCertificate:
        """A new certificate registered on the application; its key and certificate are
        written to `pem` (encrypted with `passphrase` if given)."""
        app = self._app(client_id)
        made = make_client_certificate(pem, passphrase)
        with self.state.lock:
            app.certificates.append(made.der)
        return made

    def issuer(self, url: str) -> Issuer:
        """An OpenID Connect issuer Entra trusts for federation (an AKS cluster's
        service-account issuer, say): its `token()` signs tokens for `add_federated_credential`."""
        made = Issuer(url)
        with self.state.lock:
            self.state.issuers[url] = made
        return made

    def add_federated_credential(self, client_id: str, issuer: str, subject: str,
                                 audience: str = FEDERATION_AUDIENCE) -> None:
        app = self._app(client_id)
        with self.state.lock:
            app.federated.append(FederatedCredential(issuer, subject, audience))

    def github_actions(self, repository: str, ref: str = "refs/heads/main"
                       ) -> tuple[dict[str, str], str]:
        """A GitHub Actions job of `repository` at `ref` with `permissions: id-token: write`:
        the variables the runner gives it, and the subject its tokens carry (for
        `add_federated_credential` with issuer `ACTIONS_ISSUER`)."""
        with self.state.lock:
            if ACTIONS_ISSUER not in self.state.issuers:
                self.state.issuers[ACTIONS_ISSUER] = Issuer(ACTIONS_ISSUER)
        subject = f"repo:{repository}:ref:{ref}"
        request_token = secrets.token_urlsafe(32)
        with self.state.lock:
            self.state.actions_tokens[request_token] = subject
        url = (f"https://pipelinesghubeus1{ACTIONS_HOST_SUFFIX}/{new_guid()}/_apis/"
               f"distributedtask/hubs/Actions/plans/{new_guid()}/jobs/{new_guid()}/idtoken"
               "?api-version=2.0")
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": url,
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token}, subject

    def add_managed_identity(self, tenant: str, name: str = "vm", *, system: bool = False
                             ) -> App:
        """A managed identity attached to the machine `managed_identity_env` describes: its
        system-assigned one, or (the default) one more user-assigned identity."""
        subscription = new_guid()
        kind = ("Microsoft.Compute/virtualMachines" if system
                else "Microsoft.ManagedIdentity/userAssignedIdentities")
        app = App(client_id=new_guid(), tenant=tenant.lower(), object_id=new_guid(), name=name,
                  resource_id=f"/subscriptions/{subscription}/resourceGroups/ci/providers/"
                              f"{kind}/{name}")
        host = self._identity_host()
        with self.state.lock:
            self.state.tenants.add(app.tenant)
            if system:
                host.system = app
            else:
                host.user_assigned.append(app)
        return app

    def managed_identity_env(self, shape: str = "app-service") -> dict[str, str]:
        """What a process on the machine sees: App Service's IDENTITY_ENDPOINT and
        IDENTITY_HEADER, or for "imds" the variable that moves msal's IMDS address here."""
        assert self.identity_server is not None, "start() first"
        base = f"http://127.0.0.1:{self.identity_server.port}"
        if shape == "imds":
            return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": base}
        if shape != "app-service":
            raise ValueError("shape is app-service or imds")
        return {"IDENTITY_ENDPOINT": base + APP_SERVICE_PATH,
                "IDENTITY_HEADER": self._identity_host().header}

    def _identity_host(self) -> IdentityHost:
        with self.state.lock:
            if self.state.identity_host is None:
                self.state.identity_host = IdentityHost(header=secrets.token_hex(16))
            return self.state.identity_host

    def _app(self, client_id: str) -> App:
        app = self.state.app(client_id)
        if app is None:
            raise ValueError(f"unknown application {client_id}")
        return app

    # -- sign-in behaviour -------------------------------------------------------------------

    def device_flow(self, *, approve_after: int = 1, outcome: str = "approve",
                    interval: int = 1) -> None:
        """How device codes behave, those already pending included: each is answered
        `authorization_pending` for its first `approve_after` polls, then `outcome`: approve
        (tokens for the user `set_user` named for that authority when the code was issued),
        deny (`authorization_declined`) or expire (`expired_token`). `interval` is what new
        device-code responses tell the client to wait between polls; msal sleeps that long,
        and with 0 it polls in a tight loop that never checks its exit condition, so keep 1."""
        if outcome not in ("approve", "deny", "expire"):
            raise ValueError("outcome is approve, deny or expire")
        with self.state.lock:
            self.state.device_flow = replace(self.state.device_flow, approve_after=approve_after,
                                             outcome=outcome, interval=interval)
            for pending in self.state.device_codes.values():
                pending.approve_after, pending.outcome = approve_after, outcome

    def deny_authorize(self, error: str = "access_denied",
                       description: str = "AADSTS65004: User declined to consent to access "
                                          "the app.", times: int = 1) -> None:
        """The next `times` browser sign-ins post an error back to the app instead of a code."""
        with self.state.lock:
            self.state.authorize_errors.extend([(error, description)] * times)

    # -- clock -------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake clock (Unix seconds): real time plus `offset_seconds`."""
        return self.state.now()

    @property
    def offset_seconds(self) -> float:
        """How far the fake clock is ahead of real time (see `faketime`)."""
        return self.state.offset_seconds

    @property
    def faketime(self) -> str:
        """The offset in libfaketime's syntax, e.g. "+86400": run the helper with the env var
        FAKETIME set to it (and libfaketime preloaded), or as `faketime -f VALUE cmd`, so it
        shares the fake clock. (`faketime VALUE` without -f wants a date(1) string.)"""
        return f"{int(self.state.offset_seconds):+d}"

    def advance(self, seconds: float = 0, days: float = 0) -> None:
        with self.state.lock:
            self.state.offset_seconds += seconds + days * DAY

    # -- server-side events ------------------------------------------------------------------

    def revoke_pat(self, authorization_id: str) -> None:
        """Revoke a PAT as a user or administrator would in the web UI."""
        pat = self.state.pat_by_id(authorization_id)
        if pat is None:
            raise KeyError(authorization_id)
        with self.state.lock:
            pat.revoked = True

    def revoke_refresh_tokens(self, upn: str) -> int:
        """Revoke every refresh token of a user (password reset, admin sign-out); returns how
        many. Access tokens stay valid until they expire, as in Entra."""
        with self.state.lock:
            tokens = [t for t in self.state.refresh_tokens.values()
                      if t.upn.lower() == upn.lower() and not t.revoked]
            for token in tokens:
                token.revoked = True
        return len(tokens)

    def revoke_sessions(self, upn: str) -> None:
        """An administrator's "revoke sessions" (or a password reset): every refresh token of
        the user stops working, and Azure DevOps refuses the access tokens issued until now,
        though they have not expired. Tokens from a new sign-in work."""
        self.revoke_refresh_tokens(upn)
        with self.state.lock:
            self.state.sessions_revoked[upn.lower()] = self.now()

    def cae_event(self, upn: str) -> str:
        """A critical event for the user under Continuous Access Evaluation (a location policy
        changed, say): Azure DevOps refuses the user's access tokens that were not minted
        with the claims of the challenge it now sends, and the refresh tokens keep working.
        Returns those claims (JSON)."""
        when = self.now()
        claims = json.dumps({"access_token": {"nbf": {"essential": True,
                                                      "value": str(int(when))}}})
        with self.state.lock:
            self.state.cae_events[upn.lower()] = (when, claims)
        return claims

    def move_org(self, name: str, tenant: str) -> None:
        """Connect the organization to another Entra tenant, as its administrator can: from
        now on only that tenant's tokens (members and guests) are accepted, the 401s name it,
        and the PATs made before the move stop working."""
        found = self.state.org(name)
        if found is None:
            raise ValueError(f"unknown organization {name}")
        with self.state.lock:
            self.state.tenants.add(tenant.lower())
            found.tenant = tenant.lower()
            for pat in self.state.pats:
                if pat.org == found.name:
                    pat.revoked = True

    def issue_pat(self, org: str, upn: str, *, scope: str = "vso.code_write", days: float = 30,
                  display_name: str = "issued by the test", all_orgs: bool = False) -> PatRecord:
        """A PAT that exists without going through the API (a PAT the user made by hand)."""
        found = self.state.org(org)
        if found is None:
            raise ValueError(f"unknown organization {org}")
        now = self.now()
        pat = PatRecord(
            authorization_id=new_guid(), token=new_pat_token(), org=found.name, user=upn,
            scope=scope, display_name=display_name, valid_from=now, valid_to=now + days * DAY,
            all_orgs=all_orgs, target_accounts=None if all_orgs else [found.id])
        with self.state.lock:
            self.state.pats.append(pat)
        return replace(pat)

    def issue_access_token(self, upn: str, tenant: str | None = None, *,
                           resource: str = ADO_RESOURCE,
                           scopes: tuple[str, ...] = ("user_impersonation",),
                           client_id: str = VISUAL_STUDIO_CLIENT_ID) -> str:
        """An Entra access token minted directly (no sign-in), for tests of the API side."""
        user = self.state.user(upn)
        if user is None:
            raise ValueError(f"unknown user {upn}")
        tid = (tenant or user.tenant).lower()
        return self._entra.mint_access_token(user, tid, resource, scopes, client_id).token

    # -- faults ------------------------------------------------------------------------------

    def fail(self, step: str, status: int = 503, times: int = 1,
             retry_after: int | str | None = None, body: bytes | str | None = None,
             content_type: str | None = None) -> None:
        """The next `times` requests of `step` get this answer instead (an HTML page instead
        of JSON, malformed JSON, a huge body: pass `body` and `content_type`). `retry_after`
        is sent as given: seconds, or an HTTP date string.

        Steps: probe (dev.azure.com/{org}, {org}.visualstudio.com, connectionData), openid
        (OpenID configuration and keys), discovery (instance discovery), authorize,
        devicecode, token, pat_create, pat_list, pat_get, pat_update, pat_revoke, git (all
        smart-HTTP requests) and profile (app.vssps.visualstudio.com)."""
        data = body.encode() if isinstance(body, str) else body
        self.state.add_fault(step, Fault("fail", times, status=status, retry_after=retry_after,
                                         body=data, content_type=content_type))

    def drop(self, step: str, times: int = 1) -> None:
        """The next `times` requests of `step` see the connection closed without an answer."""
        self.state.add_fault(step, Fault("drop", times))

    def delay(self, step: str, seconds: float, times: int = 1) -> None:
        """The next `times` requests of `step` are answered `seconds` late."""
        self.state.add_fault(step, Fault("delay", times, seconds=seconds))

    def redirect(self, step: str, location: str, times: int = 1) -> None:
        """The next `times` requests of `step` get `302 Location: location`."""
        self.state.add_fault(step, Fault("redirect", times, location=location))

    def bad_create_answer(self, times: int = 1, **fields: object) -> None:
        """The next `times` creates make the PAT as usual but answer with these fields of
        `patToken` changed (`token=None`: a PAT created, its secret never given)."""
        with self.state.lock:
            self.state.create_answers.extend([fields] * times)

    def refuse_scope_with(self, status: int) -> None:
        """Answer a push with a PAT whose scope only reads with this status: 401 with the
        usual challenge, as git users of Azure DevOps meet it ("Authentication failed" on a
        push while fetches work), so that git sends `erase`; or 403, which git does not."""
        with self.state.lock:
            self.state.scope_refusal_status = status

    def drip(self, step: str, seconds_per_byte: float, times: int = 1) -> None:
        """The next `times` answers of `step` are sent as usual, but their body one byte at a
        time, `seconds_per_byte` apart: every read gets a byte in time, the whole never ends
        in time."""
        self.state.add_fault(step, Fault("drip", times, seconds=seconds_per_byte))

    def endless_pat_pages(self) -> None:
        """Every PAT list answer carries a new continuation token, however few PATs there are."""
        with self.state.lock:
            self.state.endless_pat_pages = True

    def pat_errors_with_status(self, status: int) -> None:
        """Answer PAT API errors (`patTokenError` other than none) with this HTTP status
        instead of the 200 the spec documents."""
        with self.state.lock:
            self.state.pat_error_status = status

    # -- ledger ------------------------------------------------------------------------------

    @property
    def pats(self) -> list[PatRecord]:
        """Every PAT ever created (copies), in creation order."""
        return self.state.snapshot_pats()

    def live_pats(self, org: str | None = None) -> list[PatRecord]:
        """PATs neither revoked nor expired on the fake clock, optionally of one org."""
        now = self.now()
        return [p for p in self.pats if p.live(now) and (org is None or p.org == org.lower())]

    def minted_count(self, org: str | None = None) -> int:
        """How many PATs were created (through the API or `issue_pat`)."""
        return sum(1 for p in self.pats if org is None or p.org == org.lower())

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request the server answered (or dropped), oldest first."""
        with self.state.lock:
            return list(self.state.requests)

    def requests_for(self, step: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.step == step]

    @property
    def grants(self) -> Counter[str]:
        """Token-endpoint requests by grant (authorization_code, refresh_token, device_code),
        whatever their outcome; `issued` counts the ones that returned tokens."""
        with self.state.lock:
            return Counter(self.state.grants)

    @property
    def issued(self) -> Counter[str]:
        with self.state.lock:
            return Counter(self.state.issued)

    @property
    def authorize_count(self) -> int:
        return self.state.authorize_count

    @property
    def devicecode_count(self) -> int:
        return self.state.devicecode_count

    @property
    def refused(self) -> list[str]:
        """CONNECT targets (or plain-HTTP hosts) the proxy refused."""
        assert self.proxy is not None
        return list(self.proxy.refused)
