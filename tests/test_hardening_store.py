"""Hardening of what the helper keeps: a stored item that is corrupt or of the wrong shape.

Someone (another tool, a person with `secret-tool`, a half-written item) can leave text in the
organization's item that the helper never wrote. It must count as empty, be reported in one
line, and be replaced by the next store, never break every `get` or loop on a chunk count.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from git_credential_pat.core import entries, policy
from git_credential_pat.core.protocol import Message
from git_credential_pat.core.settings import resolve
from git_credential_pat.edges import secretservice
from tests.azurefixtures import REPO_URL, configured
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv
from tests.hardening import (
    ORG_KEY,
    SIGNIN_NOTICE,
    assert_no_orphan_pats,
    assert_one_clean_line,
    helper_lines,
    stored_item,
)
from tests.netfixtures import Contoso
from tests.privatekeyring import PrivateKeyring

GOOD_ENTRY = {"username": "alice@contoso.com", "password": "p" * 52,
              "password_expiry_utc": 2_000_000_000}
CORRUPT = {
    "a chunk count of a billion": "chunked:1000000000",
    "a chunk count that is no number": "chunked:abc",
    "a credential that is a number": '{"credentials":[1]}',
    "an organization part that is a list": '{"credentials":[],"org":[]}',
    "an expiry that is no number": json.dumps(
        {"credentials": [{**GOOD_ENTRY, "password_expiry_utc": "soon"}]}),
    "a user name that is a number": json.dumps({"credentials": [{**GOOD_ENTRY, "username": 7}]}),
    "a null password": json.dumps({"credentials": [{**GOOD_ENTRY, "password": None}]}),
    "not JSON": "{credentials",
}


def plant(key: str, value: str) -> None:
    """Write the helper's own item (its attributes as `keyring` writes them, so the helper's
    next write replaces it) with `value`, not through the helper."""
    subprocess.run(["secret-tool", "store", "--label=planted", "service", "git-credential-pat",
                    "username", key, "application", "Python keyring library"],
                   input=value.encode(), check=True, timeout=20)


@pytest.mark.parametrize("value", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_item_counts_as_empty_is_reported_once_and_replaced(
        kenv: GitEnv, azure: FakeAzure, contoso: Contoso, value: str) -> None:
    env = configured(kenv, azure)
    plant(ORG_KEY, value)
    started = time.monotonic()
    done = env.git("ls-remote", REPO_URL, check=False, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr and b"internal error" not in done.stderr
    [line] = helper_lines(done.stderr)
    assert line.decode().isprintable()
    assert line.startswith(b"git-credential-pat: the stored item https://dev.azure.com/contoso "
                           b"is unreadable (")
    assert line.endswith(b"it counts as empty and is replaced on the next store")
    [stored] = stored_item(env)["credentials"]
    assert [p.token for p in azure.live_pats()] == [stored["password"]]
    again = env.git("ls-remote", REPO_URL, check=False, timeout=60)
    assert again.returncode == 0 and helper_lines(again.stderr) == []
    assert SIGNIN_NOTICE not in again.stderr
    assert azure.minted_count() == 1
    assert_no_orphan_pats(azure, env)


def test_a_corrupt_item_of_another_host_is_replaced_by_what_git_stores(kenv: GitEnv) -> None:
    kenv.config("credential.https://git.example.com.helper", "pat")
    plant("https://git.example.com", '{"credentials":[{"password":["x"]}]}')
    request = b"protocol=https\nhost=git.example.com\n\n"
    done = kenv.helper("get", request)
    assert done.returncode == 0 and done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        "git-credential-pat: the stored item https://git.example.com is unreadable (a credential "
        "without a password); it counts as empty and is replaced on the next store"]
    kenv.git("credential", "approve",
             input=b"protocol=https\nhost=git.example.com\nusername=u\npassword=pw-1234\n\n")
    done = kenv.helper("get", request)
    assert done.stderr == b"" and b"password=pw-1234\n" in done.stdout


# Properties: whatever a stored item holds, reading it never raises and never yields a shape
# that breaks the decisions made from it.

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.floats(),
                    st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)
FIELDS = ("username", "password", "path", "password_expiry_utc", "oauth_refresh_token",
          "authtype", "credential", "pat")
entry_shapes = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={name: json_values for name in FIELDS}),
    st.fixed_dictionaries({"password": st.text(max_size=8)}, optional={
        "username": st.one_of(st.text(max_size=8), json_values),
        "password_expiry_utc": st.one_of(st.integers(0, 2**40), json_values),
        "pat": st.one_of(json_values, st.fixed_dictionaries({}, optional={
            "minted": json_values, "id": json_values, "valid_from": json_values}))}),
)
item_shapes = st.one_of(
    json_values,
    st.fixed_dictionaries({"credentials": st.one_of(json_values, st.lists(entry_shapes,
                                                                          max_size=3))},
                          optional={"org": st.one_of(json_values, st.fixed_dictionaries(
                              {}, optional={"tenant": json_values, "account": json_values,
                                            "sweep_due": json_values}))}),
)
SETTINGS = resolve({}, {})


@settings(max_examples=400, deadline=None)
@given(item_shapes)
def test_any_stored_shape_reads_as_an_item_the_decisions_can_use(shape: object) -> None:
    text = json.dumps(shape)
    reports: list[str] = []
    item = entries.load(text, reports.append)
    assert len(reports) <= 1
    if reports:
        assert item == entries.empty() and reports[0].isprintable()
    request = Message(attrs={"protocol": "https", "host": "dev.azure.com", "path": "contoso/x",
                             "username": "alice"})
    found = entries.find(item, request, 1_800_000_000)
    if found:
        entries.answer(found, request)
    policy.servable(item, "alice", SETTINGS, 1_800_000_000)
    policy.sweep_owed(item, 1_800_000_000)
    entries.stored_ids(item)
    entries.put(item, entries.entry_from(request))
    entries.dump(item)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_stored_text_reads_as_an_item(text: str) -> None:
    reports: list[str] = []
    item = entries.load(text, reports.append)
    assert isinstance(item["credentials"], list) and len(reports) <= 1


# A Secret Service that is running but never answers (its daemon stopped with SIGSTOP).

STORE_TIMEOUT = 3
WEDGED_BOUND = secretservice.TIMEOUT + STORE_TIMEOUT + 5  # the direct reader, keyring, start-up
PLAIN = b"protocol=https\nhost=git.example.com\n"


@pytest.fixture
def wedged(tmp_path: Path, genv: GitEnv) -> Iterator[GitEnv]:
    """The helper on a Secret Service of the test's own holding one credential, whose daemon is
    then stopped; it is continued before it is taken down."""
    with PrivateKeyring(tmp_path / "keyring") as keyring:
        env = genv.with_keyring()
        env.env.update(keyring.env, GIT_CREDENTIAL_PAT_STORE_TIMEOUT=str(STORE_TIMEOUT))
        stored = env.helper("store", PLAIN + b"username=u\npassword=pw-1234\n\n")
        assert stored.returncode == 0 and b"password=pw-1234" in env.helper(
            "get", PLAIN + b"\n").stdout
        keyring.freeze()
        try:
            yield env
        finally:
            keyring.thaw()


@pytest.mark.parametrize("action", ["get", "store"])
def test_a_keyring_that_never_answers_fails_in_one_line_within_the_bound(
        wedged: GitEnv, action: str) -> None:
    extra = b"username=u\npassword=pw-5678\n" if action == "store" else b""
    started = time.monotonic()
    done = wedged.helper(action, PLAIN + extra + b"\n", timeout=60)
    took = time.monotonic() - started
    assert took < WEDGED_BOUND, took
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        f"git-credential-pat: the keyring did not answer within {STORE_TIMEOUT} s (is its daemon "
        "stopped or hung, or an unlock prompt waiting?); restart it, or set "
        "credential.patStoreTimeout to wait longer, or opt into "
        "git config --global credential.patStore file"]


def test_git_is_not_hung_by_a_keyring_that_never_answers(
        wedged: GitEnv, azure: FakeAzure, contoso: Contoso) -> None:
    configured(wedged, azure)
    started = time.monotonic()
    done = wedged.git("ls-remote", REPO_URL, check=False, timeout=60)
    assert time.monotonic() - started < WEDGED_BOUND
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, f"the keyring did not answer within {STORE_TIMEOUT} s")
