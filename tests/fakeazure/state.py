"""Everything the fake knows, behind one lock: directory, organizations, tokens, PATs, ledger.

The HTTP handlers run on many threads at once (git, curl and requests keep several connections
open), and the test thread changes knobs while they run, so every read-modify-write of this
state happens under `State.lock`. Records are plain dataclasses; the lists that tests read are
handed out as copies.

Time is the fake clock: real time plus an offset that tests move forward with `advance()`. The
helper under test runs under libfaketime with the same offset, so "expired" means the same on
both sides of the wire.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakeazure.tokens import Issuer

ADO_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
ADO_RESOURCE_URI = "https://app.vssps.visualstudio.com"
GRAPH_RESOURCE = "00000003-0000-0000-c000-000000000000"
MSA_ORG_TENANT = "00000000-0000-0000-0000-000000000000"
LOGIN_HOST = "login.microsoftonline.com"
# Path segments Entra accepts in place of a tenant ID.
META_TENANTS = frozenset({"organizations", "common", "consumers"})

STEPS = frozenset({
    "probe", "openid", "discovery", "authorize", "devicecode", "token", "pat_create",
    "pat_list", "pat_get", "pat_update", "pat_revoke", "git", "profile", "identity", "oidc",
})
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"

ACCESS_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_IDLE_LIFETIME = 90 * 86400
AUTH_CODE_LIFETIME = 600
DEVICE_CODE_LIFETIME = 900
DAY = 86400


def new_guid() -> str:
    return str(uuid.uuid4())


def claims_of(text: str) -> dict[str, object]:
    """The access-token part of a `claims` request parameter (JSON), or {}."""
    try:
        parsed = json.loads(text) if text else {}
    except ValueError:
        return {}
    found = parsed.get("access_token") if isinstance(parsed, dict) else None
    return found if isinstance(found, dict) else {}


def claims_satisfied(requested: str, demanded: str) -> bool:
    """Whether a token request asked for every access-token claim a challenge demanded."""
    asked = claims_of(requested)
    return all(asked.get(name) == value for name, value in claims_of(demanded).items())


def declares_cae(requested: str) -> bool:
    """Whether a token request declared the client capability `cp1` (msal's
    `client_capabilities=["CP1"]`): only such clients are sent claims challenges."""
    capability = claims_of(requested).get("xms_cc")
    values = capability.get("values") if isinstance(capability, dict) else None
    return isinstance(values, list) and any(str(v).lower() == "cp1" for v in values)


@dataclass
class User:
    upn: str
    tenant: str  # home tenant
    oid: str
    name: str
    guest_in: set[str] = field(default_factory=set)

    def can_sign_in_to(self, tenant: str) -> bool:
        return tenant == self.tenant or tenant in self.guest_in


@dataclass
class Policy:
    """An organization's PAT policies, as an administrator would set them."""

    disable_creation: bool = False
    max_lifespan_days: int | None = None
    forbid_full_scope: bool = False
    forbid_global: bool = True


@dataclass
class Org:
    name: str  # lower case, as URLs are matched
    tenant: str
    id: str
    policy: Policy = field(default_factory=Policy)

    @property
    def msa(self) -> bool:
        return self.tenant == MSA_ORG_TENANT


@dataclass
class PatRecord:
    """A PAT as Azure DevOps keeps it. `token` is the secret; tests may read it, logs never."""

    authorization_id: str
    token: str
    org: str
    user: str
    scope: str
    display_name: str
    valid_from: float
    valid_to: float
    revoked: bool = False
    all_orgs: bool = False
    target_accounts: list[str] | None = None

    def status(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if now >= self.valid_to else "active"

    def live(self, now: float) -> bool:
        return self.status(now) == "active"


@dataclass
class AccessTokenRecord:
    """An access token the fake issued. For an application's own token (a service principal
    or a managed identity, `app` true) `upn` holds the application's client ID."""

    token: str
    upn: str
    tenant: str  # the tid the token was issued for
    audience: str
    scopes: tuple[str, ...]
    client_id: str
    issued_at: float
    expires_at: float
    app: bool = False
    claims: str = ""  # the `claims` parameter of the token request, as JSON


@dataclass(frozen=True)
class FederatedCredential:
    """An app registration's trust in another issuer's tokens: whose (`subject`) from where
    (`issuer`), meant for Entra (`audience`)."""

    issuer: str
    subject: str
    audience: str = FEDERATION_AUDIENCE


@dataclass
class App:
    """A service principal in its tenant: an app registration's identity, or a managed
    identity (which also has an Azure resource ID). `secrets` maps each client secret to
    when it expires; `certificates` holds the DER of each registered certificate."""

    client_id: str
    tenant: str
    object_id: str
    name: str
    resource_id: str = ""
    secrets: dict[str, float] = field(default_factory=dict)
    certificates: list[bytes] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)


@dataclass
class IdentityHost:
    """The machine the managed-identity endpoint belongs to: its system-assigned identity,
    the user-assigned ones attached to it, and the secret App Service's endpoint wants in
    X-IDENTITY-HEADER."""

    header: str
    system: App | None = None
    user_assigned: list[App] = field(default_factory=list)


@dataclass
class RefreshTokenRecord:
    token: str
    upn: str
    client_id: str
    issued_at: float
    last_used: float
    revoked: bool = False
    replaced_by: str | None = None


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    scopes: tuple[str, ...]
    nonce: str | None
    upn: str
    tenant_path: str
    issued_at: float
    used: bool = False


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    tenant_path: str
    upn: str | None
    expires_at: float
    approve_after: int
    outcome: str  # approve | deny | expire
    polls: int = 0


@dataclass
class DeviceFlowSettings:
    approve_after: int = 1
    outcome: str = "approve"
    interval: int = 1


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it. The Authorization header is never kept: `auth` names
    its scheme (none/basic/bearer/other), `credential` what kind of secret it carried (pat,
    entra, unknown; None where the handler does not authenticate) and `user` whom it
    authenticated. Bodies are not kept either; `query` is, as sent. `status` 0 means the
    connection was dropped on purpose."""

    time: float
    method: str
    host: str
    path: str
    query: str
    step: str
    status: int
    auth: str
    credential: str | None
    user: str | None


@dataclass
class Fault:
    kind: str  # fail | drop | delay | redirect | drip (the body sent `seconds` per byte)
    remaining: int
    status: int = 503
    retry_after: int | str | None = None  # seconds, or an HTTP date
    body: bytes | None = None
    content_type: str | None = None
    seconds: float = 0.0
    location: str = ""


class State:
    """The fake's whole world. Methods that touch shared data take `self.lock`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.offset_seconds = 0.0
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.tenants: set[str] = set()
            self.users: dict[str, User] = {}
            self.signin_user: dict[str, str] = {}
            self.clients: set[str] = set()
            self.orgs: dict[str, Org] = {}
            self.repos: dict[tuple[str, str, str], tuple[str, str, str]] = {}
            self.pats: list[PatRecord] = []
            self.access_tokens: dict[str, AccessTokenRecord] = {}
            self.refresh_tokens: dict[str, RefreshTokenRecord] = {}
            self.auth_codes: dict[str, AuthCode] = {}
            self.device_codes: dict[str, DeviceCode] = {}
            self.device_flow = DeviceFlowSettings()
            self.apps: dict[str, App] = {}
            self.issuers: dict[str, Issuer] = {}  # trusted for federation, by URL
            self.identity_host: IdentityHost | None = None
            self.actions_tokens: dict[str, str] = {}  # a job's request token -> its subject
            self.authorize_errors: list[tuple[str, str]] = []
            self.faults: dict[str, list[Fault]] = {}
            self.requests: list[RequestRecord] = []
            self.grants: Counter[str] = Counter()
            self.issued: Counter[str] = Counter()
            self.authorize_count = 0
            self.devicecode_count = 0
            self.pat_error_status = 200
            self.sessions_revoked: dict[str, float] = {}  # upn -> when
            self.cae_events: dict[str, tuple[float, str]] = {}  # upn -> (when, claims JSON)
            self.create_answers: list[dict[str, object]] = []  # fields the next creates change
            self.scope_refusal_status = 403  # for a push with a PAT that may only read
            self.endless_pat_pages = False
            self.offset_seconds = 0.0

    # -- clock -------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.offset_seconds

    # -- directory ---------------------------------------------------------------------------

    def user(self, upn: str) -> User | None:
        return self.users.get(upn.lower())

    def default_user(self, tenant_path: str) -> User | None:
        """Who signs in at this authority when the request names nobody: the user set with
        `set_user` for that path, else the first user of that tenant (for `organizations` and
        `common`, the first user of any tenant)."""
        with self.lock:
            chosen = self.signin_user.get(tenant_path)
            if chosen:
                return self.user(chosen)
            for candidate in self.users.values():
                if tenant_path in META_TENANTS or candidate.can_sign_in_to(tenant_path):
                    return candidate
            return None

    def client_allowed(self, client_id: str) -> bool:
        """Any GUID-shaped client ID, or only the registered ones once any is registered."""
        with self.lock:
            if self.clients:
                return client_id in self.clients
        try:
            uuid.UUID(client_id)
        except ValueError:
            return False
        return True

    def app(self, client_id: str) -> App | None:
        with self.lock:
            return self.apps.get(client_id.lower())

    def org(self, name: str) -> Org | None:
        return self.orgs.get(name.lower())

    # -- tokens ------------------------------------------------------------------------------

    def find_access_token(self, token: str) -> AccessTokenRecord | None:
        with self.lock:
            return self.access_tokens.get(token)

    def token_refusal(self, token: AccessTokenRecord) -> str:
        """Why Azure DevOps refuses a user's access token before it expires: "revoked" (its
        user's sessions were revoked after it was issued), "claims" (a Continuous Access
        Evaluation event for its user, and the token was not minted with that event's
        claims), or "" when it is not refused."""
        with self.lock:
            revoked = self.sessions_revoked.get(token.upn.lower())
            event = self.cae_events.get(token.upn.lower())
        if token.app:
            return ""
        if revoked is not None and token.issued_at <= revoked:
            return "revoked"
        if event is not None and not claims_satisfied(token.claims, event[1]):
            return "claims"
        return ""

    def find_pat(self, token: str) -> PatRecord | None:
        with self.lock:
            for pat in self.pats:
                if secrets.compare_digest(pat.token, token):
                    return pat
            return None

    def pat_by_id(self, authorization_id: str) -> PatRecord | None:
        with self.lock:
            for pat in self.pats:
                if pat.authorization_id == authorization_id.lower():
                    return pat
            return None

    def snapshot_pats(self) -> list[PatRecord]:
        with self.lock:
            return [replace(p) for p in self.pats]

    # -- faults ------------------------------------------------------------------------------

    def add_fault(self, step: str, fault: Fault) -> None:
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; steps are {sorted(STEPS)}")
        with self.lock:
            self.faults.setdefault(step, []).append(fault)

    def take_faults(self, step: str) -> tuple[float, Fault | None]:
        """Consume the faults due for one request of `step`: the total delay to apply first,
        then at most one answer-changing fault (fail, drop or redirect), oldest first."""
        delay = 0.0
        answer: Fault | None = None
        with self.lock:
            queue = self.faults.get(step, [])
            for fault in list(queue):
                if fault.kind == "delay":
                    delay += fault.seconds
                elif answer is None:
                    answer = fault
                else:
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.remove(fault)
        return delay, answer

    # -- ledger ------------------------------------------------------------------------------

    def log(self, record: RequestRecord) -> None:
        with self.lock:
            self.requests.append(record)
