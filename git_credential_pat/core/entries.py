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


def load(text: str | None) -> Item:
    """Parse a stored item; an unreadable one counts as empty rather than breaking git."""
    if text:
        try:
            item = parse_json(text)
        except (ValueError, StopIteration, SystemError, RecursionError):  # what the scanner raises
            item = None
        if isinstance(item, dict) and isinstance(item.get("credentials"), list):
            return item
    return {"v": FORMAT_VERSION, "credentials": []}


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
