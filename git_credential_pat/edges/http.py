"""Every HTTP request the helper makes goes through here, so every one behaves the same way.

git's own proxy and CA settings apply (a corporate proxy or TLS-inspecting CA works for the helper
exactly when it works for `git fetch`), nothing ever follows a redirect (a bearer token must not
travel to whatever host a 3xx names), transient failures are retried within the caller's time
budget, and every failure becomes one line that names the host and what the helper was doing,
never a URL query, header or body that could carry a secret.

A timeout given to requests bounds each socket read, not the exchange: a server that drips a
body a byte at a time would keep the helper (and git) waiting for ever. So each attempt in
`call`, its body included, also runs against the call's one deadline (`_within`), enforced
with a real-time alarm where the platform has one (POSIX, on the main thread).
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import signal
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from urllib.parse import urljoin, urlsplit

import requests

from git_credential_pat import __version__
from git_credential_pat.core.errors import HelperError
from git_credential_pat.core.redact import printable, secret
from git_credential_pat.core.settings import Settings
from git_credential_pat.edges import trace

USER_AGENT = f"git-credential-pat/{__version__}"
MAX_BODY = 1024 * 1024
MAX_ATTEMPTS = 4
MAX_TOTAL_WAIT = 30.0
CONNECT_TIMEOUT = 10.0
FIRST_BACKOFF = 0.25
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Session(requests.Session):
    """A requests session that never follows redirects and never waits forever.

    msal receives this session as its `http_client` and calls it without a timeout and with
    redirects on; both defaults are unsafe for a helper that git waits on while holding tokens.
    """

    default_timeout: float = 30.0

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", (min(CONNECT_TIMEOUT, self.default_timeout),
                                      self.default_timeout))
        # Per request, or requests lets REQUESTS_CA_BUNDLE override git's http.sslCAInfo.
        kwargs.setdefault("verify", self.verify)
        where = f"{method} {host_of(url)}{urlsplit(url).path}"
        started = time.monotonic()
        try:
            response = super().request(method, url, **kwargs)  # type: ignore[arg-type]
        except requests.RequestException as error:
            trace.log(f"{where} -> {type(error).__name__} after {_ms_since(started)} ms")
            raise
        trace.log(f"{where} -> {response.status_code} in {_ms_since(started)} ms")
        return response

    def get_redirect_target(self, resp: requests.Response) -> None:  # type: ignore[override]
        return None


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def new_session(settings: Settings) -> requests.Session:
    """A session that honours git's `http.proxy`, `http.sslCAInfo` and `http.sslVerify`.

    As in git, `http.sslVerify=false` wins over a CA file, and `http.proxy` over the
    environment's proxy variables (which apply, with NO_PROXY, only when it is unset).
    """
    session = _Session()
    session.default_timeout = float(settings.timeout)
    session.headers["User-Agent"] = USER_AGENT
    if settings.proxy:
        proxy = settings.proxy if "://" in settings.proxy else f"http://{settings.proxy}"
        secret(urlsplit(proxy).password)
        # git's http.proxy overrides the environment, which requests would otherwise let win.
        session.trust_env = False
        session.proxies = {"http": proxy, "https": proxy}
    if not settings.ssl_verify:
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        warnings.simplefilter("ignore", InsecureRequestWarning)
        session.verify = False
        trace.log("TLS certificate checks are off (http.sslVerify=false or GIT_SSL_NO_VERIFY)")
    elif settings.ca_file:
        session.verify = settings.ca_file
    return session


def host_of(url: str) -> str:
    """The host a URL names; a server's malformed one (an unbalanced `[`) is not an error."""
    try:
        return urlsplit(url).hostname or "the server"
    except ValueError:
        return "a malformed address"


def call(session: requests.Session, method: str, url: str, *, step: str, timeout: float,
         **kwargs: object) -> requests.Response:
    """Send one request, retrying what is worth retrying, all within `timeout` seconds.

    Returns any 1xx, 2xx or 4xx response for the caller to judge (a 401 or 404 means something
    different to each caller); raises `HelperError` for redirects, TLS failures, and for
    connection failures, 429 and 5xx once retries or the time budget run out.
    """
    _note_secrets(kwargs.get("headers"))
    host = host_of(url)
    deadline = time.monotonic() + timeout
    waited = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        left = deadline - time.monotonic()
        try:
            response = _send(session, method, url, left, kwargs)
        except requests.exceptions.SSLError as error:
            raise _tls_failure(host, error) from None
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as error:
            failure = _connection_failure(session, host, step, error)
            pause = _backoff(attempt)
        else:
            if 300 <= response.status_code < 400:
                raise _redirect_failure(host, step, response)
            if response.status_code not in RETRY_STATUSES:
                return response
            failure = _status_failure(host, step, response)
            pause = _retry_after(response.headers.get("Retry-After")) or _backoff(attempt)
        left = deadline - time.monotonic()
        if attempt == MAX_ATTEMPTS or waited + pause > MAX_TOTAL_WAIT or pause >= left:
            raise failure
        trace.log(f"{failure}; retrying in {pause:.1f} s")
        time.sleep(pause)
        waited += pause
    raise AssertionError("unreachable: the last attempt returns or raises")


def _send(session: requests.Session, method: str, url: str, left: float,
          kwargs: Mapping[str, object]) -> requests.Response:
    """One attempt, reading at most MAX_BODY + 1 bytes so that a runaway body cannot fill
    memory; `json_of` then reports it as too large."""
    if left <= 0:
        raise requests.Timeout("the time budget is spent")
    body = bytearray()
    with _within(left):
        response = session.request(method, url, timeout=(min(CONNECT_TIMEOUT, left), left),
                                   allow_redirects=False, stream=True,
                                   **kwargs)  # type: ignore[arg-type]
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_BODY:
                    break
        finally:
            response.close()
    response._content = bytes(body)  # where requests keeps a body it has read: `.content` works
    return response


class _Overdue(BaseException):
    """The deadline passed. A BaseException, so that no `except OSError` in urllib3 or msal
    takes it for a connection failure and retries; `_within` turns it into a timeout."""


_bounding = False  # a deadline is in force: an inner `_within` must not replace it


@contextlib.contextmanager
def _within(seconds: float) -> Iterator[None]:
    """Raise `requests.Timeout` if the block takes longer than `seconds` (0: no bound), reads
    included. Where there is no real-time alarm (Windows, or off the main thread) only each
    read is bounded."""
    global _bounding
    if (seconds <= 0 or _bounding or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    armed = [True]  # an alarm after the block, before it is cancelled, must not escape

    def expire(signum: int, frame: object) -> None:
        if armed[0]:
            raise _Overdue

    previous = signal.signal(signal.SIGALRM, expire)
    _bounding = True
    earlier = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            yield
        finally:
            armed[0] = False
    except _Overdue:
        raise requests.Timeout(f"no complete answer within {seconds:.0f} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _bounding = False
        if earlier[0]:  # a timer someone else set: its time runs on, less ours
            signal.setitimer(signal.ITIMER_REAL, max(0.001, earlier[0] - seconds), earlier[1])


def _note_secrets(headers: object) -> None:
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if str(name).lower() in ("authorization", "proxy-authorization"):
                secret(str(value))
                secret(str(value).partition(" ")[2])


def _backoff(attempt: int) -> float:
    """Exponential, with jitter so that parallel fetches that failed together do not retry
    together."""
    return FIRST_BACKOFF * 2 ** (attempt - 1) * (0.75 + random.random() / 2)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _tls_failure(host: str, error: BaseException) -> HelperError:
    reason = _tls_reason(error)
    return HelperError(
        f"the certificate of {host} is not trusted{f' ({reason})' if reason else ''}; "
        "if your network inspects TLS, set http.sslCAInfo to the file of its CA "
        "(git config --global http.sslCAInfo /path/to/ca.pem)")


def _tls_reason(error: BaseException) -> str:
    """The OpenSSL reason, found in the exception chain; the outer messages repeat the URL."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) and current.verify_message:
            return str(current.verify_message)
        if isinstance(current, ssl.SSLError) and current.reason:
            return str(current.reason)
        pending += [*current.args, current.__cause__, current.__context__,
                    getattr(current, "reason", None)]
    return ""


def _connection_failure(session: requests.Session, host: str, step: str,
                        error: BaseException) -> HelperError:
    if isinstance(error, requests.Timeout):
        return HelperError(f"{host} did not answer in time while {step}")
    proxy = (session.proxies or {}).get("https")
    if proxy:
        return HelperError(f"cannot reach {host} through the proxy {host_of(proxy)} "
                           f"(http.proxy) while {step}; check the proxy and the network")
    return HelperError(f"cannot connect to {host} while {step}; check the network")


def _status_failure(host: str, step: str, response: requests.Response) -> HelperError:
    busy = "is throttling requests" if response.status_code == 429 else "is having trouble"
    wait = _retry_after(response.headers.get("Retry-After"))
    when = f"in {wait:.0f} seconds" if wait else "later"
    return HelperError(f"{host} {busy} (HTTP {response.status_code}) while {step}; "
                       f"try again {when}")


def _redirect_failure(host: str, step: str, response: requests.Response) -> HelperError:
    location = response.headers.get("Location")
    try:
        target = host_of(urljoin(response.url, location)) if location else "nowhere"
    except ValueError:
        target = "a malformed address"
    return HelperError(f"{host} redirected to {target} while {step}; not following it, so that "
                       "no token leaves for another host (a proxy or sign-in portal in the way?)")


def failure(error: BaseException, url: str, step: str, session: requests.Session) -> HelperError:
    """The one-line message for a requests exception raised outside `call` (msal's requests)."""
    host = host_of(url)
    if isinstance(error, requests.exceptions.SSLError):
        return _tls_failure(host, error)
    return _connection_failure(session, host, step, error)


def json_of(response: requests.Response, what: str) -> dict:
    """The response's JSON object, or a one-line error saying what came instead.

    Proxies, captive portals and sign-in pages answer with HTML and a 200, so the status alone
    proves nothing.
    """
    host = host_of(response.url)
    body = response.content or b""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    got = _not_json(body, content_type)
    if not got:
        import json

        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            got = "a cut-short or malformed JSON body"
        else:
            if isinstance(data, dict):
                return data
            got = f"a JSON {type(data).__name__} instead of an object"
    raise HelperError(f"expected {what} from {host} but got {got} "
                      f"(HTTP {response.status_code})")


def _not_json(body: bytes, content_type: str) -> str:
    """What the body is instead of JSON, or "" when it claims to be JSON."""
    if len(body) > MAX_BODY:
        return "a body larger than 1 MiB"
    if not body.strip():
        return "an empty body"
    if content_type == "text/html" or body.lstrip()[:1] == b"<":
        title = _html_title(body)
        return f"an HTML page{f' titled {chr(39)}{title}{chr(39)}' if title else ''}"
    if content_type != "application/json" and not content_type.endswith("+json"):
        return f"a {printable(content_type)} body" if content_type else "a body of no stated type"
    return ""


def _html_title(body: bytes) -> str:
    """A page's title names the proxy or portal that answered, which tells the user who to ask."""
    import re

    match = re.search(rb"<title[^>]*>(.*?)</title", body[:16384], re.IGNORECASE | re.DOTALL)
    title = match.group(1).decode("utf-8", "replace") if match else ""
    return printable(" ".join(title.split()))[:80]
