"""Hardening against bad input: whatever reaches stdin, and whatever a server answers.

Properties (hypothesis) of the wire format and the remote parser, then the whole decision
(`helper.handle`, in-process with a real file store) thrown at generated requests while one
credential is stored for a plain host and one PAT for an organization: an answer, if any, is
always for exactly the host it was stored for. A bounded fuzzing run does the same at scale;
the inputs it ever found worth keeping live in `tests/regressions/` and are replayed through
the real executable. Last, hostile server answers end to end, through git.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from git_credential_pat.actions import helper, mint as minting
from git_credential_pat.actions.context import Runtime
from git_credential_pat.core import protocol, remote
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.protocol import Message, ProtocolError
from tests.azurefixtures import REPO_URL
from tests.conftest import BIN
from tests.fakeazure import FakeAzure
from tests.fakeazure.ca import make_certificates
from tests.gitenv import GitEnv, parse_answer
from tests.hardening import assert_no_orphan_pats, assert_one_clean_line, stored_item

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
PLAIN_HOST = "git.example.com"
PLAIN_SECRET = "plain-secret-for-git-example-com"
PAT_SECRET = "pat-secret-for-the-contoso-organization"
ALICE = "alice@contoso.com"
# Where each stored secret may go: the host as git would send it for that remote.
PLAIN_OK = {("https", PLAIN_HOST)}
CONTOSO_HOSTS = {"dev.azure.com", "dev.azure.com:443", "contoso.visualstudio.com",
                 "contoso.visualstudio.com:443"}

LOOKALIKE_HOSTS = [
    "dev.azure.com", "DEV.AZURE.COM", "Dev.Azure.Com:443", "dev.azure.com.", "dev.azure.com:443",
    "dev.azure.com:8443", "dev.azure.com:", "dev.azure.com.evil.test", "xdev.azure.com",
    "dev.azure.co", "dev-azure.com", "dev.\u0430zure.com", "xn--dev-zure-6wf.com",
    "evil.test@dev.azure.com", "dev.azure.com@evil.test", "dev.azure.com/contoso",
    "DEV.AZURE.COM/CONTOSO", "dev.azure.com%2fcontoso", "dev.azure.com\\contoso",
    "dev.azure.com#contoso", "dev.azure.com?contoso", "dev.azure.com contoso",
    "contoso.visualstudio.com", "CONTOSO.VISUALSTUDIO.COM", "contoso.visualstudio.com.",
    "contoso.visualstudio.com:443", "contoso.visualstudio.com:80",
    "contoso.visualstudio.com.evil.test", "contoso.vssps.visualstudio.com",
    "evil.test/contoso.visualstudio.com", "contoso.visualstudio.com/x", "visualstudio.com",
    ".visualstudio.com", "fabrikam.visualstudio.com", "con\u0442oso.visualstudio.com",
    PLAIN_HOST, PLAIN_HOST.upper(), f"{PLAIN_HOST}.", f"{PLAIN_HOST}:443", f"{PLAIN_HOST}:22",
    f"{PLAIN_HOST}.evil.test", f"evil.test/{PLAIN_HOST}", f"{PLAIN_HOST}/x", f"u@{PLAIN_HOST}",
    "[::1]", "127.0.0.1", "localhost", "*", "-", "..",
]
PROTOCOLS = ["https", "http", "HTTPS", "Https", "ssh", "git", "file", "cert", "https ", " https",
             "https:", "https://", "-c", "--file=/etc/passwd"]
PATHS = [None, "", "contoso", "contoso/proj/_git/repo", "CONTOSO/proj", "fabrikam/proj",
         "/contoso", "../contoso", "contoso/../fabrikam", "-", "fabrikam/contoso",
         "contoso%0ahost=evil.test", "contoso%2f..", "con toso", "contoso\t"]
USERNAMES = [None, "", "contoso", "CONTOSO", "fabrikam", ALICE, "bob@contoso.com",
             "alice%40contoso.com", "u", "contoso@dev.azure.com", "a:b"]

# Text as git may pass it on: any bytes, invalid UTF-8 included (kept as lone surrogates).
raw_text = st.binary(min_size=1, max_size=16).map(lambda b: b.decode("utf-8", "surrogateescape"))
hosts = st.one_of(st.sampled_from(LOOKALIKE_HOSTS), st.text(min_size=1, max_size=30), raw_text)
optional_text = st.one_of(st.none(), st.text(max_size=20))


# -- the wire format ------------------------------------------------------------------------------

def safe(value: str) -> bool:
    return not any(c in value for c in "\n\r\0")


@given(st.binary(max_size=300))
@example(b"url=https://[x/\n")
@example(b"url=https://dev.azure.com%2Fcontoso/x\n")
@example(b"protocol=https\nhost=h\r\n")
@example(b"url=https://h/%0d%0ahost=evil\n")
def test_any_bytes_parse_to_a_clean_message_or_a_protocol_error(data: bytes) -> None:
    check_parse(data)


def check_parse(data: bytes) -> None:
    try:
        message = protocol.parse(data)
    except ProtocolError:
        return
    assert message.get("protocol") and message.get("host")
    for key, value in message.attrs.items():
        assert safe(key) and safe(value)
    for key, values in message.lists.items():
        assert safe(key) and all(safe(v) for v in values)


lines = st.lists(st.tuples(
    st.sampled_from(["protocol", "host", "path", "username", "password", "url", "wwwauth[]",
                     "capability[]", "password_expiry_utc", "ephemeral", "x"]),
    st.one_of(st.sampled_from(LOOKALIKE_HOSTS + PROTOCOLS), st.text(max_size=40), raw_text,
              st.sampled_from(["https://%0ahost=evil/", "https://a%0d@h/", "https://h/%00",
                               "https://[::1", "https://u:p@h:99999/", "https://\u00e9.test/",
                               "https://h\\@evil/", "https:///x", "https:h"]))),
    max_size=8)


@given(lines)
def test_structured_requests_parse_to_a_clean_message_or_a_protocol_error(
        pairs: list[tuple[str, str]]) -> None:
    check_parse("".join(f"{k}={v}\n" for k, v in pairs).encode("utf-8", "surrogateescape"))


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=6))
def test_writing_never_emits_a_line_break_inside_a_value(pairs: list[tuple[str, str]]) -> None:
    try:
        out = protocol.format(pairs)
    except ProtocolError:
        assert any(not safe(k) or "=" in k or not safe(v) for k, v in pairs)
        return
    written = out.split(b"\n")
    assert written[-1] == b"" and len(written) == len(pairs) + 1
    for line, (key, value) in zip(written, pairs):
        assert line == f"{key}={value}".encode("utf-8", "surrogateescape")


# -- the remote parser ----------------------------------------------------------------------------

@given(st.one_of(st.sampled_from(PROTOCOLS), st.text(max_size=8)), hosts,
       st.one_of(st.sampled_from(PATHS), optional_text),
       st.one_of(st.sampled_from(USERNAMES), optional_text))
def test_only_exact_azure_devops_https_hosts_are_organizations(
        scheme: str, host: str, path: str | None, username: str | None) -> None:
    try:
        org = remote.azure_org(scheme, host, path, username)
    except HelperError:
        assert scheme == "https" and host.lower().removesuffix(":443") == "dev.azure.com"
        return
    if org is None:
        return
    assert scheme == "https"
    bare = host.lower().removesuffix(":443")
    assert remote.valid_org_name(org.name)
    assert bare in ("dev.azure.com", f"{org.name}.visualstudio.com")
    if bare == "dev.azure.com":
        first = (path or "").split("/", 1)[0].lower()
        assert org.name == first or (not remote.valid_org_name(first)
                                     and org.name == (username or "").lower())
    hint = remote.account_hint(username, org)
    assert hint in ("", username)
    assert not hint or "@" in hint


# -- the whole decision, in-process ---------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A Runtime on an isolated git config and file store holding one plain credential and one
    PAT; minting is replaced by a recorder, so a miss costs nothing and leaves no process."""
    home = tmp_path_factory.mktemp("inproc")
    (home / ".gitconfig").write_text("")
    said: list[str] = []
    environ = {"GIT_CREDENTIAL_PAT_STORE": "file",
               "GIT_CREDENTIAL_PAT_STORE_FILE": str(home / "credentials.json")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        patch.setattr(minting, "obtain", lambda context, *_: [("minted-for", context.org.name)])
        made = Runtime(environ=environ, say=said.append)
        expiry = str(int(time.time()) + 30 * 86400)
        for request in (
            f"protocol=https\nhost={PLAIN_HOST}\nusername=u\npassword={PLAIN_SECRET}\n",
            f"protocol=https\nhost=dev.azure.com\npath=contoso/proj/_git/repo\nusername={ALICE}"
            f"\npassword={PAT_SECRET}\npassword_expiry_utc={expiry}\n",
        ):
            helper.handle("store", protocol.parse(request.encode()), made)
        store_file = home / "credentials.json"
        saved = store_file.read_bytes()
        made.restore = lambda: store_file.write_bytes(saved)
        yield made


def check_answer(request: Message, answer: list[tuple[str, str]]) -> None:
    """The invariant: a secret goes only to the place it was stored for."""
    protocol.format(answer)  # never a value that breaks a line
    got = dict(answer)
    scheme, host = request.get("protocol"), request.get("host") or ""
    if got.get("password") == PLAIN_SECRET:
        assert (scheme, host.lower()) in PLAIN_OK, request
    elif got.get("password") == PAT_SECRET:
        assert scheme == "https" and host.lower() in CONTOSO_HOSTS, request
        if host.lower().startswith("dev.azure.com"):
            # The organization is the path's first segment, or the user name when that is not
            # an organization name (git leaves the path out without useHttpPath).
            first = (request.get("path") or "").split("/", 1)[0].lower()
            assert first == "contoso" or (not remote.valid_org_name(first) and (
                request.get("username") or "").lower() == "contoso"), request
    elif "minted-for" in got:
        assert scheme == "https"
    else:
        assert "password" not in got, (request, answer)


def run_in_process(world: Runtime, action: str, data: bytes) -> None:
    try:
        request = protocol.parse(data)
        answer = helper.handle(action, request, world)
    except (ProtocolError, HelperError):
        return
    check_answer(request, answer)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PROTOCOLS[:4]), hosts, st.sampled_from(PATHS), st.sampled_from(USERNAMES))
@example("https", "dev.azure.com/contoso", None, None)
@example("https", "DEV.AZURE.COM/CONTOSO", None, None)
@example("https", "git.example.com/x", None, None)
def test_a_stored_secret_is_only_ever_answered_for_its_own_host(
        world: Runtime, scheme: str, host: str, path: str | None,
        username: str | None) -> None:
    request = f"protocol={scheme}\nhost={host}\n"
    request += "" if path is None else f"path={path}\n"
    request += "" if username is None else f"username={username}\n"
    run_in_process(world, "get", request.encode("utf-8", "surrogateescape"))


def test_the_stored_secrets_are_answered_where_they_belong(world: Runtime) -> None:
    """The positive side of the property above, so that it cannot pass by answering nothing."""
    check_both_answered(world)


def check_both_answered(world: Runtime) -> None:
    plain = helper.handle("get", protocol.parse(f"protocol=https\nhost={PLAIN_HOST}\n".encode()),
                          world)
    assert dict(plain)["password"] == PLAIN_SECRET
    for request in (b"protocol=https\nhost=dev.azure.com\npath=contoso/x\n",
                    b"protocol=https\nhost=CONTOSO.visualstudio.com:443\n",
                    b"url=https://contoso@dev.azure.com/contoso/proj/_git/repo\n"):
        assert dict(helper.handle("get", protocol.parse(request), world))["password"] == \
            PAT_SECRET


# -- a bounded fuzzing run ------------------------------------------------------------------------

fuzz_inputs = st.one_of(
    st.binary(max_size=400),
    lines.map(lambda pairs: "".join(f"{k}={v}\n" for k, v in pairs).encode(
        "utf-8", "surrogateescape")),
    st.tuples(st.sampled_from(PROTOCOLS), hosts, st.sampled_from(PATHS),
              st.sampled_from(USERNAMES), st.binary(max_size=40)).map(
        lambda t: (f"protocol={t[0]}\nhost={t[1]}\n"
                   + ("" if t[2] is None else f"path={t[2]}\n")
                   + ("" if t[3] is None else f"username={t[3]}\n")).encode(
            "utf-8", "surrogateescape") + t[4]),
)


@settings(max_examples=1200, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(["get", "get", "get", "store", "erase"]), fuzz_inputs)
def test_fuzz_every_action_with_generated_input(world: Runtime, action: str,
                                                 data: bytes) -> None:
    """Bounded (1,200 inputs, about 10 s): a finding is kept in tests/regressions/ as a .bin
    file, replayed below through the real executable."""
    if action != "get":
        # store/erase may only ever change the item of the request's own place, so the two
        # stored secrets must still be answered afterwards unless the request was theirs.
        try:
            request = protocol.parse(data)
        except ProtocolError:
            return
        if (request.get("host") or "").lower() in CONTOSO_HOSTS | {PLAIN_HOST}:
            return
    run_in_process(world, action, data)
    if action != "get":
        check_both_answered(world)


# -- through the real executable ------------------------------------------------------------------

STORE_BOTH = (
    f"protocol=https\nhost={PLAIN_HOST}\nusername=u\npassword={PLAIN_SECRET}\n\n",
    f"protocol=https\nhost=dev.azure.com\npath=contoso/proj\nusername={ALICE}\n"
    f"password={PAT_SECRET}\npassword_expiry_utc=4102444800\n\n",
)


def executable_env(tmp: Path) -> GitEnv:
    """A file store holding one plain password and one organization's PAT; a miss for any
    other organization fails at once (a pinned tenant, no person to sign in, and a proxy that
    is not there), so no input can reach the network."""
    env = GitEnv.create(tmp, BIN)
    env.env.update(GIT_CREDENTIAL_PAT_INTERACTIVE="never", GIT_CREDENTIAL_PAT_TENANT="t.example",
                   GIT_CREDENTIAL_PAT_TIMEOUT="2")
    env.config("http.proxy", "http://127.0.0.1:9")
    for request in STORE_BOTH:
        assert env.helper("store", request).returncode == 0
    return env


@pytest.fixture(scope="module")
def exe_env(tmp_path_factory: pytest.TempPathFactory) -> GitEnv:
    return executable_env(tmp_path_factory.mktemp("exe"))


def run_executable(env: GitEnv, data: bytes, action: str = "get") -> None:
    """What git sees from the helper for any stdin: exit 0 with a well-formed answer (maybe
    empty) for the place asked about, or exit 1 with one printable line on stderr and nothing
    on stdout but, for an Azure DevOps get it could not answer, git's `quit=1`."""
    done = env.helper(action, data, timeout=30)
    assert b"Traceback" not in done.stderr, done.stderr
    if done.returncode == 0:
        assert done.stderr == b"", done.stderr
        assert done.stdout == b"" or done.stdout.endswith(b"\n")
        pairs = []
        for line in done.stdout.splitlines():
            key, sep, value = line.partition(b"=")
            assert sep and key and b"\r" not in line and b"\0" not in line
            pairs.append((key.decode(), value.decode("utf-8", "surrogateescape")))
        if pairs:
            check_answer(protocol.parse(data), pairs)
    else:
        assert done.returncode == 1
        assert done.stdout == b"" or (action == "get" and done.stdout == b"quit=1\n")
        line = assert_one_clean_line(done.stderr)
        assert "internal error" not in line, line


@settings(max_examples=25, deadline=None)
@given(fuzz_inputs)
@example(b"protocol=https\nhost=git.example.com\n")
@example(b"protocol=https\nhost=dev.azure.com\npath=fabrikam/p\n")
@example(b"url=https://[::1\n")
@example(b"url=https://%1b%5b2J%1b%5d0%3bt%07%40x@dev.azure.com/fabrikam/p\n")  # escapes shown
@example(b"protocol=https\nhost=dev.azure.com\npath=fabrik\x1bcam/p\nusername=\x1b[2J@x\n")
@example(b"protocol=https\nhost=" + b"h" * 65536 + b"\n")
@example(b"x=y\n" * 5000)
@example(b"protocol=https\nhost=git.example.com")  # no final newline
@example(b"\n")
@example(b"")
def test_the_executable_answers_any_stdin_well_formed_or_not_at_all(
        exe_env: GitEnv, data: bytes) -> None:
    run_executable(exe_env, data)


def test_the_line_limit_is_git_s_65535_bytes(exe_env: GitEnv) -> None:
    head = b"protocol=https\nhost=git.example.com\n"
    fits = head + b"path=" + b"p" * (65535 - len("path=")) + b"\n\n"
    too_long = head + b"path=" + b"p" * (65536 - len("path=")) + b"\n\n"
    assert exe_env.helper("get", fits).returncode == 0
    done = exe_env.helper("get", too_long)
    assert done.returncode == 1 and done.stdout == b""
    assert_one_clean_line(done.stderr, "longer than 65535 bytes")


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.bin")), ids=lambda p: p.stem)
def test_kept_fuzz_findings_replay_cleanly(tmp_path: Path, path: Path) -> None:
    """Each kept input, as get, store and erase; the stored secrets are intact afterwards."""
    env = executable_env(tmp_path)
    for action in ("get", "store", "erase"):
        run_executable(env, path.read_bytes(), action)
    for request, secret in ((f"protocol=https\nhost={PLAIN_HOST}\n\n", PLAIN_SECRET),
                            ("protocol=https\nhost=dev.azure.com\npath=contoso\n\n",
                             PAT_SECRET)):
        assert parse_answer(env.helper("get", request).stdout).get("password") == secret


# -- hostile server answers, end to end -----------------------------------------------------------

def ls_remote(env: GitEnv, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return env.git("ls-remote", REPO_URL, check=False, **kwargs)  # type: ignore[arg-type]


HTML_PORTAL = ("<!DOCTYPE html><html><head><title>Contoso Web Gateway - Sign in</title></head>"
               "<body><form>...</form></body></html>")


@pytest.mark.parametrize(("body", "content_type", "says"), [
    (HTML_PORTAL, "text/html", "an HTML page titled 'Contoso Web Gateway - Sign in'"),
    ('{"patToken": {"authorizationId": "3b1e', "application/json",
     "a cut-short or malformed JSON body"),
    ('{"patToken": null, "x": "' + "a" * (2 * 1024 * 1024) + '"}', "application/json",
     "a body larger than 1 MiB"),
], ids=["html", "truncated", "huge"])
def test_a_pat_create_answer_that_is_not_the_api_fails_git_cleanly(
        hardened: GitEnv, azure: FakeAzure, body: str, content_type: str, says: str) -> None:
    azure.fail("pat_create", status=200, body=body, content_type=content_type)
    done = ls_remote(hardened)
    assert done.returncode != 0 and done.stdout == b""
    assert_one_clean_line(done.stderr, "expected the result of creating a PAT", says,
                          "vssps.dev.azure.com")
    assert_no_orphan_pats(azure, hardened)
    assert ls_remote(hardened).returncode == 0  # and nothing was left half-done


@pytest.mark.parametrize(("fields", "says"), [
    ({"token": None}, "no usable token"),
    ({"token": ""}, "no usable token"),
    ({"token": 12345}, "no usable token"),
    ({"token": "two\nlines"}, "no usable token"),
    ({"validTo": "2001-01-01T00:00:00Z"}, "an expiry that has passed"),
    ({"validTo": None}, "a PAT without an id or dates"),
], ids=["null", "empty", "number", "newline", "expired", "no-expiry"])
def test_a_pat_created_but_described_unusably_is_revoked_and_never_stored(
        hardened: GitEnv, azure: FakeAzure, fields: dict, says: str) -> None:
    azure.bad_create_answer(**fields)
    done = ls_remote(hardened)
    assert done.returncode != 0 and done.stdout == b""
    assert_one_clean_line(done.stderr, "Azure DevOps answered the creation of a PAT for "
                          f"contoso with {says}; it was revoked; try again later")
    [pat] = azure.pats
    assert pat.revoked and stored_item(hardened)["credentials"] == []
    assert ls_remote(hardened).returncode == 0  # the service is fixed: the next one works
    assert_no_orphan_pats(azure, hardened)


def test_a_redirect_of_the_pat_api_is_not_followed_and_no_token_leaves(
        hardened: GitEnv, azure: FakeAzure) -> None:
    azure.redirect("pat_create", "https://collector.evil.test/_apis/tokens/pats")
    done = ls_remote(hardened)
    assert done.returncode != 0
    assert_one_clean_line(done.stderr, "redirected to collector.evil.test", "not following it")
    assert not [c for c in azure.proxy.connects if "evil" in c]  # type: ignore[union-attr]
    assert azure.refused == []
    assert azure.minted_count() == 0


def test_a_tls_failure_is_one_line_that_says_how_to_trust_the_ca(
        hardened: GitEnv, azure: FakeAzure, tmp_path: Path) -> None:
    """git itself makes no request for `credential fill`, so only the helper meets the
    certificate, which this CA did not sign."""
    other = make_certificates(tmp_path / "other-ca")
    hardened.config("http.sslCAInfo", str(other.ca))
    done = hardened.git("credential", "fill", input=f"url={REPO_URL}\n\n", check=False)
    assert done.returncode != 0 and done.stdout == b""
    assert_one_clean_line(done.stderr, "is not trusted", "http.sslCAInfo")
    assert azure.requests == [] and azure.minted_count() == 0
