"""`migrate`: move PATs out of remote URLs into the store, and clean the URLs.

A PAT written into a remote (`https://me:PAT@dev.azure.com/...`) sits in plain text in
`.git/config`, is printed by `git remote -v`, and travels with every copy of the repository.
Each one found is handed to the helper's own `store` action, so it is kept exactly as a PAT
typed at git's prompt would be, and only once that has worked is the URL rewritten. The secret
is never printed, and never put on a command line where `ps` could show it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from git_credential_pat.actions import helper
from git_credential_pat.actions.context import Runtime
from git_credential_pat.commands.output import Terminal, show
from git_credential_pat.commands.targets import remote_urls
from git_credential_pat.core import redact
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.protocol import Message
from git_credential_pat.core.remote import Org, account_hint, org_of_url
from git_credential_pat.edges import git

MASK = "***"
PAT_LENGTHS = (52, 84)  # Azure DevOps PATs: 52 characters, 84 since 2024


@dataclass
class Finding:
    """A remote URL holding a secret, and what it becomes."""

    repo: str
    key: str  # remote.NAME.url or remote.NAME.pushurl
    url: str
    org: Org
    username: str  # the URL's user name, decoded; "" when absent or when it is the secret
    secret: str
    clean: str
    masked: str


def looks_like_pat(text: str) -> bool:
    return len(text) in PAT_LENGTHS and text.isascii() and text.isalnum()


def examine(repo: str, key: str, url: str) -> Finding | None:
    """The secret in one remote URL, if it is an Azure DevOps URL that carries one: a password,
    or a PAT written as the user name."""
    try:
        org = org_of_url(url)
    except (HelperError, ValueError):
        return None
    if org is None:
        return None
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    raw_user, has_password, _ = userinfo.partition(":")
    user = unquote(raw_user)
    if has_password and parts.password:
        secret = unquote(parts.password)
        kept = raw_user if user.lower() == org.name or account_hint(user, org) else ""
        masked_user = f"{raw_user}:{MASK}"
    elif looks_like_pat(user):
        secret, user, kept, masked_user = user, "", "", MASK
    else:
        return None
    redact.secret(secret)
    return Finding(repo, key, url, org, user, secret,
                   clean=_with_userinfo(parts, kept, host),
                   masked=_with_userinfo(parts, masked_user, host))


def _with_userinfo(parts: SplitResult, userinfo: str, host: str) -> str:
    """The URL with its user part replaced. The user name that stays is the organization
    (Azure DevOps' own clone URLs carry it) or an account (it picks who signs in); anything
    else goes, since the helper no longer needs it."""
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host))


def find_repos(root: str) -> list[str]:
    """Every repository at or under `root` (working trees, submodules and linked worktrees,
    by their `.git`), or the one `root` lies inside."""
    found = []
    for path, dirs, files in os.walk(root):
        if ".git" in dirs or ".git" in files:
            found.append(path)
        dirs[:] = sorted(d for d in dirs if d != ".git")
    if not found:
        top = git.run("rev-parse", "--show-toplevel", cwd=root, ok=(0, 128)).strip()
        found = [top] if top else []
    return found


def findings(repos: Iterable[str]) -> list[Finding]:
    found = []
    for repo in repos:
        for key, url in remote_urls(repo):
            finding = examine(repo, key, url)
            if finding:
                found.append(finding)
    return found


def keep(finding: Finding, runtime: Runtime) -> None:
    """Store the secret through the helper's `store`, as git would after a successful fetch."""
    parts = urlsplit(finding.url)
    attrs = {"protocol": "https", "host": parts.netloc.rpartition("@")[2],
             "path": unquote(parts.path).lstrip("/"), "password": finding.secret}
    if finding.username:
        attrs["username"] = finding.username
    helper.handle("store", Message(attrs=attrs), runtime)


def rewrite(repo: str, key: str, cleaned: dict[str, str]) -> None:
    """Replace the values of one config key, keeping their order; only clean URLs reach
    git's command line."""
    values = git.run("config", "--local", "--get-all", key, cwd=repo).splitlines()
    new = [cleaned.get(value, value) for value in values]
    git.run("config", "--local", "--replace-all", key, new[0], cwd=repo)
    for value in new[1:]:
        git.run("config", "--local", "--add", key, value, cwd=repo)


def run(args: argparse.Namespace, term: Terminal) -> int:
    root = os.path.abspath(args.path)
    if not os.path.isdir(root):
        raise HelperError(f"{show(args.path)} is not a directory")
    found = findings(find_repos(root))
    if not found:
        term.line(f"No remote URL under {show(root)} holds a PAT.")
        return 0
    runtime = Runtime(say=term.say)
    where = runtime.store(runtime.settings(found[0].org.url)).description
    term.table(("REPOSITORY", "CONFIG KEY", "URL NOW", "URL AFTER"),
               [(show(os.path.relpath(f.repo, root)), show(f.key), show(f.masked), show(f.clean))
                for f in found])
    if args.dry_run:
        term.line(f"\nWould move {_count(found)} into {where} and rewrite these URLs "
                  "(--dry-run: nothing changed).")
        return 0
    for finding in found:
        keep(finding, runtime)
    for (repo, key), group in _by_key(found).items():
        rewrite(repo, key, {f.url: f.clean for f in group})
    term.line(f"\nMoved {_count(found)} into {where} and rewrote these URLs.")
    return 0


def _count(found: list[Finding]) -> str:
    n = len({f.secret for f in found})
    return f"{n} PAT{'s' if n != 1 else ''}"


def _by_key(found: list[Finding]) -> dict[tuple[str, str], list[Finding]]:
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in found:
        groups.setdefault((finding.repo, finding.key), []).append(finding)
    return groups
