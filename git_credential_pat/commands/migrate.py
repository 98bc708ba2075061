"""`migrate`: move PATs out of remote URLs and git's plaintext credential files into the store.

A PAT written into a remote (`https://me:PAT@dev.azure.com/...`) sits in plain text in
`.git/config`, is printed by `git remote -v`, and travels with every copy of the repository;
one in `~/.git-credentials` (git's `store` helper) sits in plain text in HOME. Each PAT found
is first shown to its organization: one it refuses is only taken out, one it accepts is kept
under the account it belongs to, and one that cannot be checked (the organization is out of
reach) is kept unverified, and said to be. A PAT is not kept when the store already holds
the one git gets for that account, since it would be a row nothing uses. Keeping goes through
the helper's own `store` action, so it is kept exactly as a PAT typed at git's prompt would
be, and only once that has worked are the URLs and files rewritten. The secret is never
printed, and never put on a command line where `ps` could show it.
"""

from __future__ import annotations

import argparse
import base64
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from git_credential_pat.actions import helper
from git_credential_pat.actions.context import OrgContext, Runtime
from git_credential_pat.commands.output import Terminal, show
from git_credential_pat.commands.targets import remote_urls
from git_credential_pat.core import entries, policy, redact
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.protocol import Message
from git_credential_pat.core.remote import Org, account_hint, org_of_url
from git_credential_pat.edges import git
from git_credential_pat.edges.files import replace_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_credential_pat.core.entries import Item

MASK = "***"
PAT_LENGTHS = (52, 84)  # Azure DevOps PATs: 52 characters, 84 since 2024
CHECK_SECONDS = 15.0  # for the one request that shows a PAT to its organization
REMOVED = "(line removed)"


@dataclass
class Finding:
    """A remote URL holding a secret, and what it becomes."""

    repo: str
    key: str  # remote.NAME.url or remote.NAME.pushurl
    url: str
    org: Org
    username: str  # the URL's user name, decoded; "" when absent or when it is the secret
    secret: str
    clean: str  # the URL after; for a credential file's line, REMOVED
    masked: str
    line: int = 0  # the line of a credential file (repo) it is on; 0 for a remote URL


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


def credential_files(environ: Mapping[str, str]) -> list[str]:
    """The files git's `store` helper reads by default: ~/.git-credentials, then the XDG one."""
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [path for path in (os.path.join(os.path.expanduser("~"), ".git-credentials"),
                              os.path.join(xdg, "git", "credentials")) if os.path.isfile(path)]


def file_findings(paths: Iterable[str]) -> list[Finding]:
    """Azure DevOps lines of git's credential files; each line is a URL with its secret."""
    found = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                finding = examine(path, f"line {number}", line.strip())
                if finding:
                    finding.clean, finding.line = REMOVED, number
                    found.append(finding)
    return found


@dataclass
class Verdict:
    """What the organization said of one PAT, and what becomes of it."""

    check: str  # accepted | refused | unreachable
    detail: str = ""  # why it was refused, or why it could not be checked
    account: str = ""  # whose PAT it is, as the organization says
    keep: bool = False
    note: str = ""
    findings: list[Finding] = field(default_factory=list)


def check(finding: Finding, target: OrgContext) -> Verdict:
    """Show the PAT to its organization in one request (`connectionData`, which any valid PAT
    of the organization may read, and which names the PAT's owner)."""
    from git_credential_pat.edges import http

    basic = base64.b64encode(f"{finding.username or 'pat'}:{finding.secret}".encode()).decode()
    url = f"{target.org.url}/_apis/connectionData"
    try:
        response = http.call(target.http, "GET", url, step="checking a PAT found in plain text",
                             timeout=min(target.settings.timeout, CHECK_SECONDS),
                             headers={"Authorization": f"Basic {basic}"})
    except HelperError as error:
        return Verdict("unreachable", str(error))
    if response.status_code in (401, 403):
        return Verdict("refused", f"HTTP {response.status_code}: revoked, expired, or not "
                                  f"a PAT of {target.org.name}")
    if response.status_code == 404:
        return Verdict("refused", f"HTTP 404: no organization {target.org.name}")
    if response.status_code != 200:
        return Verdict("unreachable", f"HTTP {response.status_code}")
    try:
        user = http.json_of(response, "connection data").get("authenticatedUser") or {}
    except HelperError:
        user = {}
    account = ((user.get("properties") or {}).get("Account") or {}).get("$value", "")
    usable = isinstance(account, str) and account.isprintable() and len(account) < 256
    return Verdict("accepted", account=account if usable else "")  # it becomes a user name


def judge(found: list[Finding], runtime: Runtime) -> list[Verdict]:
    """One verdict per PAT (a PAT can sit in several URLs), in the order first found."""
    verdicts: dict[tuple[Org, str], Verdict] = {}
    for finding in found:
        known = verdicts.get((finding.org, finding.secret))
        if known:
            known.findings.append(finding)
            continue
        target = runtime.org(finding.org)
        verdict = check(finding, target)
        verdict.findings.append(finding)
        verdicts[(finding.org, finding.secret)] = verdict
        if verdict.check == "refused":
            verdict.note = f"refused by {finding.org.name} ({verdict.detail}): not kept"
            continue
        item = target.item()
        account = _account_for(verdict, finding, target, item)
        current = policy.pick(item, account, target.now())
        if current and current.get("password") != finding.secret:
            verdict.note = (f"not kept: the store already holds the PAT git gets for "
                            f"{show(finding.org.name)}")
            continue
        verdict.account, verdict.keep = account, True
        verdict.note = (f"accepted by {finding.org.name}: kept" if verdict.check == "accepted"
                        else f"could not check ({verdict.detail}): kept unverified")
    return list(verdicts.values())


def _account_for(verdict: Verdict, finding: Finding, target: OrgContext,
                 item: Item) -> str:
    """The account the PAT is kept under, so that `get` answers with it: its owner, as the
    organization says; unverified, the account the URL or settings name, else the one the
    organization signs in with."""
    return (verdict.account or account_hint(finding.username, finding.org)
            or target.settings.account or entries.org_of(item).get("account", "")
            or finding.username)


def keep(finding: Finding, runtime: Runtime, username: str) -> None:
    """Store the secret through the helper's `store`, as git would after a successful fetch,
    for the organization's own URL (a credential file's line may carry no path)."""
    parts = urlsplit(finding.org.url)
    attrs = {"protocol": "https", "host": parts.netloc, "path": parts.path.lstrip("/"),
             "password": finding.secret}
    if username:
        attrs["username"] = username
    helper.handle("store", Message(attrs=attrs), runtime)


def rewrite(repo: str, key: str, cleaned: dict[str, str]) -> None:
    """Replace the values of one config key, keeping their order; only clean URLs reach
    git's command line."""
    values = git.run("config", "--local", "--get-all", key, cwd=repo).splitlines()
    new = [cleaned.get(value, value) for value in values]
    git.run("config", "--local", "--replace-all", key, new[0], cwd=repo)
    for value in new[1:]:
        git.run("config", "--local", "--add", key, value, cwd=repo)


def remove_lines(path: str, numbers: set[int]) -> None:
    """Drop lines of a credential file, every other byte kept, its mode too."""
    with open(path, "rb") as old:
        lines = old.readlines()
    kept = b"".join(line for n, line in enumerate(lines, 1) if n not in numbers)
    replace_file(path, kept, os.stat(path).st_mode & 0o777)


def run(args: argparse.Namespace, term: Terminal) -> int:
    root = os.path.abspath(args.path)
    if not os.path.isdir(root):
        raise HelperError(f"{show(args.path)} is not a directory")
    files = credential_files(os.environ)
    found = findings(find_repos(root)) + file_findings(files)
    if not found:
        _done(args, term, f"No remote URL under {show(root)} holds a PAT, nor does "
              + (" or ".join(show(f) for f in files) if files else "a git credential file")
              + ".", "nothing found", [], None)
        return 0
    runtime = Runtime(say=term.say)
    where = runtime.store(runtime.settings(found[0].org.url)).description
    with term.progress("Checking the PATs with their organizations"):
        verdicts = judge(found, runtime)
    of = {id(f): v for v in verdicts for f in v.findings}
    rows = [{"where": show(f.repo if f.line else os.path.relpath(f.repo, root)),
             "key": show(f.key), "url_now": show(f.masked), "url_after": show(f.clean),
             "organization": f.org.name, "check": of[id(f)].check, "kept": of[id(f)].keep,
             "note": show(of[id(f)].note)} for f in found]
    kept = [v for v in verdicts if v.keep]
    if not args.json:
        term.table(("WHERE", "KEY", "NOW", "AFTER", "PAT"),
                   [(r["where"], r["key"], r["url_now"], r["url_after"], r["note"])
                    for r in rows])
    if args.dry_run:
        _done(args, term, f"\nWould keep {_count(kept)} in {where} and rewrite these "
              "(--dry-run: nothing changed).", "dry run", rows, where)
        return 0
    for verdict in kept:
        keep(verdict.findings[0], runtime, verdict.account)
    for (repo, key), group in _by_key([f for f in found if not f.line]).items():
        rewrite(repo, key, {f.url: f.clean for f in group})
    for path in files:
        numbers = {f.line for f in found if f.line and f.repo == path}
        if numbers:
            remove_lines(path, numbers)
    _done(args, term, f"\nKept {_count(kept)} in {where} and rewrote these.", "migrated",
          rows, where)
    return 0


def _done(args: argparse.Namespace, term: Terminal, text: str, done: str,
          rows: list[dict[str, object]], where: str | None) -> None:
    if args.json:
        term.json({"done": done, "dry_run": args.dry_run, "store": where, "found": rows})
    else:
        term.line(text)


def _count(verdicts: list[Verdict]) -> str:
    n = len(verdicts)
    return f"{n} PAT{'s' if n != 1 else ''}"


def _by_key(found: list[Finding]) -> dict[tuple[str, str], list[Finding]]:
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in found:
        groups.setdefault((finding.repo, finding.key), []).append(finding)
    return groups
