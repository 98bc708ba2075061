"""Which remotes are Azure DevOps organizations, and which organization.

The same organization is reached as `dev.azure.com/{org}`, `{org}@dev.azure.com/{org}` and
`{org}.visualstudio.com`; all of them map to one lower-case organization name so that they
share one credential. Anything that is not exactly one of those hosts over HTTPS, such as a
lookalike host or an `http://` URL, is never treated as Azure DevOps, so a PAT never goes there.
"""

from __future__ import annotations

from git_credential_pat.core.constants import ORG_HOST
from git_credential_pat.core.errors import HelperError, UsageError

_ORG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_VISUALSTUDIO = ".visualstudio.com"
# Service hosts under visualstudio.com that are not organizations.
_NOT_ORGS = frozenset({"app", "vssps", "vsrm", "vsaex", "vssps-app", "status", "www",
                       "marketplace"})
ORG_URL_FORMS = "https://dev.azure.com/ORG or https://ORG.visualstudio.com"


def valid_org_name(name: str) -> bool:
    """Azure DevOps organization names: letters, digits and hyphens, starting and ending with a
    letter or digit, at most 50 characters (checked without `re`, which `get` cannot afford)."""
    return (0 < len(name) <= 50 and set(name) <= _ORG_CHARS
            and not name.startswith("-") and not name.endswith("-"))


class Org:
    """An Azure DevOps organization, named the way its URLs name it, in lower case."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Org) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Org({self.name!r})"

    @property
    def url(self) -> str:
        return f"https://{ORG_HOST}/{self.name}"


def _host_without_default_port(host: str) -> str:
    host = host.lower()
    return host[: -len(":443")] if host.endswith(":443") else host


def account_hint(username: str | None, org: Org) -> str:
    """The Entra account a remote's user name asks for, if it names one.

    Azure DevOps' own clone URLs put the organization name before the `@`; only a user name that
    looks like a UPN (`alice@contoso.com`, written `alice%40contoso.com@` in the URL) picks an
    account.
    """
    if username and "@" in username and username.lower() != org.name:
        return username
    return ""


def azure_org(protocol: str, host: str, path: str | None, username: str | None) -> Org | None:
    """The organization a request is for, or None when the remote is not Azure DevOps.

    Raises when the remote is `dev.azure.com` but names no organization: git withholds the path
    unless `useHttpPath` is set, and guessing would hand one organization's PAT to another.
    """
    if protocol != "https":
        return None
    host = _host_without_default_port(host)
    if host.endswith(_VISUALSTUDIO):
        name = host[: -len(_VISUALSTUDIO)]
        return Org(name) if valid_org_name(name) and name not in _NOT_ORGS else None
    if host != ORG_HOST:
        return None
    candidates = [path.split("/", 1)[0]] if path else []
    if username and "@" not in username:
        candidates.append(username)
    for candidate in candidates:
        name = candidate.lower()
        if valid_org_name(name):
            return Org(name)
    raise HelperError(
        "git did not say which Azure DevOps organization this is for; run "
        "`git config --global credential.https://dev.azure.com.useHttpPath true` "
        "(or `git credential-pat configure`)"
    )


def org_of_url(url: str) -> Org | None:
    """The organization of a whole HTTPS URL (a remote, a command's argument), or None when it
    is not Azure DevOps; a password in it is registered as a secret first."""
    from urllib.parse import unquote, urlsplit

    from git_credential_pat.core import redact

    parts = urlsplit(url.strip())
    redact.secret(parts.password)
    host = parts.netloc.rpartition("@")[2]
    if not host:
        return None
    username = unquote(parts.username) if parts.username is not None else None
    return azure_org(parts.scheme.lower(), host, unquote(parts.path).lstrip("/"), username)


def parse_org(text: str) -> Org:
    """The organization a command-line argument names: a URL or the bare name."""
    if "://" not in text and valid_org_name(text.strip().lower()):
        return Org(text.strip().lower())
    try:
        org = org_of_url(text)
    except (HelperError, ValueError):  # dev.azure.com with no organization; a bad port
        org = None
    if org is None:
        from git_credential_pat.core.redact import show

        raise UsageError(f"{show(text)!r} is not an Azure DevOps organization; "
                         f"give {ORG_URL_FORMS}")
    return org
