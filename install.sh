#!/bin/sh
# Installs git-credential-pat for the current user and sets git up to use it for Azure DevOps.
# POSIX sh on purpose: it runs before anything else is installed. See `./install.sh --help`.
set -eu

NAME=git-credential-pat

usage() {
    cat <<'EOF'
Usage: ./install.sh [--uninstall [--yes]]

Installs git-credential-pat for you alone (no root needed) from the folder this script is in,
and sets up git (your global git config) to use it for https://dev.azure.com and
https://*.visualstudio.com. With pipx it installs through pipx; otherwise into a virtual
environment in ${XDG_DATA_HOME:-~/.local/share}/git-credential-pat/venv, with the command
linked into ~/.local/bin, its manual page into ~/.local/share/man/man1, where
`git credential-pat --help` finds it, and its bash completion where bash-completion
finds it. Running it again updates the installation.

  --uninstall  remove the git config entries, the installed environment, the command,
               its manual page and its completion
  --yes        with --uninstall: also run `git-credential-pat logout --all` without asking
               (it is offered when a terminal can answer, and skipped otherwise)
  --help       show this help

PYTHON=/path/to/python3 chooses the Python (3.9 or newer) to install with.
EOF
}

say() { printf '%s\n' "$@"; }  # one line per argument
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

uninstall=false
yes=false
for arg in "$@"; do
    case $arg in
        --uninstall) uninstall=true ;;
        --yes | -y) yes=true ;;
        --help | -h) usage; exit 0 ;;
        *) die "unknown option '$arg' (see ./install.sh --help)" ;;
    esac
done
if $yes && ! $uninstall; then die "--yes only goes with --uninstall"; fi

umask 022  # what it installs is nobody else's to change, whatever the caller's umask
src=$(cd "$(dirname "$0")" && pwd -P)
venv=${XDG_DATA_HOME:-$HOME/.local/share}/$NAME/venv
link=$HOME/.local/bin/$NAME
pipx_link=${PIPX_BIN_DIR:-$HOME/.local/bin}/$NAME
completion=${BASH_COMPLETION_USER_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/bash-completion}/completions/$NAME
python=${PYTHON:-python3}

command -v git >/dev/null 2>&1 || die "git is missing: install git first, then rerun"
[ -f "$src/pyproject.toml" ] || die "run the install.sh inside a copy of git-credential-pat's source"

man_page() { printf '%s/share/man/man1/%s.1' "$(dirname "$(dirname "$1")")" "$NAME"; }
has_pipx() { command -v pipx >/dev/null 2>&1; }
installed_by_pipx() { has_pipx && pipx list --short 2>/dev/null | grep -q "^$NAME "; }

install() {
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
        die "needs Python 3.9 or newer; '$python' is missing or older (set PYTHON=/path/to/python3)"
    # setuptools builds in ./build and never empties it: a module deleted since would come back.
    rm -rf "$src/build"
    if has_pipx; then
        say "Installing $NAME with pipx..."
        pipx install --force --python "$python" "$src" >/dev/null
        rm -rf "$venv"  # left by an earlier install without pipx
        env_dir=$(pipx environment --value PIPX_LOCAL_VENVS)/$NAME
        cmd=$pipx_link
    else
        "$python" -c 'import ensurepip, venv' 2>/dev/null ||
            die "Python's venv module is missing (on Debian or Ubuntu: apt-get install python3-venv)"
        say "Installing $NAME into $venv..."
        "$venv/bin/python" -c '' 2>/dev/null || "$python" -m venv --clear "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$src"
        mkdir -p "$(dirname "$link")"
        ln -sf "$venv/bin/$NAME" "$link"
        env_dir=$venv
        cmd=$link
    fi
    # git runs the helper on every fetch: replace pip's script with one that starts Python
    # without `site` (git_credential_pat/launcher.py measures why).
    "$env_dir/bin/python" -I -m git_credential_pat.launcher "$env_dir/bin/$NAME"
    "$cmd" configure
    bin_dir=$(dirname "$cmd")
    # man-db looks in ../share/man beside each PATH entry, so `git credential-pat --help`
    # (which git turns into `git help credential-pat`) finds the page once bin_dir is on PATH.
    page=$(man_page "$cmd")
    mkdir -p "$(dirname "$page")"
    "$cmd" help --man >"$page"
    # bash-completion loads this on the first <TAB> after git-credential-pat, and git's own
    # completion loads it for `git credential-pat <TAB>`.
    mkdir -p "$(dirname "$completion")"
    "$cmd" completion bash >"$completion"
    case ":$PATH:" in
        *":$bin_dir:"*)
            found=$(command -v "$NAME" || true)
            [ "$found" = "$cmd" ] || say "warning: git will run $found, which comes first on PATH."
            ;;
        *)
            say "" "$bin_dir is not on your PATH, so git cannot find $NAME yet." \
                "Add this line to ~/.profile (or your shell's startup file) and open a new terminal:" \
                "  export PATH=\"$bin_dir:\$PATH\""
            ;;
    esac
    say "" "Done. Clone an Azure DevOps repository; you sign in the first time:"
    say "  git clone https://dev.azure.com/ORG/PROJECT/_git/REPO"
}

uninstall() {
    if [ -x "$venv/bin/$NAME" ]; then
        cmd=$venv/bin/$NAME
    elif installed_by_pipx; then
        cmd=$pipx_link
    else
        say "$NAME is not installed here; nothing to remove."
        return
    fi
    logout=$yes
    if ! $yes && [ -t 0 ]; then
        printf 'Also sign out and forget its PATs (%s logout --all)? [y/N] ' "$NAME"
        read -r answer || answer=
        case $answer in [yY]*) logout=true ;; esac
    fi
    if $logout; then
        # logout empties the keyring even when a PAT cannot be revoked (nobody to sign in).
        "$cmd" logout --all ||
            say "warning: some PATs could not be revoked; they stop working when they expire."
    else
        say "Kept its sign-ins and PATs in your keyring; the PATs lapse when they expire."
    fi
    "$cmd" unconfigure
    if installed_by_pipx; then
        pipx uninstall "$NAME" >/dev/null
    fi
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$venv/bin/$NAME" ]; then
        rm -f "$link"
    fi
    rm -f "$(man_page "$link")" "$(man_page "$pipx_link")" "$completion"
    rm -rf "$venv"
    rmdir "$(dirname "$venv")" 2>/dev/null || true  # only when nothing else is kept there
    say "Removed $NAME."
}

if $uninstall; then uninstall; else install; fi
