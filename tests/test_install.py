"""`./install.sh` as a person runs it (as the README writes it, its `#!/bin/sh` being `dash`
here), into a fresh HOME; the README's Quick start line by line; and `install.ps1`'s syntax.

Installing is slow, so one install (the virtual-environment way) is shared by the module, and pip
takes everything from a wheelhouse built once from pip's cache instead of asking the index.
The `installed` fixture is a HOME with the helper installed, for tests that need the real thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from git_credential_pat import __version__
from tests.azurefixtures import REPO_URL, wire
from tests.fakeazure import FakeAzure
from tests.gitenv import GitEnv
from tests.netfixtures import ALICE, Contoso
from tests.test_gitconfig import EXPECTED, GCM_CONFIG, OTHER_CONFIG

REPO = Path(__file__).resolve().parent.parent
NAME = "git-credential-pat"
# What install.sh may run; PATH holds only these, so whether pipx is "installed" is up to a test.
TOOLS = ("git", "dash", "dirname", "rm", "rmdir", "mkdir", "ln", "readlink", "grep", "cat")
NEXT_STEP = "  git clone https://dev.azure.com/ORG/PROJECT/_git/REPO\n"


@dataclass
class Installed:
    env: GitEnv
    output: str

    @property
    def venv(self) -> Path:
        return self.env.home / ".local/share/git-credential-pat/venv"

    @property
    def command(self) -> Path:
        return self.env.home / ".local/bin" / NAME


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A downloaded copy of the project: what install.sh installs, without touching the tree."""
    copy = tmp_path_factory.mktemp("download") / NAME
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"))
    return copy


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    """Wheels of everything the installs need, so they run without the package index."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                    "--wheel-dir", str(wheels), str(source), "pip", "setuptools", "wheel"],
                   check=True, timeout=600)
    return wheels


def tool_dir(where: Path, tools: tuple[str, ...]) -> Path:
    """A directory holding only these commands, to be the whole PATH."""
    where.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, f"{tool} is missing (tests/run installs it)"
        (where / tool).symlink_to(found)
    return where


def user(tmp: Path, *tools: str, wheelhouse: Path | None = None) -> GitEnv:
    """A fresh HOME with an empty global git config, PATH limited to TOOLS and `tools`, and pip
    installing from `wheelhouse` only."""
    env = GitEnv.create(tmp, tool_dir(tmp / "bin", TOOLS + tools))
    env.env.update(PATH=str(tmp / "bin"), PYTHON=sys.executable)
    if wheelhouse:
        env.env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse),
                       PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def install_sh(env: GitEnv, source: Path, *args: str, check: bool = True
               ) -> subprocess.CompletedProcess[bytes]:
    """`./install.sh ARGS` in the downloaded folder, exactly as the README says to run it."""
    return env.run("./install.sh", *args, check=check, timeout=300, input=b"", cwd=source)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, source: Path,
              wheelhouse: Path) -> Iterator[Installed]:
    """A user who ran ./install.sh once (no pipx): its env puts the installed command on PATH."""
    env = user(tmp_path_factory.mktemp("installed"), wheelhouse=wheelhouse)
    output = install_sh(env, source).stdout.decode()
    env.env["PATH"] = f"{env.home / '.local/bin'}{os.pathsep}{env.env['PATH']}"
    yield Installed(env, output)


def snapshot(installed: Installed) -> tuple[bytes, str, bytes, list[str]]:
    """What a person could notice of the installation: config, link, version, installed files."""
    return ((installed.env.home / ".gitconfig").read_bytes(),
            os.readlink(installed.command),
            installed.env.run(str(installed.command), "--version").stdout,
            sorted(str(path.relative_to(installed.venv)) for path in installed.venv.rglob("*")
                   if "__pycache__" not in path.parts))


def test_install_sh_is_executable_in_git_and_in_a_checkout() -> None:
    """`./install.sh` needs the mode git records: a clone or an archive takes it from there."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    staged = subprocess.run(["git", "-C", str(REPO), "ls-files", "--stage", "install.sh"],
                            capture_output=True, check=True).stdout.decode()
    assert staged.startswith("100755 ")
    assert os.access(REPO / "install.sh", os.X_OK)


def quick_start() -> list[str]:
    """The commands of the README's Quick start, in order, without their comments."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Quick start"):]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start:section.index("```", start)]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_quick_start_as_written_gets_a_fresh_home_to_a_working_clone(
        tmp_path: Path, source: Path, wheelhouse: Path, azure: FakeAzure,
        contoso: Contoso) -> None:
    """Every Quick start line run by a shell, word for word, in the downloaded folder, for a
    person whose PATH has ~/.local/bin (where install.sh puts the command); ORG, PROJECT and
    REPO are the only words filled in. The corporate proxy and CA are in the system config."""
    commands = quick_start()
    assert [c.split()[0] for c in commands] == ["./install.sh", "git"]
    azure.add_repo("contoso", "proj", "repo")
    env = user(tmp_path, "sh", wheelhouse=wheelhouse)
    env.env["PATH"] = f"{env.home / '.local/bin'}{os.pathsep}{env.env['PATH']}"
    system = tmp_path / "gitconfig-system"
    system.write_text(f"[http]\n\tproxy = {azure.proxy_url}\n\tsslCAInfo = {azure.ca_path}\n")
    del env.env["GIT_CONFIG_NOSYSTEM"]
    env.env.update(GIT_CONFIG_SYSTEM=str(system), **azure.browser_env(),
                   HTTPS_PROXY=azure.proxy_url, SSL_CERT_FILE=str(azure.ca_path),
                   GIT_CREDENTIAL_PAT_SIGNIN_TIMEOUT="30")
    for command in commands:
        line = command.replace("/ORG/PROJECT/_git/REPO", "/contoso/proj/_git/repo")
        env.run("sh", "-c", line, cwd=source, timeout=300)
    clone = source / "repo"
    try:
        assert (clone / "README.md").exists()
        env.git("fetch", cwd=clone)
        assert [(p.user, p.scope) for p in azure.live_pats()] == [(ALICE, "vso.code_write")]
        assert azure.authorize_count == 1
    finally:
        shutil.rmtree(clone, ignore_errors=True)
        env.run("./install.sh", "--uninstall", "--yes", cwd=source, check=False, timeout=300)


def test_install_sets_up_git_with_exactly_the_azure_devops_lines(installed: Installed) -> None:
    assert (installed.env.home / ".gitconfig").read_bytes() == EXPECTED


def test_the_installed_command_runs_from_its_own_environment(installed: Installed) -> None:
    assert installed.command.resolve() == (installed.venv / "bin" / NAME).resolve()
    done = installed.env.run(str(installed.command), "--version")
    assert done.stdout.decode() == f"{NAME} {__version__}\n"
    first_line = installed.command.read_text().splitlines()[0]
    assert first_line == f"#!{installed.venv}/bin/python -IS"  # the quick launcher


def test_git_finds_the_helper_once_the_bin_dir_is_on_path(installed: Installed) -> None:
    done = installed.env.git("credential-pat", "--version")
    assert done.stdout.decode() == f"{NAME} {__version__}\n"


def test_after_install_a_clone_signs_in_once_and_then_just_works(
        installed: Installed, azure: FakeAzure, contoso: Contoso, tmp_path: Path) -> None:
    """The README's promise: the set-up command, then `git clone`, with nothing in between
    but signing in (here, through the fake's browser, against the local Azure)."""
    azure.add_repo("contoso", "proj", "repo")
    # The fake's proxy and CA go in a config of this test's own that includes the installed one.
    env = GitEnv(installed.env.home, dict(installed.env.env))
    own = tmp_path / "gitconfig"
    own.write_text(f"[include]\n\tpath = {installed.env.home / '.gitconfig'}\n")
    env.env["GIT_CONFIG_GLOBAL"] = str(own)
    wire(env, azure)
    target = env.home / "clones" / "repo"
    env.git("clone", REPO_URL, str(target))
    env.git("fetch", cwd=target)
    assert (target / "README.md").exists()
    assert [(p.user, p.scope) for p in azure.live_pats()] == [(ALICE, "vso.code_write")]
    assert azure.authorize_count == 1


def man_env(installed: Installed) -> dict[str, str]:
    """A person's PATH (~/.local/bin first, then the system's, where man and groff are), with
    no MANPATH: man-db then finds the pages in ../share/man beside each PATH entry."""
    env = {k: v for k, v in installed.env.env.items() if k != "MANPATH"}
    env.update(PATH=f"{installed.env.home / '.local/bin'}:/usr/bin:/bin", MANPAGER="cat",
               PAGER="cat", MANWIDTH="80", GIT_PAGER="cat", LANG="C.UTF-8")
    return env


def test_install_puts_the_manual_where_git_help_finds_it(installed: Installed) -> None:
    """`git credential-pat --help` is `git help credential-pat`, which runs man."""
    if not shutil.which("man"):
        pytest.skip("man is not installed (tests/run installs man-db)")
    page = installed.env.home / ".local/share/man/man1/git-credential-pat.1"
    man = installed.env.run(str(installed.command), "help", "--man").stdout
    assert page.read_bytes() == man
    env = man_env(installed)
    for args in (("credential-pat", "--help"), ("help", "credential-pat")):
        shown = installed.env.run("git", *args, extra_env=env).stdout.decode()
        assert shown.startswith("GIT-CREDENTIAL-PAT(1)"), args
        assert "did you mean" not in shown  # a manual, not an error
        for command in ("login", "migrate", "unconfigure"):
            assert f"usage: git credential-pat {command}" in shown, (args, command)


def test_install_puts_bash_completion_where_bash_completion_and_git_s_completion_load_it(
        installed: Installed) -> None:
    """bash-completion loads completions/NAME on the first <TAB>; git's completion asks it to
    load completions/git-credential-pat for `git credential-pat <TAB>`."""
    path = installed.env.home / ".local/share/bash-completion/completions/git-credential-pat"
    made = installed.env.run(str(installed.command), "completion", "bash").stdout
    assert path.read_bytes() == made
    assert b"_git_credential_pat ()" in made


def test_install_says_how_to_get_on_path_and_what_to_do_next(installed: Installed) -> None:
    bin_dir = installed.env.home / ".local/bin"
    assert f"{bin_dir} is not on your PATH" in installed.output
    assert f'  export PATH="{bin_dir}:$PATH"\n' in installed.output
    assert installed.output.endswith(NEXT_STEP)


def test_installing_again_changes_nothing(installed: Installed, source: Path) -> None:
    before = snapshot(installed)
    output = install_sh(installed.env, source).stdout.decode()
    assert snapshot(installed) == before
    assert "Already set up" in output
    assert output.endswith(NEXT_STEP)


@pytest.mark.parametrize("way", ["venv", "pipx"])
def test_uninstall_puts_git_config_back_and_removes_the_install(
        tmp_path: Path, source: Path, wheelhouse: Path, way: str) -> None:
    env = user(tmp_path, *(["pipx"] if way == "pipx" else []), wheelhouse=wheelhouse)
    gitconfig = env.home / ".gitconfig"
    theirs = OTHER_CONFIG + GCM_CONFIG
    gitconfig.write_bytes(theirs)
    output = install_sh(env, source).stdout.decode()
    assert "warning: credential helper 'store' runs before git-credential-pat" in output
    visualstudio = EXPECTED[EXPECTED.index(b'[credential "https://*'):]
    assert gitconfig.read_bytes().endswith(
        b"\tuseHttpPath = true\n\thelper = cache --timeout=900\n\thelper = pat\n"
        b"\tpatKeep = usehttppath=true\n[user]\n\tname = Someone\n" + visualstudio)
    command = env.home / ".local/bin" / NAME
    assert env.run(str(command), "--version").stdout.decode() == f"{NAME} {__version__}\n"
    assert ("/pipx/venvs/" in str(command.resolve())) == (way == "pipx")
    assert command.read_text().splitlines()[0].endswith("/bin/python -IS")

    args = ("--uninstall", "--yes") if way == "venv" else ("--uninstall",)
    output = install_sh(env, source, *args).stdout.decode()
    assert gitconfig.read_bytes() == theirs
    assert not command.exists() and not command.is_symlink()
    assert not (env.home / ".local/share/man/man1/git-credential-pat.1").exists()
    assert not (env.home / ".local/share/bash-completion/completions/git-credential-pat").exists()
    assert not (env.home / ".local/share/git-credential-pat").exists()
    # --yes signs out; without it, nobody at a terminal can be asked, so nothing is signed out.
    assert ("Kept its sign-ins and PATs" in output) == (way == "pipx")
    if way == "pipx":
        listed = env.run("pipx", "list", "--short").stdout.decode()
        assert NAME not in listed
        assert not list(env.home.glob(f".local/**/pipx/venvs/{NAME}"))
    assert output.endswith(f"Removed {NAME}.\n")
    assert install_sh(env, source, "--uninstall").stdout.decode() == (
        f"{NAME} is not installed here; nothing to remove.\n")


def test_help_explains_the_options_and_changes_nothing(tmp_path: Path, source: Path) -> None:
    env = user(tmp_path)
    done = install_sh(env, source, "--help")
    assert done.stdout.startswith(b"Usage: ./install.sh [--uninstall [--yes]]\n")
    assert b"--uninstall" in done.stdout and b"PYTHON=" in done.stdout
    assert sorted(path.name for path in env.home.iterdir()) == [".gitconfig"]


@pytest.mark.parametrize(("missing", "message"), [
    ("git", "install.sh: git is missing: install git first, then rerun\n"),
    ("python", "install.sh: needs Python 3.9 or newer; '/nonexistent/python3' is missing or "
               "older (set PYTHON=/path/to/python3)\n"),
])
def test_a_missing_prerequisite_fails_with_one_clear_line(
        tmp_path: Path, source: Path, missing: str, message: str) -> None:
    env = user(tmp_path)
    if missing == "git":
        (tmp_path / "bin/git").unlink()
    else:
        env.env["PYTHON"] = "/nonexistent/python3"
    done = install_sh(env, source, check=False)
    assert (done.returncode, done.stdout, done.stderr.decode()) == (1, b"", message)
    assert sorted(path.name for path in env.home.iterdir()) == [".gitconfig"]


def powershell_errors(script: bytes) -> list[str]:
    """Every ERROR or MISSING node tree-sitter finds, as 'line:column text'."""
    parser = Parser(Language(tree_sitter_powershell.language()))
    found, stack = [], [parser.parse(script).root_node]
    while stack:
        node: Node = stack.pop()
        if node.is_error or node.is_missing:
            text = script[node.start_byte:node.end_byte][:40].decode(errors="replace")
            found.append(f"{node.start_point.row + 1}:{node.start_point.column + 1} {text!r}")
        stack.extend(node.children)
    return found


def test_install_ps1_parses_as_powershell() -> None:
    assert powershell_errors((REPO / "install.ps1").read_bytes()) == []


@pytest.mark.parametrize(("good", "bad"), [
    (b"\n}\n\nfunction Uninstall-Helper {", b"\n\nfunction Uninstall-Helper {"),  # lost brace
    (b"'git is missing: install", b"'git is missing: install'"),  # a quote too many
    (b"param(\n", b"param(\n    [switch\n"),  # half an attribute
    (b"if ($Uninstall) {", b"if ($Uninstall {"),  # unclosed condition
])
def test_the_parse_check_catches_syntax_errors(good: bytes, bad: bytes) -> None:
    script = (REPO / "install.ps1").read_bytes()
    assert script.count(good) == 1
    assert powershell_errors(script.replace(good, bad)) != []
