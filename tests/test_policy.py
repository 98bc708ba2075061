"""The helper's decisions, case by case, as plain functions of the stored item and the clock.

The end-to-end tests show each decision through git against the local Azure; these tables
pin the boundaries: when a PAT counts as expired, when it is rotated, when revoking is owed,
which refusals fall back to the access token, and how a capped lifespan is shortened.
"""

from __future__ import annotations

import pytest

from git_credential_pat.core import entries, policy
from git_credential_pat.core.constants import DAY
from git_credential_pat.core.remote import Org
from git_credential_pat.core.settings import Settings

NOW = 1_800_000_000
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def minted(username: str = ALICE, lifespan_days: float = 30, left_days: float = 20) -> dict:
    expiry = NOW + int(left_days * DAY)
    return {"username": username, "password": f"pat-of-{username}",
            "password_expiry_utc": expiry,
            "pat": {"minted": True, "id": f"id-{username}", "scope": "vso.code_write",
                    "valid_from": expiry - int(lifespan_days * DAY)}}


def item(*credentials: dict, **org: object) -> dict:
    return {"v": 1, "credentials": list(credentials), "org": dict(org)}


@pytest.mark.parametrize(("left", "expired"), [(-1, True), (0, True), (1, False)])
def test_a_credential_is_expired_from_its_expiry_second_on(left: int, expired: bool) -> None:
    assert entries.expired({"password_expiry_utc": NOW + left}, NOW) is expired


@pytest.mark.parametrize(("lifespan", "left", "rotate_days", "due"), [
    (30, 20, 7, False),
    (30, 7.01, 7, False),  # just outside the 7-day window
    (30, 6.99, 7, True),
    (30, 0.5, 7, True),
    (90, 29, 30, True),
    (8, 4.5, 7, False),  # capped at half of an 8-day lifespan: the window is 4 days
    (8, 3.9, 7, True),
    (1, 0.6, 7, False),  # a 1-day cap: rotate in the last 12 hours, not on every fetch
    (1, 0.4, 7, True),
])
def test_rotation_comes_within_the_window_never_over_half_the_lifespan(
        lifespan: float, left: float, rotate_days: int, due: bool) -> None:
    entry = minted(lifespan_days=lifespan, left_days=left)
    assert policy.rotation_due(entry, Settings(rotate_days=rotate_days), NOW) is due


def test_a_pat_typed_in_or_without_expiry_is_never_rotated() -> None:
    typed = {"username": "pat", "password": "typed", "password_expiry_utc": NOW + 3600}
    assert not policy.rotation_due(typed, Settings(), NOW)
    unknown = {k: v for k, v in minted().items() if k != "password_expiry_utc"}
    assert not policy.rotation_due(unknown, Settings(), NOW)


@pytest.mark.parametrize(("account", "usual", "served"), [
    ("", "", ALICE),  # the first usable one
    (BOB, "", BOB),
    ("BOB@Contoso.com", "", BOB),  # UPNs compare without case
    ("", BOB, BOB),  # the organization's usual account
    ("carol@contoso.com", "", None),  # never another account's PAT
])
def test_which_credential_serves_an_account(account: str, usual: str, served: str | None) -> None:
    stored = item(minted(ALICE), minted(BOB), account=usual)
    entry = policy.pick(stored, account, NOW)
    assert (entry or {}).get("username") == served


def test_an_expired_pat_serves_nobody() -> None:
    assert policy.pick(item(minted(left_days=-1)), ALICE, NOW) is None


@pytest.mark.parametrize(("mode", "left", "answers"), [
    ("auto", 20, True), ("pat", 20, True),
    ("oauth", 20, False),  # oauth never answers with a PAT
    ("auto", 2, False),  # due for rotation: mint first
])
def test_servable_is_what_get_answers_with_as_it_is(mode: str, left: float,
                                                    answers: bool) -> None:
    stored = item(minted(left_days=left))
    assert (policy.servable(stored, ALICE, Settings(mode=mode), NOW) is not None) is answers


@pytest.mark.parametrize(("org", "owed"), [
    ({}, False), ({"sweep_due": NOW}, True), ({"sweep_due": NOW - 1}, True),
    ({"sweep_due": NOW + 1}, False),  # retried later
])
def test_a_sweep_is_owed_once_its_time_has_come(org: dict, owed: bool) -> None:
    assert policy.sweep_owed(item(minted(), **org), NOW) is owed


@pytest.mark.parametrize(("mode", "code", "status", "falls_back"), [
    ("auto", "disablePatCreationPolicyViolation", 200, True),
    ("auto", "globalPATCreationBlocked", 200, True),
    ("auto", "accessDenied", 200, True),
    ("auto", "", 403, True),
    ("auto", "", 401, False),  # the token itself was refused: git must never get it
    ("auto", "patLifespanPolicyViolation", 200, False),  # retried shorter instead
    ("auto", "fullScopePatPolicyViolation", 200, False),  # the scope is the user's to change
    ("auto", "invalidScope", 400, False),
    ("pat", "disablePatCreationPolicyViolation", 200, False),  # PATs only
])
def test_which_refusals_answer_with_the_access_token(mode: str, code: str, status: int,
                                                     falls_back: bool) -> None:
    assert policy.falls_back(mode, code, status) is falls_back


@pytest.mark.parametrize(("days", "next_days"), [(30, 15), (15, 7), (3, 1), (2, 1), (1, 0)])
def test_a_refused_lifespan_is_halved_down_to_a_day(days: int, next_days: int) -> None:
    assert policy.shorter_lifespan(days) == next_days


@pytest.mark.parametrize(("environ", "answer"), [
    ({"SYSTEM_ACCESSTOKEN": "tok", "SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/"},
     [("username", "build"), ("password", "tok")]),
    ({"SYSTEM_ACCESSTOKEN": "tok", "SYSTEM_COLLECTIONURI": "https://contoso.visualstudio.com/"},
     [("username", "build"), ("password", "tok")]),
    ({"SYSTEM_ACCESSTOKEN": "tok", "SYSTEM_COLLECTIONURI": "https://dev.azure.com/fabrikam/"},
     []),  # another organization's pipeline token never leaves for contoso
    ({"AZURE_DEVOPS_EXT_PAT": "ext"}, [("username", "pat"), ("password", "ext")]),
    ({}, []),
])
def test_tokens_a_ci_system_provides(environ: dict, answer: list) -> None:
    assert policy.provided_token(Org("contoso"), environ) == answer


def test_the_display_name_tells_machines_and_installations_apart() -> None:
    name = policy.display_name(Org("contoso"), "build-01", "/home/alice", "OS keyring (x)")
    assert name.startswith("git-credential-pat: contoso on build-01 (")
    assert name != policy.display_name(Org("contoso"), "build-01", "/home/bob", "OS keyring (x)")
    assert name == policy.display_name(Org("contoso"), "build-01", "/home/alice",
                                       "OS keyring (x)")


def test_a_sweep_may_revoke_only_older_unstored_pats_and_only_with_the_kept_one_listed() -> None:
    listed = {"old": 1.0, "stored": 2.0, "kept": 3.0, "same": 3.0, "newer": 4.0}
    assert policy.sweepable(listed, {"stored", "kept"}, "kept") == {"old"}
    assert policy.sweepable({"old": 1.0}, set(), "kept") == set()


@pytest.mark.parametrize(("scope", "reads_only"), [
    ("vso.code", True), ("vso.code vso.packaging", True), ("vso.code_write", False),
    ("vso.code vso.code_full", False), ("app_token", False), ("", False),
    ("vso.packaging", False)])  # cannot fetch either: refused for that, not for a push
def test_a_pat_that_may_only_read_is_told_by_its_scope(scope: str, reads_only: bool) -> None:
    entry = minted()
    entry["pat"]["scope"] = scope
    assert policy.reads_only(entry) is reads_only
