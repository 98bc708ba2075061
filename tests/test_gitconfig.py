"""`configure` / `unconfigure` / `applicable_helpers` against real git and a throwaway HOME.

The config file is read back as bytes, because what a person sees in `~/.gitconfig` is the
product; which helpers apply is checked against the helpers real git runs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from git_credential_pat.commands import configure
from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import gitconfig
from tests.gitenv import GitEnv

EXPECTED = b"""\
[credential "https://dev.azure.com"]
\thelper = cache --timeout=900
\thelper = pat
\tuseHttpPath = true
[credential "https://*.visualstudio.com"]
\thelper = cache --timeout=900
\thelper = pat
\tuseHttpPath = true
"""
EXPECTED_EXCLUSIVE = EXPECTED.replace(b"\thelper = cache", b"\thelper = \n\thelper = cache")
EXPECTED_NO_CACHE = EXPECTED.replace(b"\thelper = cache --timeout=900\n", b"")
OTHER_CONFIG = b"""\
[user]
\tname = Someone
[credential]
\thelper = store
[credential "https://dev.azure.com"]
\tusername = someone@example.com
[credential "https://git.example.com"]
\thelper = cache
"""
# What Git Credential Manager's `configure` leaves: a line of the same kind as one of ours.
GCM_CONFIG = b"""\
[credential]
\thelper = manager
[credential "https://dev.azure.com"]
\tuseHttpPath = true
[user]
\tname = Someone
"""
AZURE_URLS = ("https://dev.azure.com/org/project/_git/repo",
              "https://org.visualstudio.com/project/_git/repo")


@pytest.fixture
def env(genv: GitEnv, monkeypatch: pytest.MonkeyPatch) -> GitEnv:
    """The test process itself runs in the throwaway HOME, since gitconfig calls git directly."""
    for name in ("GIT_DIR", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_ASKPASS",
                 "SSH_ASKPASS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in genv.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(genv.home)
    return genv


@pytest.fixture
def gitconfig_file(env: GitEnv) -> Path:
    return env.home / ".gitconfig"


@pytest.fixture
def recorder(env: GitEnv) -> Path:
    """Helpers that only note their name when git runs them, and the file they note it in.

    `rec1`..`rec3` and `pat` (shadowing the real one) exist, so configured helpers can be compared
    with the ones git actually runs for a URL.
    """
    bin_dir = env.home / "bin"
    bin_dir.mkdir()
    log = env.home / "ran"
    for name in ("rec1", "rec2", "rec3", "pat"):
        script = bin_dir / f"git-credential-{name}"
        script.write_text(f'#!/bin/sh\n[ "$1" = get ] && echo {name} >>"{log}"\nexit 0\n')
        script.chmod(0o755)
    env.env["PATH"] = f"{bin_dir}:{env.env['PATH']}"
    return log


def helpers_git_runs(env: GitEnv, log: Path, url: str) -> list[str]:
    log.write_text("")
    env.run("git", "credential", "fill", input=f"url={url}\n\n", check=False)
    return log.read_text().split()


def test_configure_writes_exactly_the_azure_devops_lines(gitconfig_file: Path) -> None:
    notices = configure.write()
    assert gitconfig_file.read_bytes() == EXPECTED
    assert notices == ["Set up for https://dev.azure.com and https://*.visualstudio.com "
                       "in the global git config."]


def test_configure_twice_changes_nothing(gitconfig_file: Path) -> None:
    configure.write()
    notices = configure.write()
    assert gitconfig_file.read_bytes() == EXPECTED
    assert notices[0].startswith("Already set up")


def test_exclusive_adds_a_reset_line_and_can_be_switched_off(gitconfig_file: Path) -> None:
    configure.write(exclusive=True)
    assert gitconfig_file.read_bytes() == EXPECTED_EXCLUSIVE
    configure.write(exclusive=True)
    assert gitconfig_file.read_bytes() == EXPECTED_EXCLUSIVE
    configure.write()
    assert gitconfig_file.read_bytes() == EXPECTED


def test_no_cache_leaves_git_s_cache_out_and_can_be_switched_back(gitconfig_file: Path) -> None:
    configure.write(cache=False)
    assert gitconfig_file.read_bytes() == EXPECTED_NO_CACHE
    configure.write()
    assert gitconfig_file.read_bytes() == EXPECTED


@pytest.mark.parametrize("exclusive", [False, True])
def test_unconfigure_restores_an_empty_file_byte_for_byte(gitconfig_file: Path,
                                                          exclusive: bool) -> None:
    configure.write(exclusive=exclusive)
    assert configure.remove() == ["Removed git-credential-pat from the global git config."]
    assert gitconfig_file.read_bytes() == b""
    assert configure.remove() == ["git-credential-pat was not in the global git config."]
    assert gitconfig_file.read_bytes() == b""


def test_other_helpers_and_keys_survive_configure_and_unconfigure(gitconfig_file: Path,
                                                                  env: GitEnv) -> None:
    gitconfig_file.write_bytes(OTHER_CONFIG)
    configure.write(exclusive=True)
    entries = env.git("config", "--global", "--list").stdout.decode().splitlines()
    theirs = ["user.name=Someone", "credential.helper=store",
              "credential.https://dev.azure.com.username=someone@example.com",
              "credential.https://git.example.com.helper=cache"]
    assert [entry for entry in entries if entry in theirs] == theirs
    assert set(entries) - set(theirs) == {
        f"credential.{url}.{entry}" for url in ("https://dev.azure.com", "https://*.visualstudio.com")
        for entry in ("helper=", "helper=cache --timeout=900", "helper=pat", "usehttppath=true")}
    configure.remove()
    assert gitconfig_file.read_bytes() == OTHER_CONFIG


def scope_file(env: GitEnv, tmp_path: Path, scope: str, monkeypatch: pytest.MonkeyPatch
               ) -> Path:
    """The config file `--SCOPE` writes, set up so this test (and git) use it."""
    if scope == "global":
        return env.home / ".gitconfig"
    if scope == "system":
        system = tmp_path / "system-gitconfig"
        monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(system))
        monkeypatch.delenv("GIT_CONFIG_NOSYSTEM")
        return system
    repo = tmp_path / "repo"
    env.git("init", "-q", str(repo))
    monkeypatch.chdir(repo)
    return repo / ".git/config"


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("scope", ["global", "system", "local"])
def test_unconfigure_leaves_a_line_the_person_had_before_byte_for_byte(
        env: GitEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scope: str,
        exclusive: bool) -> None:
    """Git Credential Manager's `useHttpPath = true` is also one of ours: configure must not
    take it over, and unconfigure must not take it away."""
    path = scope_file(env, tmp_path, scope, monkeypatch)
    before = path.read_bytes() if path.exists() else b""
    path.write_bytes(before + GCM_CONFIG)
    configure.write(scope, exclusive=exclusive)
    assert configure.write(scope, exclusive=exclusive)[0].startswith("Already set up")
    azure = subprocess.run(["git", "config", f"--{scope}", "--get-all",
                            "credential.https://dev.azure.com.helper"],
                           capture_output=True, check=True).stdout.decode().splitlines()
    assert azure == ([""] if exclusive else []) + ["cache --timeout=900", "pat"]
    assert configure.remove(scope) == [f"Removed git-credential-pat from the {scope} git config."]
    assert path.read_bytes() == before + GCM_CONFIG
    assert configure.remove(scope) == [f"git-credential-pat was not in the {scope} git config."]


def test_a_configuration_written_before_the_record_existed_is_still_removed(
        gitconfig_file: Path) -> None:
    """Sections holding `helper = pat` and no record are all ours, as earlier versions wrote."""
    gitconfig_file.write_bytes(OTHER_CONFIG + EXPECTED)
    assert configure.write()[0].startswith("Already set up")
    configure.remove()
    assert gitconfig_file.read_bytes() == OTHER_CONFIG


@pytest.mark.parametrize("helper", ["manager", "manager-core", "store"])
def test_configure_warns_about_a_helper_that_would_answer_first(env: GitEnv, helper: str) -> None:
    env.config("credential.helper", helper)
    notices = configure.write()
    plain = (", and writes every PAT git-credential-pat makes to disk in plain text"
             if helper == "store" else "")
    assert notices[1:] == [
        f"warning: credential helper '{helper}' runs before git-credential-pat and will answer "
        f"instead for {url}{plain}; remove it or run `git credential-pat configure --exclusive`."
        for url in AZURE_URLS]


def test_a_credential_cache_of_ones_own_before_it_is_no_conflict(env: GitEnv) -> None:
    """git's cache answers only with what the helper after it answered."""
    env.config("credential.helper", "cache --timeout=3600")
    assert configure.write()[1:] == []


def test_configure_warns_about_a_helper_that_would_get_a_copy_of_each_pat(env: GitEnv) -> None:
    configure.write()
    env.config("--add", "credential.https://dev.azure.com.helper", "store")
    notices = configure.write()
    assert notices[1:] == [
        f"warning: credential helper 'store' is handed every PAT git-credential-pat makes for "
        f"{AZURE_URLS[0]}, and writes every PAT git-credential-pat makes to disk in plain text; "
        "remove it or run `git credential-pat configure --exclusive`."]


def test_configure_warns_when_a_later_reset_disables_it(env: GitEnv, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    env.git("init", "-q", str(repo))
    env.git("-C", str(repo), "config", "credential.helper", "")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        notices = configure.write()
    assert len(notices) == 3
    assert all("git will not use git-credential-pat" in notice for notice in notices[1:])


def test_exclusive_makes_git_run_only_this_helper(env: GitEnv, recorder: Path) -> None:
    env.config("credential.helper", "rec1")
    assert len(configure.write()) == 3
    assert helpers_git_runs(env, recorder, AZURE_URLS[0]) == ["rec1", "pat"]
    assert configure.write(exclusive=True)[1:] == []
    for url in AZURE_URLS:
        assert helpers_git_runs(env, recorder, url) == ["pat"]
    assert helpers_git_runs(env, recorder, "https://git.example.com/repo") == ["rec1"]


def test_local_scope_writes_the_repository_config_only(env: GitEnv, tmp_path: Path,
                                                       gitconfig_file: Path) -> None:
    repo = tmp_path / "repo"
    env.git("init", "-q", str(repo))
    before = (repo / ".git/config").read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        configure.write("local")
        assert (repo / ".git/config").read_bytes() == before + EXPECTED
        configure.remove("local")
    assert (repo / ".git/config").read_bytes() == before
    assert gitconfig_file.read_bytes() == b""


def test_a_bad_scope_or_no_repository_is_a_clear_error(env: GitEnv) -> None:
    with pytest.raises(HelperError, match="unknown git config scope 'user'"):
        configure.write("user")
    with pytest.raises(HelperError, match="--local can only be used inside a git repository"):
        configure.write("local")


def config(*sections: tuple[str, str]) -> str:
    """A config file with one section per (URL pattern or "", helper), in this order."""
    return "".join(f'[credential "{url}"]\n\thelper = {helper}\n' if url
                   else f"[credential]\n\thelper = {helper}\n" for url, helper in sections)


# (config file, URL, the helpers git runs for it)
RESOLUTION_CASES = [
    (config(), AZURE_URLS[0], []),
    (config(("", "rec1"), ("https://dev.azure.com", "rec2")),
     AZURE_URLS[0], ["rec1", "rec2"]),
    (config(("", "rec1"), ("https://dev.azure.com", ""),
      ("https://dev.azure.com", "rec2"), ("", "rec3")),
     AZURE_URLS[0], ["rec2", "rec3"]),
    (config(("https://dev.azure.com", "rec1"), ("", "")),
     AZURE_URLS[0], []),
    (config(("https://*.visualstudio.com", "rec1")), AZURE_URLS[1], ["rec1"]),
    (config(("https://*.visualstudio.com", "rec1")),
     "https://a.b.visualstudio.com/repo", []),
    (config(("https://*.visualstudio.com", "rec1")), "https://visualstudio.com/", []),
    (config(("https://*.visualstudio.com", "rec1")),
     "https://org.visualstudio.com.evil.example/repo", []),
    (config(("https://dev.azure.com/org", "rec1")), AZURE_URLS[0], ["rec1"]),
    (config(("https://dev.azure.com/org", "rec1")),
     "https://dev.azure.com/organization/p/_git/r", []),
    (config(("https://dev.azure.com:443", "rec1")), AZURE_URLS[0], ["rec1"]),
    (config(("https://dev.azure.com:8443", "rec1")), AZURE_URLS[0], []),
    (config(("https://dev.azure.com", "rec1")),
     "https://dev.azure.com:8443/org/p/_git/r", []),
    (config(("http://dev.azure.com", "rec1")), AZURE_URLS[0], []),
    (config(("https://alice@dev.azure.com", "rec1")),
     "https://alice@dev.azure.com/org/p/_git/r", ["rec1"]),
    (config(("https://alice@dev.azure.com", "rec1")),
     "https://bob@dev.azure.com/org/p/_git/r", []),
    (config(("https://alice@dev.azure.com", "rec1")), AZURE_URLS[0], []),
    (config(("https://DEV.Azure.com", "rec1")), AZURE_URLS[0], ["rec1"]),
    (config(("dev.azure.com", "rec1")), AZURE_URLS[0], ["rec1"]),
    (config(("example.com", "rec1")), AZURE_URLS[0], []),
]


@pytest.mark.parametrize(("text", "url", "expected"), RESOLUTION_CASES)
def test_applicable_helpers_agrees_with_the_helpers_git_runs(
        env: GitEnv, recorder: Path, text: str, url: str, expected: list[str]) -> None:
    (env.home / ".gitconfig").write_text(text)
    assert helpers_git_runs(env, recorder, url) == expected
    assert gitconfig.applicable_helpers(url) == expected


def test_applicable_helpers_reads_every_config_file_in_order(env: GitEnv, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            recorder: Path) -> None:
    system = tmp_path / "system-gitconfig"
    subprocess.run(["git", "config", "--file", str(system), "credential.helper", "rec1"],
                   check=True, timeout=30)
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(system))
    monkeypatch.delenv("GIT_CONFIG_NOSYSTEM")
    env.env["GIT_CONFIG_SYSTEM"] = str(system)
    del env.env["GIT_CONFIG_NOSYSTEM"]
    env.config("credential.helper", "rec2")
    assert helpers_git_runs(env, recorder, AZURE_URLS[0]) == ["rec1", "rec2"]
    assert gitconfig.applicable_helpers(AZURE_URLS[0]) == ["rec1", "rec2"]


@pytest.mark.parametrize(("helper", "program"), [
    ("cache --timeout=900", "git-credential-cache"),
    ("pat", "git-credential-pat"),
    ("/usr/lib/git-core/git-credential-cache --timeout=60", "git-credential-cache"),
    ("!git credential-cache --socket ~/s", "git-credential-cache"),
    ("!/opt/bin/git-credential-pat", "git-credential-pat"),
    ("!f() { cat; }; f", "f()"),
    ("", ""),
])
def test_a_helper_is_known_by_the_program_git_runs_for_it(helper: str, program: str) -> None:
    assert gitconfig.helper_program(helper) == program
