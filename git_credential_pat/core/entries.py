"""What the store keeps under one key, and git's rules for matching it.

Each keyring item holds every credential for one place: an Azure DevOps organization, or one
`protocol://host` for everything else, so `get` is one exact-key look-up however many credentials
exist. Matching follows git's own storage helpers (credential.c `credential_match`): a field the
request leaves out matches anything, a field it gives (even empty) must be equal.
"""

from __future__ import annotations

from git_credential_pat.core.protocol import Message

TYPE_CHECKING = False
if TYPE_CHECKING:  # types only: `typing` costs `get` milliseconds at start-up
    from collections.abc import Callable
    from typing import TypedDict

    class PatInfo(TypedDict, total=False):
        """What the helper knows of a PAT it minted (absent for one typed at git's prompt)."""

        minted: bool
        id: str  # the authorization id the PAT API knows it by
        scope: str
        name: str  # its display name
        valid_from: int

    class Entry(TypedDict, total=False):
        """One credential, with the fields git's protocol gives it."""

        username: str
        password: str
        path: str
        password_expiry_utc: int
        oauth_refresh_token: str
        authtype: str
        credential: str
        pat: PatInfo

    class OrgInfo(TypedDict, total=False):
        """What an organization's item remembers besides its PATs."""

        tenant: str
        account: str  # the Entra account that signed in last
        fallback: str  # the PAT API's reason for answering with the access token instead
        sweep_due: int  # when revoking replaced or orphaned PATs is owed

    class Item(TypedDict, total=False):
        v: int
        credentials: list[Entry]
        org: OrgInfo

FORMAT_VERSION = 1
MATCHED_FIELDS = ("path", "username")
KEPT_FIELDS = ("username", "password", "path", "password_expiry_utc", "oauth_refresh_token",
               "authtype", "credential")


def item_key(protocol: str, host: str) -> str:
    return f"{protocol}://{host.lower()}"


def parse_json(text: str) -> object:
    """JSON without importing `json`, whose regular expressions cost `get` ~15 ms at start-up;
    CPython's C scanner does the same work. Other interpreters use `json`."""
    try:
        from _json import make_scanner
    except ImportError:
        import json

        return json.loads(text)

    class Context:
        strict = True
        object_hook = object_pairs_hook = None
        parse_float, parse_int, memo = float, int, {}

        @staticmethod
        def parse_constant(name: str) -> float:
            return float(name)

    value, end = make_scanner(Context)(text, 0)
    if text[end:].strip():
        raise ValueError("trailing data")
    return value


_TEXT_FIELDS = ("username", "password", "path", "oauth_refresh_token", "authtype",
                "credential")
_PAT_FIELDS = {"minted": bool, "id": str, "scope": str, "name": str, "valid_from": int}
_ORG_FIELDS = {"tenant": str, "account": str, "fallback": str, "sweep_due": int}


def empty() -> Item:
    return {"v": FORMAT_VERSION, "credentials": []}


def load(text: str | None, report: Callable[[str], None] | None = None) -> Item:
    """Parse a stored item. One that does not parse, or parses to another shape than the one
    `dump` writes, counts as empty rather than breaking git on every request: `report` is told
    why, and the next store replaces it."""
    if not text:
        return empty()
    try:
        item = parse_json(text)
    except (ValueError, StopIteration, SystemError, RecursionError):  # what the scanner raises
        why = "a chunk count out of range" if text.startswith("chunked:") else "not JSON"
    else:
        why = shape_problem(item)
        if not why:
            return item  # type: ignore[return-value]
    if report:
        report(why)
    return empty()


def shape_problem(item: object) -> str:
    """What keeps a parsed item from being one `dump` could have written, or ""."""
    if not isinstance(item, dict):
        return "not an object"
    credentials = item.get("credentials")
    if not isinstance(credentials, list):
        return "no list of credentials"
    for entry in credentials:
        why = _entry_problem(entry)
        if why:
            return why
    if "org" in item:
        return _fields_problem(item["org"], _ORG_FIELDS, "the organization's part")
    return ""


def _entry_problem(entry: object) -> str:
    if not isinstance(entry, dict):
        return "a credential that is not an object"
    if not isinstance(entry.get("password"), str):
        return "a credential without a password"
    for name in _TEXT_FIELDS:
        if name in entry and not isinstance(entry[name], str):
            return f"a credential whose {name} is not text"
    expiry = entry.get("password_expiry_utc")
    if expiry is not None and not _is_int(expiry):
        return "a credential whose password_expiry_utc is not a number"
    if "pat" in entry:
        return _fields_problem(entry["pat"], _PAT_FIELDS, "a credential's PAT details")
    return ""


def _fields_problem(part: object, kinds: dict[str, type], what: str) -> str:
    if not isinstance(part, dict):
        return f"{what} not an object"
    for name, kind in kinds.items():
        if name in part and not (_is_int(part[name]) if kind is int
                                 else isinstance(part[name], kind)):
            return f"{what} with a wrong {name}"
    return ""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pat_of(entry: Entry) -> PatInfo:
    """The PAT details of a credential; empty for one this helper did not mint."""
    return entry.get("pat") or {}


def minted(entry: Entry) -> bool:
    return bool(pat_of(entry).get("minted"))


def pat_id(entry: Entry) -> str:
    return pat_of(entry).get("id", "")


def org_of(item: Item) -> OrgInfo:
    """The organization's part of an item, created empty so that it can be changed in place."""
    return item.setdefault("org", {})


def stored_ids(item: Item) -> set[str]:
    """The authorization ids of the PATs an item holds."""
    return {pat_id(e) for e in item["credentials"]} - {""}


def dump(item: Item) -> str:
    import json

    return json.dumps(item, separators=(",", ":"), sort_keys=True)


def expired(entry: Entry, now: float) -> bool:
    expiry = entry.get("password_expiry_utc")
    return expiry is not None and int(expiry) <= now


def matches(entry: Entry, request: Message, *, with_password: bool = False) -> bool:
    names = (*MATCHED_FIELDS, "password") if with_password else MATCHED_FIELDS
    for name in names:
        wanted = request.get(name)
        if wanted is not None and entry.get(name) != wanted:
            return False
    return True


def find(item: Item, request: Message, now: float) -> Entry | None:
    for entry in item["credentials"]:
        if matches(entry, request) and not expired(entry, now):
            return entry
    return None


def entry_from(request: Message) -> Entry:
    """The part of a `store` request worth keeping."""
    entry: Entry = {k: request.get(k) for k in KEPT_FIELDS if request.get(k) is not None}
    if "password_expiry_utc" in entry:
        try:
            entry["password_expiry_utc"] = int(entry["password_expiry_utc"])
        except ValueError:
            del entry["password_expiry_utc"]
    return entry


def put(item: Item, entry: Entry) -> None:
    """Replace the credential with the same path and user name, as git's store helpers do."""
    same = {name: entry.get(name) for name in MATCHED_FIELDS}
    item["credentials"] = [
        old for old in item["credentials"]
        if any(old.get(name) != value for name, value in same.items())
    ] + [entry]


def matching(item: Item, request: Message) -> list[Entry]:
    """The credentials an erase request names (password included)."""
    return [e for e in item["credentials"] if matches(e, request, with_password=True)]


def remove(item: Item, request: Message) -> list[Entry]:
    """Drop every credential the erase request matches; return them."""
    gone = matching(item, request)
    item["credentials"] = [e for e in item["credentials"] if e not in gone]
    return gone


def answer(entry: Entry, request: Message) -> list[tuple[str, str]]:
    """The protocol answer for a stored credential.

    `authtype`/`credential` go only to a git that announced `capability[]=authtype`, and then
    the capability is echoed first, as git-credential(1) requires.
    """
    pairs: list[tuple[str, str]] = []
    if entry.get("authtype") and "authtype" in request.values("capability[]"):
        pairs.append(("capability[]", "authtype"))
        pairs += [(k, str(entry[k])) for k in ("authtype", "credential") if k in entry]
    pairs += [(k, str(entry[k])) for k in ("username", "password", "password_expiry_utc",
                                            "oauth_refresh_token") if k in entry]
    return pairs
