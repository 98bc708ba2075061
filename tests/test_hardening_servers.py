"""Hardening against servers that answer, but never finish: a body dripped a byte at a time
(every read gets its byte in time), and a PAT list whose continuation tokens never end.
Each must end within the helper's stated bounds, in one line, leaving no orphan PAT.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from git_credential_pat.edges.patapi import MAX_PAGES
from tests.azurefixtures import REPO_URL
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv
from tests.hardening import (
    assert_no_orphan_pats,
    assert_one_clean_line,
    stored_passwords,
    wait_until,
)

TIMEOUT = 3  # patTimeout for these tests


@pytest.mark.parametrize("step", ["token", "pat_create"])
def test_a_dripped_body_ends_at_the_timeout(hardened: GitEnv, azure: FakeAzure,
                                            step: str) -> None:
    hardened.env["GIT_CREDENTIAL_PAT_TIMEOUT"] = str(TIMEOUT)
    azure.drip(step, 0.15)
    started = time.monotonic()
    done = hardened.git("ls-remote", REPO_URL, check=False, timeout=120)
    took = time.monotonic() - started
    assert took < TIMEOUT + 8, took  # the other steps and git's own start take the rest
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, "did not answer in time while")
    if step == "pat_create":
        # The server created the PAT whose answer never arrived: live and nobody holds it,
        # until the helper's next mint finds it by its name.
        wait_until(lambda: azure.minted_count() == 1, 10, "the dripped PAT")
    assert hardened.git("ls-remote", REPO_URL, check=False).returncode == 0
    [stored] = stored_passwords(hardened)
    assert [p.token for p in azure.live_pats()] == [stored]
    assert_no_orphan_pats(azure, hardened)


def endlessly_listed(hardened: GitEnv, azure: FakeAzure, command: str
                     ) -> tuple[subprocess.CompletedProcess[bytes], int]:
    """`command` for the organization once it has a PAT and its PAT listings never end: how it
    ended (within 30 s), and how many pages it asked for."""
    assert hardened.git("ls-remote", REPO_URL, check=False).returncode == 0
    azure.endless_pat_pages()
    before = len(azure.requests_for("pat_list"))
    started = time.monotonic()
    done = hardened.run("git-credential-pat", command, "https://dev.azure.com/contoso",
                        check=False, timeout=120)
    assert time.monotonic() - started < 30
    return done, len(azure.requests_for("pat_list")) - before


def test_an_endless_pat_list_stops_at_the_page_cap(hardened: GitEnv, azure: FakeAzure) -> None:
    done, pages = endlessly_listed(hardened, azure, "list")
    assert done.returncode == 1
    assert_one_clean_line(done.stderr, f"kept sending more pages of PATs of contoso (over "
                                       f"{MAX_PAGES} pages")
    assert pages == MAX_PAGES


def test_an_endless_pat_list_does_not_stop_a_rotation(hardened: GitEnv, azure: FakeAzure) -> None:
    done, pages = endlessly_listed(hardened, azure, "rotate")
    # Two listings at most, each cut at the cap: its own PATs to replace, then the sweep.
    assert pages <= 2 * MAX_PAGES
    assert b"Traceback" not in done.stderr
    old, new = azure.pats
    assert old.revoked and stored_passwords(hardened) == [new.token]
    assert_no_orphan_pats(azure, hardened)
