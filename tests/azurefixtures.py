"""A person's machine whose git and git-credential-pat reach the fake Azure, for end-to-end tests.

`azure_git` is `genv` (an isolated HOME with the helper on PATH) wired the way a corporate
machine is: git's global config names the proxy (`http.proxy`, the fake's CONNECT proxy) and
the CA (`http.sslCAInfo`, the fake's), which the helper must pick up from git exactly as
`git fetch` does; BROWSER is the fake's browser, which signs in as the tenant's first user
(Alice) unless the test says otherwise. The fake is the session-wide one from
`tests.netfixtures`, emptied for each test and holding Contoso (Alice, Bob, org `contoso`).

tests/conftest.py makes these fixtures available to every test module.

For the OS keyring instead of the file store, also ask for `kenv` (it is the same `genv`).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from git_credential_pat.commands import configure
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv
from tests.netfixtures import ALICE, ORG, Contoso


@dataclass
class AzureGit:
    fake: FakeAzure
    env: GitEnv
    tenant: str
    org: str = ORG
    user: str = ALICE

    @property
    def org_url(self) -> str:
        return f"https://dev.azure.com/{self.org}"

    def command(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        """`git-credential-pat ARGS...` as a person runs it; never raises on its exit status."""
        return self.env.run("git-credential-pat", *args, check=False,
                            **kwargs)  # type: ignore[arg-type]

    def clone_url(self, project: str = "proj", repo: str = "repo") -> str:
        """A repository of the organization, created on first use; its clone URL."""
        self.fake.add_repo(self.org, project, repo)
        return f"{self.org_url}/{project}/_git/{repo}"


REPO_URL = "https://dev.azure.com/contoso/proj/_git/repo"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def wire(env: GitEnv, fake: FakeAzure) -> GitEnv:
    """Point a GitEnv's git and helper at the fake, through git config alone; the browser
    script, which is not git, gets the proxy and CA from its environment."""
    env.config("http.proxy", fake.proxy_url)
    env.config("http.sslCAInfo", str(fake.ca_path))
    env.env.update(fake.browser_env())
    env.env.update(HTTPS_PROXY=fake.proxy_url, SSL_CERT_FILE=str(fake.ca_path))
    env.env.update(GIT_CREDENTIAL_PAT_SIGNIN_TIMEOUT="30", GIT_CREDENTIAL_PAT_TIMEOUT="10")
    return env


def configured(env: GitEnv, fake: FakeAzure, cache: str = configure.CACHE[1]) -> GitEnv:
    """`wire`, plus git configured as install.sh leaves it (or with the cache written another
    way), and contoso's `proj/repo`."""
    fake.add_repo("contoso", "proj", "repo")
    for url in configure.URLS:
        for name, value in (("helper", cache), *configure.ENTRIES):
            env.config("--add", f"credential.{url}.{name}", value)
    return wire(env, fake)


def at_fake_time(fake: FakeAzure) -> dict[str, str]:
    """Run git and the helper on the fake's clock (libfaketime). The monotonic clock moves by
    the same offset: with FAKETIME_DONT_FAKE_MONOTONIC, libfaketime 0.9.10 makes Python's
    `time.sleep` (an absolute monotonic clock_nanosleep) fail with EINVAL, so no retry could
    wait."""
    if not Path(FAKETIME_LIB).exists():
        pytest.skip("needs libfaketime (tests/run installs it)")
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"+{int(fake.offset_seconds)}"}


@pytest.fixture(name="azure_git")
def azure_git_fixture(azure: FakeAzure, contoso: Contoso, genv: GitEnv) -> AzureGit:
    return AzureGit(azure, wire(genv, azure), contoso.tenant)
