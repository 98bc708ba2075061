"""Storage semantics through the real git: `git credential fill|approve|reject` with the helper.

Each case runs twice: against the opt-in file store and against the real Secret Service.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.gitenv import GitEnv, parse_answer

ASKED = {"username": "asked-user", "password": "asked-pass"}


@pytest.fixture(params=["file", "keyring"])
def env(request: pytest.FixtureRequest, genv: GitEnv) -> GitEnv:
    if request.param == "keyring":
        request.getfixturevalue("keyring_clean")
        genv.with_keyring()
    askpass = genv.home / "askpass"
    askpass.write_text(
        '#!/bin/sh\ncase "$1" in Username*) echo asked-user;; *) echo asked-pass;; esac\n')
    askpass.chmod(0o755)
    genv.env["GIT_ASKPASS"] = str(askpass)
    # git's own prompt shows that the helper had nothing; for Azure DevOps, where it would
    # sign in and mint (and here cannot), the helper otherwise tells git to stop.
    genv.env["GIT_CREDENTIAL_PAT_GIT_PROMPT"] = "true"
    genv.config("credential.helper", "pat")
    return genv


def approve(env: GitEnv, url: str, username: str, password: str) -> None:
    env.git("credential", "approve",
            input=f"url={url}\nusername={username}\npassword={password}\n\n")


def reject(env: GitEnv, url: str, username: str, password: str) -> None:
    env.git("credential", "reject",
            input=f"url={url}\nusername={username}\npassword={password}\n\n")


def test_a_stored_credential_comes_back_without_a_prompt(env: GitEnv) -> None:
    approve(env, "https://git.example.com", "alice", "s3cret")
    got = env.fill("https://git.example.com/team/repo.git")
    assert (got["username"], got["password"]) == ("alice", "s3cret")


def test_another_host_or_port_or_protocol_gets_nothing(env: GitEnv) -> None:
    approve(env, "https://git.example.com", "alice", "s3cret")
    for url in ("https://git.example.com:8443/", "https://other.example.com/",
                "http://git.example.com/", "https://git.example.com.evil.org/",
                "https://example.com/"):
        got = env.fill(url)
        assert (got["username"], got["password"]) == (ASKED["username"], ASKED["password"]), url


def test_the_user_name_in_the_url_picks_the_credential(env: GitEnv) -> None:
    approve(env, "https://git.example.com", "alice", "a-pass")
    approve(env, "https://git.example.com", "bob", "b-pass")
    assert env.fill("https://bob@git.example.com/x.git")["password"] == "b-pass"
    assert env.fill("https://alice@git.example.com/x.git")["password"] == "a-pass"
    assert env.fill("https://carol@git.example.com/x.git")["password"] == ASKED["password"]


def test_store_replaces_and_reject_removes_only_the_matching_password(env: GitEnv) -> None:
    approve(env, "https://git.example.com", "alice", "old")
    approve(env, "https://git.example.com", "alice", "new")
    reject(env, "https://git.example.com", "alice", "old")
    assert env.fill("https://git.example.com/")["password"] == "new"
    reject(env, "https://git.example.com", "alice", "new")
    assert env.fill("https://git.example.com/")["password"] == ASKED["password"]


def test_with_use_http_path_each_repository_has_its_own_credential(env: GitEnv) -> None:
    env.config("credential.https://git.example.com.useHttpPath", "true")
    approve(env, "https://git.example.com/team/one.git", "alice", "one")
    assert env.fill("https://git.example.com/team/one.git")["password"] == "one"
    assert env.fill("https://git.example.com/team/two.git")["password"] == ASKED["password"]


def test_the_same_organization_through_either_host_shares_one_credential(env: GitEnv) -> None:
    env.config("credential.https://dev.azure.com.useHttpPath", "true")
    approve(env, "https://dev.azure.com/Contoso/Project/_git/repo", "me", "pat-one")
    for url in ("https://dev.azure.com/contoso/Other/_git/other",
                "https://contoso@dev.azure.com/contoso/Project/_git/repo",
                "https://contoso.visualstudio.com/Project/_git/repo",
                "https://contoso.visualstudio.com/DefaultCollection/Project/_git/repo"):
        got = env.fill(url)
        # A PAT takes any user name: a URL that carries one is answered under it.
        wanted = "contoso" if "contoso@" in url else "me"
        assert (got["username"], got["password"]) == (wanted, "pat-one"), url
    assert env.fill("https://dev.azure.com/fabrikam/P/_git/r")["password"] == ASKED["password"]


def test_without_the_path_the_org_comes_from_the_user_name(env: GitEnv) -> None:
    approve(env, "https://contoso@dev.azure.com/contoso/P/_git/r", "contoso", "pat-one")
    assert env.fill("https://contoso@dev.azure.com/contoso/P/_git/r")["password"] == "pat-one"
    assert env.fill("https://fabrikam@dev.azure.com/fabrikam/P/_git/r")["password"] == "asked-pass"


def test_without_path_or_org_the_helper_says_how_to_fix_it(env: GitEnv) -> None:
    done = env.helper("get", "protocol=https\nhost=dev.azure.com\n\n")
    assert done.stdout == b""
    assert b"useHttpPath true" in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_lookalike_and_plain_http_hosts_are_not_azure_devops(env: GitEnv) -> None:
    env.config("credential.useHttpPath", "true")
    approve(env, "https://dev.azure.com.example.org/contoso/P/_git/r", "x", "lookalike")
    approve(env, "http://dev.azure.com/contoso/P/_git/r", "x", "plain-http")
    assert env.fill("https://dev.azure.com/contoso/P/_git/r")["password"] == ASKED["password"]
    assert env.fill("https://dev.azure.com.example.org/contoso/P/_git/r")["password"] == "lookalike"


def test_empty_user_name_and_password_are_real_values(env: GitEnv) -> None:
    env.helper("store", "protocol=https\nhost=h.example\nusername=\npassword=\n\n")
    done = env.helper("get", "protocol=https\nhost=h.example\n\n")
    assert done.stdout == b"username=\npassword=\n"


def test_expiry_and_refresh_token_are_kept_and_expired_ones_withheld(env: GitEnv) -> None:
    env.helper("store", "protocol=https\nhost=h.example\nusername=u\npassword=p\n"
                        "password_expiry_utc=4102444800\noauth_refresh_token=r\n\n")
    got = parse_answer(env.helper("get", "protocol=https\nhost=h.example\n\n").stdout)
    assert got == {"username": "u", "password": "p", "password_expiry_utc": "4102444800",
                   "oauth_refresh_token": "r"}
    env.helper("store", "protocol=https\nhost=old.example\nusername=u\npassword=p\n"
                        "password_expiry_utc=1000\n\n")
    assert env.helper("get", "protocol=https\nhost=old.example\n\n").stdout == b""


def test_ephemeral_credentials_are_not_stored(env: GitEnv) -> None:
    env.helper("store", "protocol=https\nhost=h.example\nusername=u\npassword=p\nephemeral=1\n\n")
    assert env.helper("get", "protocol=https\nhost=h.example\n\n").stdout == b""


def test_authtype_goes_only_to_a_git_that_asked_for_it(env: GitEnv) -> None:
    env.helper("store", "capability[]=authtype\nprotocol=https\nhost=h.example\n"
                        "authtype=Bearer\ncredential=tok\nusername=u\npassword=p\n\n")
    plain = env.helper("get", "protocol=https\nhost=h.example\n\n").stdout
    assert plain == b"username=u\npassword=p\n"
    capable = env.helper("get", "capability[]=authtype\nprotocol=https\nhost=h.example\n\n").stdout
    assert capable.startswith(b"capability[]=authtype\nauthtype=Bearer\ncredential=tok\n")


def test_an_unknown_action_is_ignored(env: GitEnv) -> None:
    done = env.helper("frobnicate", "protocol=https\nhost=h.example\n\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_normal_paths_write_nothing_to_stderr(env: GitEnv) -> None:
    for action in ("store", "get", "erase"):
        done = env.helper(action, "protocol=https\nhost=h.example\nusername=u\npassword=p\n\n")
        assert (done.returncode, done.stderr) == (0, b""), action


def test_secrets_stay_out_of_files_unless_the_file_store_was_chosen(env: GitEnv) -> None:
    approve(env, "https://git.example.com", "alice", "s3cret-value")
    files = [p for p in Path(env.home).rglob("*") if p.is_file()]
    holding = [p for p in files if b"s3cret-value" in p.read_bytes()]
    if "GIT_CREDENTIAL_PAT_STORE" in env.env:
        assert holding == [env.store_file]
        assert env.store_file.stat().st_mode & 0o777 == 0o600
    else:
        assert holding == []
        stored = subprocess.run(
            ["secret-tool", "lookup", "service", "git-credential-pat",
             "username", "https://git.example.com"],
            capture_output=True, check=True, timeout=20).stdout
        assert json.loads(stored)["credentials"][0]["password"] == "s3cret-value"
