"""Machines that sign in as themselves, end to end: real git clones and pushes as a service
principal (secret, certificate), a managed identity (App Service's endpoint, a VM's IMDS) and a
federated workload (AKS' token file, GitHub Actions), against the local Azure.

The machine is configured as install.sh leaves it (git's credential-cache in front), with the
fake's browser at hand: a failure that fell back to a person's sign-in would succeed, as Alice,
so each failure test can tell. git itself is replaced on PATH by a recorder of its argv and
environment, so that the helper's child processes are seen too.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.azurefixtures import REPO_URL, configured
from tests.failingkeyring import set_rules
from tests.fakeazure import FakeAzure
from tests.fakeazure.identities import ACTIONS_ISSUER
from tests.fakeazure.state import FEDERATION_AUDIENCE
from tests.gitenv import GitEnv
from tests.hardening import assert_one_clean_line, stored_item, use_failing_keyring
from tests.netfixtures import ALICE, Contoso
from tests.test_azure import cached
from tests.test_hardening_secrets import find_secrets, recorder

AKS_ISSUER = "https://oidc.prod-aks.azure.com/6a8b5f6c-0000-4000-8000-000000000001/"
AKS_SUBJECT = "system:serviceaccount:ci:mirror"
KINDS = ["service principal with a secret", "service principal with a certificate",
         "managed identity on App Service", "managed identity on a VM",
         "workload identity on AKS", "workload identity in GitHub Actions"]


@dataclass
class Machine:
    env: GitEnv
    children: Path  # what the recorded git processes were given

    def git(self, *args: str, extra: dict[str, str], cwd: Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self.env.git(*args, extra_env=extra, cwd=cwd, check=check)


@pytest.fixture
def machine(genv: GitEnv, azure: FakeAzure, contoso: Contoso, tmp_path: Path) -> Machine:
    """git puts its exec-path first on its children's PATH, so the git the helper runs is
    found there: a copy of the exec-path whose `git` records what it was given."""
    env = configured(genv, azure)
    real = Path(env.git("--exec-path").stdout.decode().strip())
    farm = tmp_path / "git-core"
    farm.mkdir()
    for entry in real.iterdir():
        (farm / entry.name).symlink_to(entry)
    (farm / "git").unlink()
    children = tmp_path / "children.log"
    recorder(farm / "git", children, str(real / "git"))
    env.env["GIT_EXEC_PATH"] = str(farm)
    return Machine(env, children)


def identity_env(kind: str, azure: FakeAzure, contoso: Contoso, outside: Path
                 ) -> tuple[dict[str, str], str]:
    """The variables a CI job of this kind has, and the client ID its tokens carry. Files the
    platform provides (a certificate, a token file) live outside HOME."""
    outside.mkdir(exist_ok=True)
    tenant = {"AZURE_TENANT_ID": contoso.tenant}
    if kind.startswith("service principal"):
        app = azure.add_service_principal(contoso.tenant, secret="sp-secret-value")
        env = {"GIT_CREDENTIAL_PAT_IDENTITY": "service-principal",
               "AZURE_CLIENT_ID": app.client_id}
        if kind.endswith("secret"):
            return {**env, **tenant, "AZURE_CLIENT_SECRET": "sp-secret-value"}, app.client_id
        cert = azure.add_certificate(app.client_id, outside / "sp.pem")
        # No tenant: the helper asks the organization, as it does for people.
        return {**env, "AZURE_CLIENT_CERTIFICATE_PATH": str(cert.pem)}, app.client_id
    if kind.startswith("managed identity"):
        mi = {"GIT_CREDENTIAL_PAT_IDENTITY": "managed-identity"}
        if kind.endswith("App Service"):
            system = azure.add_managed_identity(contoso.tenant, "app", system=True)
            return {**mi, **azure.managed_identity_env("app-service")}, system.client_id
        user = azure.add_managed_identity(contoso.tenant, "vm-identity")
        return {**mi, **azure.managed_identity_env("imds"),
                "AZURE_CLIENT_ID": user.client_id}, user.client_id
    app = azure.add_service_principal(contoso.tenant, "mirror")
    wi = {"GIT_CREDENTIAL_PAT_IDENTITY": "workload-identity", "AZURE_CLIENT_ID": app.client_id,
          **tenant}
    if kind.endswith("AKS"):
        azure.add_federated_credential(app.client_id, AKS_ISSUER, AKS_SUBJECT)
        token_file = outside / "azure-identity-token"
        token_file.write_text(azure.issuer(AKS_ISSUER).token(
            AKS_SUBJECT, azure.now(), audience=FEDERATION_AUDIENCE))
        return {**wi, "AZURE_FEDERATED_TOKEN_FILE": str(token_file)}, app.client_id
    actions, subject = azure.github_actions("contoso/app")
    azure.add_federated_credential(app.client_id, ACTIONS_ISSUER, subject)
    return {**wi, **actions}, app.client_id


def access_tokens(azure: FakeAzure) -> set[str]:
    with azure.state.lock:
        return set(azure.state.access_tokens)


@pytest.mark.parametrize("kind", KINDS)
def test_each_identity_clones_and_pushes_and_the_token_stays_nowhere(
        machine: Machine, azure: FakeAzure, contoso: Contoso, tmp_path: Path,
        kind: str) -> None:
    extra, client_id = identity_env(kind, azure, contoso, tmp_path / "platform")
    trace = tmp_path / "trace.log"
    extra["GIT_CREDENTIAL_PAT_TRACE"] = str(trace)
    clone = machine.git("clone", "-q", REPO_URL, "work", extra=extra)
    work = machine.env.home / "work"
    (work / "from-ci.txt").write_text(f"{kind}\n")
    machine.git("add", "from-ci.txt", extra=extra, cwd=work)
    machine.git("commit", "-qm", f"as the {kind}", extra=extra, cwd=work)
    push = machine.git("push", "-q", "origin", "HEAD:main", extra=extra, cwd=work)

    head = machine.git("rev-parse", "HEAD", extra=extra, cwd=work).stdout
    served = machine.git("--git-dir", str(azure.repo_path("contoso", "proj", "repo")),
                         "rev-parse", "main", extra=extra).stdout
    assert head == served
    authenticated = [r for r in azure.requests_for("git") if r.credential]
    assert authenticated and {(r.credential, r.user) for r in authenticated} == {
        ("entra", client_id)}
    assert azure.pats == [] and azure.authorize_count == azure.devicecode_count == 0
    assert [r for r in azure.requests if r.step.startswith("pat_")] == []
    assert stored_item(machine.env)["credentials"] == []
    assert cached(machine.env, REPO_URL) == {}

    tokens = access_tokens(azure)
    assert tokens
    # What the job was given is secret too: the client secret, the federated token, GitHub's
    # request token.
    given = tokens | {value for name, value in extra.items() if name in (
        "AZURE_CLIENT_SECRET", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")}
    if "AZURE_FEDERATED_TOKEN_FILE" in extra:
        given.add(Path(extra["AZURE_FEDERATED_TOKEN_FILE"]).read_text())
    for done in (clone, push):
        assert not find_secrets(done.stdout + done.stderr, given)
    assert b"oauth2/v2.0/token" in trace.read_bytes() or b"/token -> 200" in trace.read_bytes()
    assert not find_secrets(trace.read_bytes(), given)
    for path in machine.env.home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert not find_secrets(path.read_bytes(), given), path
    recorded = machine.children.read_bytes()
    assert b"--get-urlmatch" in recorded  # the helper's own git children were recorded
    assert not find_secrets(recorded, tokens), "in a child process's argv or environment"


def failing(kind: str, azure: FakeAzure, contoso: Contoso, outside: Path
            ) -> tuple[dict[str, str], list[str]]:
    """A broken setup of each kind, and what its one line must name."""
    if kind == "wrong secret":
        extra, client_id = identity_env("service principal with a secret", azure, contoso,
                                        outside)
        return {**extra, "AZURE_CLIENT_SECRET": "the-secret-id-not-its-value"}, [
            f"service principal {client_id} in tenant {contoso.tenant}",
            "the client secret is wrong (AADSTS7000215)", "not its ID"]
    if kind == "expired federated token":
        extra, client_id = identity_env("workload identity on AKS", azure, contoso, outside)
        Path(extra["AZURE_FEDERATED_TOKEN_FILE"]).write_text(azure.issuer(AKS_ISSUER).token(
            AKS_SUBJECT, azure.now(), audience=FEDERATION_AUDIENCE, lifetime=-3600))
        return extra, [f"workload identity {client_id} in tenant {contoso.tenant}",
                       "the federated token has expired", "(AADSTS700024)",
                       f"refresh {extra['AZURE_FEDERATED_TOKEN_FILE']}"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {"GIT_CREDENTIAL_PAT_IDENTITY": "managed-identity",
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{port}/msi/token",
            "IDENTITY_HEADER": "header"}, [
        "cannot connect to 127.0.0.1", "managed identity (system-assigned)",
        "check the network"]


@pytest.mark.parametrize("kind", ["wrong secret", "expired federated token",
                                  "unreachable endpoint"])
def test_a_broken_identity_fails_in_one_line_within_seconds_and_asks_nobody(
        machine: Machine, azure: FakeAzure, contoso: Contoso, tmp_path: Path,
        kind: str) -> None:
    extra, expected = failing(kind, azure, contoso, tmp_path / "platform")
    started = time.monotonic()
    done = machine.git("ls-remote", REPO_URL, extra=extra, check=False)
    assert time.monotonic() - started < 10
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, *expected)
    assert azure.authorize_count == azure.devicecode_count == 0 and azure.pats == []
    assert [r for r in azure.requests_for("git") if r.credential] == []


def test_a_token_the_organization_refuses_is_neither_kept_nor_revoked(
        machine: Machine, azure: FakeAzure, contoso: Contoso, tmp_path: Path) -> None:
    """A service principal of another tenant gets a token, which Azure DevOps refuses: git
    sends `erase`, which must not reach for the PAT API or keep anything."""
    elsewhere = azure.add_tenant()
    app = azure.add_service_principal(elsewhere, secret="s")
    extra = {"GIT_CREDENTIAL_PAT_IDENTITY": "service-principal", "AZURE_TENANT_ID": elsewhere,
             "AZURE_CLIENT_ID": app.client_id, "AZURE_CLIENT_SECRET": "s"}
    done = machine.git("ls-remote", REPO_URL, extra=extra, check=False)
    assert done.returncode != 0
    refused = [r for r in azure.requests_for("git") if r.credential == "entra"]
    assert refused and {r.status for r in refused} == {401}
    assert [r for r in azure.requests if r.step.startswith("pat_")] == []
    assert stored_item(machine.env)["credentials"] == []
    assert cached(machine.env, REPO_URL) == {}


def test_the_pipeline_token_still_comes_first(machine: Machine, azure: FakeAzure,
                                              contoso: Contoso, tmp_path: Path) -> None:
    extra, _ = identity_env("service principal with a secret", azure, contoso,
                            tmp_path / "platform")
    pipeline = {"SYSTEM_ACCESSTOKEN": azure.issue_access_token(ALICE),
                "SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/"}
    machine.git("ls-remote", REPO_URL, extra={**extra, **pipeline})
    assert azure.grants["client_credentials"] == 0
    assert {r.user for r in azure.requests_for("git") if r.credential} == {ALICE}


def test_a_machine_without_a_keyring_never_needs_one(machine: Machine, azure: FakeAzure,
                                                     contoso: Contoso, tmp_path: Path) -> None:
    """CI runners and containers have no Secret Service: an identity's get, store and erase
    (a refused token) must not ask for it."""
    keyring = use_failing_keyring(machine.env)
    set_rules(keyring, "* * unavailable")
    extra, _ = identity_env("managed identity on a VM", azure, contoso, tmp_path / "platform")
    done = machine.git("ls-remote", REPO_URL, extra=extra)
    assert done.stderr == b""
    elsewhere = azure.add_tenant()
    stranger = azure.add_service_principal(elsewhere, secret="s")
    refused = machine.git("ls-remote", REPO_URL, check=False, extra={
        "GIT_CREDENTIAL_PAT_IDENTITY": "service-principal", "AZURE_TENANT_ID": elsewhere,
        "AZURE_CLIENT_ID": stranger.client_id, "AZURE_CLIENT_SECRET": "s"})
    assert refused.returncode != 0 and b"git-credential-pat:" not in refused.stderr
    assert not (keyring / "log").exists()


# -- the commands people run ---------------------------------------------------------------


def command(machine: Machine, *args: str, extra: dict[str, str]
            ) -> subprocess.CompletedProcess[bytes]:
    return machine.env.run("git-credential-pat", *args, extra_env=extra, check=False)


def test_status_names_the_identity_without_the_network(
        machine: Machine, azure: FakeAzure, contoso: Contoso, tmp_path: Path) -> None:
    extra, client_id = identity_env("service principal with a secret", azure, contoso,
                                    tmp_path / "platform")
    done = command(machine, "status", extra=extra)
    assert done.returncode == 0, done.stderr
    described = (f"service principal {client_id} in tenant {contoso.tenant}, with the client "
                 "secret in AZURE_CLIENT_SECRET")
    assert f"all organizations: {described}" in done.stdout.decode()
    report = json.loads(command(machine, "status", "--json", extra=extra).stdout)
    assert report["identities"] == [{
        "url": "https://dev.azure.com", "organization": None, "identity": "service-principal",
        "description": described}]
    assert azure.requests == []


def test_doctor_gets_a_token_and_says_what_to_fix_when_it_cannot(
        machine: Machine, azure: FakeAzure, contoso: Contoso, tmp_path: Path) -> None:
    """On a CI machine with no keyring: the store is a warning, not a failure, for an
    identity that does not need it."""
    set_rules(use_failing_keyring(machine.env), "* * unavailable")
    extra, client_id = identity_env("service principal with a secret", azure, contoso,
                                    tmp_path / "platform")
    healthy = command(machine, "doctor", "--json", extra=extra)
    checks = {c["name"]: c for c in json.loads(healthy.stdout)["checks"]}
    assert healthy.returncode == 0, checks
    assert checks["store"]["level"] == "warn"
    assert checks["identity all organizations"]["level"] == "ok"
    assert "Entra gave it a token for Azure DevOps" in checks[
        "identity all organizations"]["detail"]

    broken = command(machine, "doctor", extra={**extra, "AZURE_CLIENT_SECRET": "wrong"})
    assert broken.returncode == 1
    text = broken.stdout.decode()
    assert (f"identity all organizations  service principal {client_id} in tenant "
            f"{contoso.tenant}: the client secret is wrong (AADSTS7000215)") in text
    assert "fix: put the secret's value (not its ID) in AZURE_CLIENT_SECRET" in text


def test_login_checks_the_identity_and_mints_nothing(
        machine: Machine, azure: FakeAzure, contoso: Contoso, tmp_path: Path) -> None:
    helped = command(machine, "login", "--help", extra={}).stdout.decode()
    assert "credential.patIdentity" in helped and "workload-identity" in helped
    extra, client_id = identity_env("managed identity on a VM", azure, contoso,
                                    tmp_path / "platform")
    done = command(machine, "login", "https://dev.azure.com/contoso", extra=extra)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith(
        "Set up for contoso: git gets Entra access tokens for Azure DevOps as the managed "
        f"identity (client ID {client_id}), with the instance metadata service at 127.0.0.1 "
        "(this one until ")
    assert azure.pats == [] and stored_item(machine.env)["credentials"] == []
    assert azure.authorize_count == 0


def test_with_an_identity_store_and_erase_keep_and_revoke_nothing(
        machine: Machine, azure: FakeAzure, contoso: Contoso) -> None:
    """Whatever git hands back (even a PAT another helper answered with) is not kept for an
    organization a machine identity answers for, and erase revokes nothing."""
    keyring = use_failing_keyring(machine.env)
    set_rules(keyring, "* * unavailable")
    pat = azure.issue_pat("contoso", ALICE)
    request = (f"protocol=https\nhost=dev.azure.com\npath=contoso/proj/_git/repo\n"
               f"username=me\npassword={pat.token}\n\n")
    identity = {"GIT_CREDENTIAL_PAT_IDENTITY": "managed-identity"}
    for action in ("store", "erase"):
        done = machine.env.helper(action, request, extra_env=identity)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b""), action
    assert not (keyring / "log").exists()
    assert azure.live_pats() != [] and azure.requests == []
