"""`doctor`: every link between `git fetch` and a PAT, checked in order, one line each.

Each check says ok, warn or fail, and whatever is not ok says how to fix it. The checks follow
the path a credential takes: git finds the helper, git config sends Azure DevOps URLs to it
(and to nothing before it), the secret store answers without blocking, the sign-in cache is
there, Entra ID and Azure DevOps are reachable through the proxy and CA git uses, the clock
agrees with theirs, each organization still signs in with the tenant remembered for it, a
machine identity (`patIdentity`) gets its token, and no stored PAT is about to expire
unnoticed.
"""

from __future__ import annotations

import argparse
import email.utils
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from git_credential_pat import __version__
from git_credential_pat.actions.context import OrgContext, Runtime, StoredTokenCache
from git_credential_pat.commands import configure, status
from git_credential_pat.commands.output import Terminal, show, when
from git_credential_pat.commands.targets import repo_orgs, stored_orgs
from git_credential_pat.core import entries, policy, settings as settings_mod
from git_credential_pat.core.constants import FILE_STORE_HINT, NAME, ORG_HOST, WARN_DAYS
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.remote import Org
from git_credential_pat.edges import git, gitconfig, keyringstore

TYPE_CHECKING = False
if TYPE_CHECKING:
    import requests

    from git_credential_pat.core.settings import Settings
    from git_credential_pat.edges.store import SecretStore

# credential.<url> sections accept wildcards (`https://*.visualstudio.com`) since git 2.26
# (its release notes: "can now use wildcard pattern to specify for which set of URLs").
MIN_GIT = (2, 26)
PROBE_SECONDS = 10.0
NETWORK_SECONDS = 15.0
SKEW_WARN, SKEW_FAIL = 60, 300  # seconds; Entra refuses tokens beyond about five minutes
SAMPLE_URLS = (f"https://{ORG_HOST}/x", "https://x.visualstudio.com")
DOCTOR_ORG = "git-credential-pat-doctor"  # an organization's name when none is known
NETWORK_FIX = ("check the network, the proxy (git config http.proxy, or HTTPS_PROXY) and the CA "
               "(git config http.sslCAInfo): the helper uses what `git fetch` uses")


@dataclass
class Check:
    name: str
    level: str  # ok | warn | fail
    detail: str
    fix: str = ""


class Checkup:
    """One run of the checks: what several of them share (the settings for Azure DevOps, the
    store once opened) and what they find out on the way (the servers' clocks)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings: Settings = runtime.settings(f"https://{ORG_HOST}")
        self.store: SecretStore | None = None
        self.dates: list[tuple[float, str]] = []  # (local clock - server clock, host)


def run(args: argparse.Namespace, term: Terminal) -> int:
    context = Checkup(Runtime(say=term.say))
    checks: list[Check] = []
    with term.progress("Checking"):
        for check in CHECKS:
            try:
                checks += check(context)
            except HelperError as error:  # git missing, say: the other checks still run
                checks.append(Check(check.__name__, "fail", str(error)))
    failed = any(c.level == "fail" for c in checks)
    if args.json:
        term.json({"ok": not failed, "version": __version__,
                   "checks": [asdict(c) for c in checks]})
    else:
        _print(checks, term)
    return 1 if failed else 0


def _print(checks: list[Check], term: Terminal) -> None:
    width = max(len(c.name) for c in checks)
    for c in checks:
        term.line((c.level.ljust(4), c.level), f"  {c.name.ljust(width)}  {c.detail}")
        if c.fix and c.level != "ok":
            term.line(f"{'':4}  {'':{width}}  fix: {c.fix}")


# -- git ---------------------------------------------------------------------------------------

def git_version(_: Checkup) -> Iterator[Check]:
    try:
        text = git.run("--version").strip()
    except HelperError as error:
        yield Check("git", "fail", str(error), "install git")
        return
    numbers = text.removeprefix("git version ").split(".")
    version = tuple(int(n) for n in numbers[:2] if n.isdigit())
    if version < MIN_GIT:
        yield Check("git", "warn", f"{text}: too old to apply credential.https://*.visualstudio"
                    ".com, so *.visualstudio.com remotes will not use the helper",
                    "upgrade git to 2.26 or newer")
    else:
        yield Check("git", "ok", text)


def helper_on_path(_: Checkup) -> Iterator[Check]:
    """git runs `git credential-pat` from its exec-path or PATH; both are searched here."""
    exec_path = git.run("--exec-path", ok=(0, 128)).strip()
    found = shutil.which(NAME, path=os.pathsep.join([exec_path, os.environ.get("PATH", "")]))
    if found:
        yield Check("helper", "ok", f"git runs {found}; this is {NAME} {__version__}")
    else:
        yield Check("helper", "fail", f"git cannot find {NAME} on PATH",
                    "add the directory holding git-credential-pat to PATH, or rerun install.sh")


def helpers(_: Checkup) -> Iterator[Check]:
    for url in SAMPLE_URLS:
        order = gitconfig.applicable_helpers(url)
        shown = ", ".join(show(h) for h in order) or "none"
        name = f"helpers {url.split('//')[1]}"
        plain = [h for h in order if gitconfig.writes_plaintext(h)]
        if plain and any(status.is_ours(h) for h in order):
            yield Check(name, "warn", f"{shown}: '{show(plain[0])}' {configure.PLAINTEXT}",
                        "git credential-pat configure --exclusive, then git credential-pat "
                        "migrate")
        elif not any(status.is_ours(h) for h in order):
            yield Check(name, "fail", f"git does not use git-credential-pat (helpers: {shown})",
                        "git credential-pat configure")
        elif not status.git_uses_helper(order):
            yield Check(name, "warn", f"{shown}: '{show(status.answering(order))}' runs first "
                        "and answers instead", "git credential-pat configure --exclusive")
        elif any(not status.is_ours(h) and not gitconfig.is_cache(h) for h in order):
            yield Check(name, "warn", f"{shown}: the others are also handed every PAT",
                        "git credential-pat configure --exclusive")
        else:
            yield Check(name, "ok", shown)


def use_http_path(_: Checkup) -> Iterator[Check]:
    """On dev.azure.com the organization is the first path segment, which git withholds from
    helpers unless useHttpPath is on."""
    config = git.config_section("credential", SAMPLE_URLS[0])
    value = config.get("credential.usehttppath", "false").strip().lower()
    if value in ("true", "yes", "on", "1"):
        yield Check("useHttpPath", "ok", f"git sends the path for https://{ORG_HOST}")
    else:
        yield Check("useHttpPath", "warn",
                    f"git does not send the path for https://{ORG_HOST}, so only remotes "
                    "with the organization as user name work", "git credential-pat configure")


# -- the secret store ------------------------------------------------------------------------

def keyring(context: Checkup) -> Iterator[Check]:
    """Open the store and write, read and delete a probe, all within PROBE_SECONDS: a locked
    keyring that pops up a dialog nobody answers would otherwise hang every `git fetch`."""
    settings = context.settings
    try:
        store = _bounded(lambda: _probe(context.runtime.store(settings)), PROBE_SECONDS)
    except HelperError as error:
        # A machine identity needs no store for Azure DevOps; other hosts' passwords still do.
        level = "warn" if policy.machine_identity(settings) else "fail"
        yield Check("store", level, str(error),
                    f"unlock or start the keyring, or opt into the file store: {FILE_STORE_HINT}")
        return
    context.store = store
    yield Check("store", "ok", f"{store.description}: write, read and delete work")


def _probe(store: SecretStore) -> SecretStore:
    key = f"doctor-probe-{os.getpid()}"
    store.write(key, "probe")
    try:
        if store.read(key) != "probe":
            raise HelperError("the store did not give back what was written to it")
    finally:
        store.delete(key)
    return store


def _bounded(work: Callable[[], SecretStore], seconds: float) -> SecretStore:
    """`work` abandoned after `seconds`: a D-Bus call waiting for an unlock prompt cannot be
    interrupted. Any failure of any backend is this check's answer, in one line."""
    try:
        return keyringstore.bounded(work, seconds)
    except keyringstore.NoAnswer:
        raise HelperError(f"the secret store did not answer within {seconds:.0f} s "
                          "(locked, waiting for a password prompt?)") from None
    except HelperError:
        raise
    except Exception as error:  # noqa: BLE001 - any backend's failure is this check's answer
        raise HelperError(f"the secret store failed ({error.__class__.__name__})") from None


def token_cache(context: Checkup) -> Iterator[Check]:
    if context.store is None:
        yield Check("sign-in", "warn", "not checked: the store is not usable")
        return
    from git_credential_pat.edges import http, signin

    cache = StoredTokenCache(context.store)
    if cache.load() is None:
        yield Check("sign-in", "ok", "no sign-in cached yet: the first clone or "
                    "`git credential-pat login` signs in")
        return
    sign = signin.SignIn(context.settings, http.new_session(context.settings), cache,
                         context.runtime)
    accounts = ", ".join(show(a) for a in sign.accounts())
    if accounts:
        yield Check("sign-in", "ok", f"cached for {accounts}, in {context.store.description}")
    else:
        yield Check("sign-in", "warn", "the cached sign-in holds no account",
                    "git credential-pat login")


# -- the network -------------------------------------------------------------------------------

def network(context: Checkup) -> Iterator[Check]:
    known = repo_orgs() or (stored_orgs(context.store) if context.store else [])
    org = known[0].name if known else DOCTOR_ORG  # any answer will do
    authority = context.settings.authority_host.rstrip("/")
    yield _reach(context, f"{authority}/organizations/v2.0/.well-known/openid-configuration")
    yield _reach(context, f"https://{ORG_HOST}/{org}")


def _reach(context: Checkup, url: str) -> Check:
    """Any answer over verified TLS proves the path; what the server thinks of an
    unauthenticated request does not matter here."""
    from git_credential_pat.edges import http

    settings = settings_mod.with_http(context.settings, git.config_section("http", url),
                                      context.runtime.environ)
    session = http.new_session(settings)
    host = http.host_of(url)
    route = _route(session, url, settings)
    started = time.time()
    try:
        response = http.call(session, "GET", url, step="checking the connection",
                             timeout=min(settings.timeout, NETWORK_SECONDS))
    except HelperError as error:
        return Check(host, "fail", f"{error} ({route})", NETWORK_FIX)
    _note_date(context, response, started, host)
    return Check(host, "ok", f"reachable over TLS, HTTP {response.status_code} ({route})")


def _route(session: requests.Session, url: str, settings: Settings) -> str:
    """The proxy and CA in effect, as requests will combine git config and the environment."""
    effective = session.merge_environment_settings(url, {}, None, None, None)
    proxy = (effective["proxies"] or {}).get("https")
    verify = effective["verify"]
    ca = "TLS not verified" if verify is False else (
        f"CA {verify}" if isinstance(verify, str) else "system CAs")
    origin = " from http.sslCAInfo" if settings.ca_file and verify == settings.ca_file else ""
    return f"{f'proxy {show(proxy)}' if proxy else 'no proxy'}, {ca}{origin}"


def _note_date(context: Checkup, response: requests.Response, started: float,
               host: str) -> None:
    header = response.headers.get("Date")
    try:
        server = email.utils.parsedate_to_datetime(header).timestamp() if header else None
    except (TypeError, ValueError):
        server = None
    if server is not None:
        local = (started + time.time()) / 2  # the middle of the round trip
        context.dates.append((local - server, host))


def clock(context: Checkup) -> Iterator[Check]:
    if not context.dates:
        yield Check("clock", "warn", "not checked: no server answered with its time")
        return
    skew, host = max(context.dates, key=lambda d: abs(d[0]))
    direction = "ahead of" if skew > 0 else "behind"
    detail = f"{abs(skew):.0f} s {direction} {host}"
    if abs(skew) >= SKEW_FAIL:
        yield Check("clock", "fail", f"{detail}: sign-in tokens will be refused",
                    "set the clock right (timedatectl set-ntp true)")
    elif abs(skew) >= SKEW_WARN:
        yield Check("clock", "warn", detail, "set the clock right (timedatectl set-ntp true)")
    else:
        yield Check("clock", "ok", detail)


# -- tenants -----------------------------------------------------------------------------------

def tenants(context: Checkup) -> Iterator[Check]:
    """Each stored organization's remembered tenant against the one it names now: an
    organization moved to another tenant refuses every token of the old one."""
    if context.store is None:
        return
    from git_credential_pat.edges import tenant as tenants_of

    for org in stored_orgs(context.store):
        target = context.runtime.org(org)
        known = entries.org_of(target.item()).get("tenant", "")
        if not known or target.settings.tenant:
            continue  # never signed in there, or pinned by patTenant
        try:
            now = tenants_of.discover(org.name, target.http, min(target.settings.timeout,
                                                                 NETWORK_SECONDS),
                                      authority_host=target.settings.authority_host)
        except HelperError as error:
            yield Check(f"tenant {org.name}", "warn", f"not checked: {error}")
            continue
        if now == known:
            yield Check(f"tenant {org.name}", "ok", f"{show(known)}, as the organization says")
            continue
        stored = policy.pick(target.item(), "", context.runtime.clock())
        again = "rotate" if stored and entries.minted(stored) else "login"
        yield Check(f"tenant {org.name}", "warn", f"remembered as {show(known)}, but the "
                    f"organization now signs in with {show(now)}; the next sign-in moves there",
                    f"git credential-pat {again} {org.url}")


# -- machine identities ----------------------------------------------------------------------

def identities(context: Checkup) -> Iterator[Check]:
    """For each machine identity `patIdentity` names: who it is, and whether Entra (or the
    machine's endpoint) gives it a token for Azure DevOps, the way `get` would ask."""
    known = repo_orgs() or (stored_orgs(context.store) if context.store else [])
    for machine in status.machine_identities(context.runtime, known):
        yield _identity_check(context, machine, machine.org or (known[0] if known else None))


def _identity_check(context: Checkup, machine: status.IdentityStatus, org: Org | None) -> Check:
    from git_credential_pat.edges import identity

    name = f"identity {machine.name}"
    runtime = context.runtime
    try:
        found = identity.resolve(machine.settings, runtime.environ)
    except HelperError as error:
        return _failed(name, error)
    if org is None and found.needs_tenant and not found.tenant:
        return Check(name, "warn", f"{machine.description}; not checked: its tenant comes from "
                     "the organization", "run doctor inside a clone, or set AZURE_TENANT_ID")
    settings = machine.settings
    where = OrgContext(runtime, org or Org(DOCTOR_ORG), settings, runtime.store(settings))
    try:
        token = where.identity_token()
    except HelperError as error:
        return _failed(name, error)
    return Check(name, "ok", f"{machine.description}: Entra gave it a token for Azure DevOps, "
                 f"valid until {when(token.expires_on)}")


def _failed(name: str, error: HelperError) -> Check:
    """The error's own fix, the part after its last semicolon, goes on the fix line."""
    detail, _, fix = str(error).rpartition("; ")
    return Check(name, "fail", detail or fix, fix if detail else "")


# -- the PATs ----------------------------------------------------------------------------------

def expiring(context: Checkup) -> Iterator[Check]:
    if context.store is None:
        return
    rows = [row for row in status.collect(context.runtime, context.store,
                                          context.runtime.clock()) if row.pat]
    for row in rows:
        if row.level != "ok":
            fix = f"git credential-pat rotate {row.org.url}" if row.minted else \
                f"git credential-pat login {row.org.url}"
            yield Check(f"PAT {row.org.name}", "warn", f"{row.account}: {row.note}", fix)
    if not any(row.level != "ok" for row in rows):
        yield Check("PATs", "ok", f"{len(rows)} stored, none expires within {WARN_DAYS} days")


CHECKS: tuple[Callable[[Checkup], Iterator[Check]], ...] = (
    git_version, helper_on_path, helpers, use_http_path, keyring, token_cache, network, clock,
    tenants, identities, expiring,
)
