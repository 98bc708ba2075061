"""Hardening of secrets: where PATs, access tokens, refresh tokens and passwords may and may not go.

One test runs every flow and every user command with tracing fully on, then looks for each
secret the fake ever issued (its ledger) everywhere a person, a log collector or `ps` could see
it. Others check that a PAT is only ever sent to the organization and host it was minted for,
over HTTPS: a loopback proxy that challenges every request records what git would have sent to
a lookalike host, a plain-HTTP remote or another organization.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from git_credential_pat.edges import lock
from tests.authsink import AuthSink
from tests.azurefixtures import REPO_URL, at_fake_time, configured
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv, parse_answer
from tests.hardening import stored_passwords
from tests.netfixtures import ALICE, Contoso

ORG_URL = "https://dev.azure.com/contoso"
PLAIN_URL = "https://git.example.com/team/repo.git"
PLAIN_PASSWORD = "plain-host-password-7f3c9a"
# Each command people run, as they would run it; a command added later still runs (with no
# arguments, or the organization when its help names ORG_URL) so that its output is checked.
COMMAND_ARGS: dict[str, list[list[str]]] = {
    "login": [[ORG_URL]],
    "status": [[], ["--json"]],
    "list": [[ORG_URL], ["--all", "--json", ORG_URL]],
    "rotate": [[ORG_URL]],
    "revoke": [[ORG_URL]],
    "doctor": [[], ["--json"]],
    "settings": [[], ["--markdown"]],
    "help": [[], ["settings"]],
    "configure": [[]],
}
LAST = ("migrate", "logout", "unconfigure")  # run at the end, in this order
BASIC_HEADER = re.compile(rb"(?i)basic\s+[a-z0-9+/]{16,}={0,2}")


@dataclass
class Observed:
    """Everything the flows showed: outputs, and what child processes were given."""

    outputs: list[tuple[str, bytes, bytes, bool]] = field(default_factory=list)

    def add(self, label: str, done: subprocess.CompletedProcess[bytes],
            answer_on_stdout: bool = False) -> subprocess.CompletedProcess[bytes]:
        self.outputs.append((label, done.stdout, done.stderr, answer_on_stdout))
        print(f"{done.returncode:3} {label}: {done.stderr.decode(errors='replace')[:300]!r}")
        return done


def recorder(path: Path, log: Path, real: str) -> None:
    """A program that appends its argv, its parent's command line and its environment to `log`,
    then runs `real` with the same arguments."""
    path.write_text(
        "#!/bin/sh\n"
        f"{{ echo '=== argv'; printf '%s\\n' \"$@\"; echo '=== parent';"
        " tr '\\000' ' ' < /proc/$PPID/cmdline; echo; echo '=== env'; env; }"
        f" >> '{log}'\n"
        f'exec {real} "$@"\n')
    path.chmod(0o755)


@pytest.fixture
def traced(kenv: GitEnv, azure: FakeAzure, contoso: Contoso, tmp_path: Path
           ) -> Iterator[tuple[GitEnv, Path, Path]]:
    """The keyring-backed machine, tracing to a file outside HOME, with git and the browser
    replaced on PATH by recorders of their argv and environment."""
    env = configured(kenv, azure)
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    children = tmp_path / "children.log"
    real_git = shutil.which("git", path=env.env["PATH"])
    assert real_git
    recorder(wrappers / "git", children, real_git)
    recorder(wrappers / "browser", children, env.env["BROWSER"].removesuffix(" %s"))
    env.env.update(PATH=f"{wrappers}{os.pathsep}{env.env['PATH']}",
                   BROWSER=f"{wrappers / 'browser'} %s",
                   GIT_CREDENTIAL_PAT_TRACE=str(tmp_path / "trace.log"))
    yield env, tmp_path / "trace.log", children


def commands_in_help(env: GitEnv) -> dict[str, bool]:
    """The commands `git credential-pat --help` lists, and whether each takes ORG_URL."""
    text = env.run("git-credential-pat", "--help").stdout.decode()
    names = re.findall(r"^    ([a-z][a-z-]+)", text, re.MULTILINE)
    return {name: "ORG_URL" in env.run("git-credential-pat", name, "--help",
                                         check=False).stdout.decode() for name in names}


def all_secrets(azure: FakeAzure) -> set[str]:
    with azure.state.lock:
        tokens = set(azure.state.access_tokens) | set(azure.state.refresh_tokens)
    return tokens | {p.token for p in azure.pats} | {PLAIN_PASSWORD}


def find_secrets(data: bytes, secrets: set[str]) -> list[str]:
    return [s[:8] + "..." for s in secrets if s.encode() in data]


def test_no_secret_shows_anywhere_in_any_flow_or_command(
        traced: tuple[GitEnv, Path, Path], azure: FakeAzure, tmp_path: Path) -> None:
    env, trace_file, children = traced
    seen = Observed()

    def git(*args: str, extra: dict[str, str] | None = None, stdin: str = "",
            answer: bool = False) -> subprocess.CompletedProcess[bytes]:
        return seen.add(f"git {' '.join(args)}", env.git(
            *args, input=stdin, check=False, extra_env=extra), answer)

    def command(*args: str, extra: dict[str, str] | None = None, known: bool = True
                ) -> subprocess.CompletedProcess[bytes]:
        done = seen.add(f"credential-pat {' '.join(args)}", env.run(
            "git-credential-pat", *args, check=False, extra_env=extra, timeout=120))
        assert done.returncode == 0 or not known, f"{args} failed: {done.stderr!r}"
        return done

    # git's own flows: mint, hit, fill, and a plain host's store, get and erase.
    env.config("credential.https://git.example.com.helper", "pat")
    assert git("ls-remote", REPO_URL).returncode == 0
    assert git("ls-remote", REPO_URL).returncode == 0
    assert git("credential", "fill", stdin=f"url={REPO_URL}\n\n", answer=True).returncode == 0
    plain = f"url={PLAIN_URL}\nusername=me\npassword={PLAIN_PASSWORD}\n\n"
    git("credential", "approve", stdin=plain)
    filled = git("credential", "fill", stdin=f"url={PLAIN_URL}\n\n", answer=True)
    assert parse_answer(filled.stdout)["password"] == PLAIN_PASSWORD
    git("credential", "reject", stdin=plain)

    # The commands, as far as they exist.
    commands = commands_in_help(env)
    for name, takes_org in commands.items():
        if name not in LAST:
            for args in COMMAND_ARGS.get(name, [[ORG_URL] if takes_org else []]):
                command(name, *args, known=name in COMMAND_ARGS)
    assert git("ls-remote", REPO_URL).returncode == 0

    # A PAT git saw refused: erase, and revoke; then a fresh one.
    [live] = azure.live_pats()
    azure.revoke_pat(live.authorization_id)
    assert git("ls-remote", REPO_URL).returncode != 0
    assert git("ls-remote", REPO_URL).returncode == 0

    # Rotation, later: git's cache answers the first fetch and the helper takes the PAT out of
    # it; the next fetch rotates.
    azure.advance(days=25)
    later = at_fake_time(azure)
    minted = azure.minted_count()
    assert git("ls-remote", REPO_URL, extra=later).returncode == 0
    assert git("ls-remote", REPO_URL, extra=later).returncode == 0
    assert azure.minted_count() == minted + 1

    # An organization that forbids PATs: git gets the Entra access token.
    azure.policy("contoso", disable_creation=True)
    command("logout", ORG_URL, extra=later)
    assert git("ls-remote", REPO_URL, extra=later).returncode == 0
    assert any(r.credential == "entra" and r.status == 200 for r in azure.requests_for("git"))
    azure.policy("contoso")

    # A PAT written into a remote URL, moved into the store.
    if "migrate" in commands:
        handmade = azure.issue_pat("contoso", ALICE)
        repo = env.home / "old-clone"
        env.git("init", "-q", str(repo))
        with open(repo / ".git" / "config", "a") as config:  # not on a command line
            config.write(f'[remote "origin"]\n\turl = https://alice:{handmade.token}'
                         f"@dev.azure.com/contoso/proj/_git/repo\n")
        command("migrate", str(repo), extra=later)
        assert handmade.token not in (repo / ".git" / "config").read_text()
    command("logout", "--all", extra=later)
    command("unconfigure", extra=later)
    assert set(LAST) <= set(commands)

    secrets = all_secrets(azure)
    assert len(secrets) > 8  # PATs, access and refresh tokens, the password
    for label, out, err, answer in seen.outputs:
        assert not find_secrets(err, secrets), f"stderr of {label}"
        assert answer or not find_secrets(out, secrets), f"stdout of {label}"
        assert not BASIC_HEADER.search(out + err), label
    trace = trace_file.read_bytes()
    assert b"pats" in trace and b"token" in trace  # the trace did follow the flows
    assert not find_secrets(trace, secrets) and not BASIC_HEADER.search(trace)
    for path in [*env.home.rglob("*"), *Path(lock.lock_dir()).rglob("*")]:
        if path.is_file() and not path.is_symlink():
            assert not find_secrets(path.read_bytes(), secrets), path
    recorded = children.read_bytes()
    assert recorded.count(b"=== argv") > 10 and b"credential-pat" in recorded
    assert b"/browser.py" not in recorded or b"login.microsoftonline.com" in recorded
    assert not find_secrets(recorded, secrets), "in a child process's argv or environment"


def test_the_opt_in_file_store_is_the_only_file_with_secrets_and_is_private(
        hardened: GitEnv, azure: FakeAzure) -> None:
    assert hardened.git("ls-remote", REPO_URL, check=False).returncode == 0
    secrets = all_secrets(azure)
    store = hardened.store_file
    assert find_secrets(store.read_bytes(), secrets)  # the PAT and the sign-in cache
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) & 0o077 == 0
    for path in hardened.home.rglob("*"):
        if path.is_file() and path != store:
            assert not find_secrets(path.read_bytes(), secrets), path


# -- a PAT goes only where it was minted for -------------------------------------------------------

@pytest.fixture
def sink(azure: FakeAzure) -> Iterator[AuthSink]:
    assert azure.certs is not None
    made = AuthSink(azure.certs.cert, azure.certs.key)
    yield made
    made.close()


ELSEWHERE = [
    "http://dev.azure.com/contoso/proj/_git/repo",
    "https://dev.azure.com.evil.test/contoso/proj/_git/repo",
    "https://dev.azure.com:8443/contoso/proj/_git/repo",
    "https://evil.test/contoso/proj/_git/repo",
    "https://dev.azure.com@evil.test/contoso/proj/_git/repo",
    "https://contoso@evil.test/dev.azure.com/contoso/proj/_git/repo",
    "https://contoso.visualstudio.com.evil.test/proj/_git/repo",
    "https://xn--dev-azure-9db.com/contoso/proj/_git/repo",
    "http://git.example.com/team/repo.git",
    "https://git.example.com.evil.test/team/repo.git",
]


def test_no_pat_or_password_goes_to_a_lookalike_a_plain_http_remote_or_another_host(
        hardened: GitEnv, azure: FakeAzure, sink: AuthSink) -> None:
    """With the helper asked for every host (credential.helper=pat), git meets a server on each
    of these that demands credentials: none may receive the PAT or the plain host's password.
    The plain host itself is the control: it does receive its own password."""
    assert hardened.git("ls-remote", REPO_URL, check=False).returncode == 0
    hardened.config("credential.helper", "pat")
    hardened.git("credential", "approve",
                 input=f"url={PLAIN_URL}\nusername=me\npassword={PLAIN_PASSWORD}\n\n")
    fake_requests, minted = len(azure.requests), azure.minted_count()
    via_sink = ["-c", f"http.proxy={sink.url}", "-c", "http.sslVerify=false"]
    for url in ELSEWHERE:
        done = hardened.git(*via_sink, "ls-remote", url, check=False)
        assert done.returncode != 0, url
    hosts = {host.partition(":")[0] for host, _ in sink.received}
    assert {"dev.azure.com", "dev.azure.com.evil.test", "evil.test",
            "git.example.com"} <= hosts  # every remote was reached and challenged
    secrets = all_secrets(azure)
    assert [p for p in sink.passwords() if p in secrets] == []
    assert len(azure.requests) == fake_requests and azure.minted_count() == minted
    hardened.git(*via_sink, "ls-remote", PLAIN_URL, check=False)
    assert PLAIN_PASSWORD in sink.passwords()


def test_a_pat_is_only_presented_to_its_own_organization(
        hardened: GitEnv, azure: FakeAzure, contoso: Contoso) -> None:
    azure.add_org("fabrikam", contoso.tenant)
    azure.add_repo("fabrikam", "proj", "repo")
    for url in (REPO_URL, "https://dev.azure.com/fabrikam/proj/_git/repo",
                "https://fabrikam.visualstudio.com/proj/_git/repo",
                "https://contoso.visualstudio.com/proj/_git/repo"):
        assert hardened.git("ls-remote", url, check=False).returncode == 0, url
    assert sorted(p.org for p in azure.pats) == ["contoso", "fabrikam"]
    with_pat = [r for r in azure.requests_for("git") if r.credential == "pat"]
    assert with_pat and all(r.status == 200 for r in with_pat)  # never refused as another's
    assert all(r.auth != "basic" or r.credential is not None for r in azure.requests_for("git"))
    fabrikam = [p.token for p in azure.pats if p.org == "fabrikam"]
    item = stored_passwords(hardened, "https://dev.azure.com/fabrikam")
    assert item == fabrikam
