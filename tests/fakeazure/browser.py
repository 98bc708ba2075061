#!/usr/bin/env python3
"""A stand-in web browser for sign-in tests: `BROWSER="python browser.py %s"`.

Python's `webbrowser` (which msal uses) runs a BROWSER command line containing `%s` as a
`GenericBrowser` and *waits for it to exit*, while msal's loopback listener only starts
accepting requests after that call returns. So this script answers at once: the parent exits
0 immediately and a detached child does the sign-in, with its standard streams on /dev/null
(a caller capturing output is not held open) and a hard time limit (it never hangs).

The child does what a person's browser does with Entra's answer: GET the authorize URL through
HTTPS_PROXY with the CA from SSL_CERT_FILE/REQUESTS_CA_BUNDLE, follow redirects, find the
auto-submitting `<form method="post">` (response_mode=form_post), and POST its fields to the
form's action, the app's http://localhost:PORT listener, directly. It uses only the standard
library, to start fast. Each step is appended to FAKEAZURE_BROWSER_LOG when set.
"""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import sys
import time
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

TIME_LIMIT = 20
NET_TIMEOUT = 10
MAX_REDIRECTS = 5


class FormFinder(HTMLParser):
    """The first POST form's action and its input fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and values.get("method", "get").lower() == "post":
            self._in_form, self.action = True, values.get("action", "")
        elif tag == "input" and self._in_form and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def log(message: str) -> None:
    path = os.environ.get("FAKEAZURE_BROWSER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{time.time():.3f} {message}\n")


def connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    """A connection for `url` (HTTPS through the proxy, loopback HTTP directly) and the
    request target to send on it."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if parts.scheme == "http":
        if parts.hostname not in ("localhost", "127.0.0.1"):
            raise ValueError(f"refusing plain http to {parts.hostname}")
        return http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                          timeout=NET_TIMEOUT), target
    ca = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
    context = ssl.create_default_context(cafile=ca)
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    host, port = parts.hostname or "", parts.port or 443
    if proxy:
        p = urlsplit(proxy)
        conn = http.client.HTTPSConnection(p.hostname or "127.0.0.1", p.port or 80,
                                           timeout=NET_TIMEOUT, context=context)
        conn.set_tunnel(host, port)
        return conn, target
    return http.client.HTTPSConnection(host, port, timeout=NET_TIMEOUT, context=context), target


def request(method: str, url: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn, target = connection(url)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def sign_in(url: str) -> int:
    for _ in range(MAX_REDIRECTS + 1):
        status, headers, body = request("GET", url, headers={"Accept": "text/html"})
        log(f"GET {urlsplit(url).netloc}{urlsplit(url).path} -> {status}")
        if status in (301, 302, 303, 307, 308) and headers.get("location"):
            url = urljoin(url, headers["location"])
            if urlsplit(url).scheme == "http":  # response_mode=query lands on the app here
                status, _, _ = request("GET", url)
                log(f"GET {url.split('?')[0]} -> {status}")
                return 0 if status < 400 else 1
            continue
        break
    finder = FormFinder()
    finder.feed(body.decode("utf-8", "replace"))
    if not finder.action:
        log(f"no form on the page (HTTP {status})")
        return 1
    action = urljoin(url, finder.action)
    status, _, _ = request(
        "POST", action, urlencode(finder.fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    log(f"POST {action} fields={sorted(finder.fields)} -> {status}")
    return 0 if status < 400 else 1


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: browser.py URL", file=sys.stderr)
        return 2
    if os.fork():
        return 0  # webbrowser waits for this process; the child carries on alone
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    signal.alarm(TIME_LIMIT)
    try:
        code = sign_in(argv[1])
    except Exception as error:  # noqa: BLE001 - report anything, never hang
        log(f"error: {type(error).__name__}: {error}")
        code = 1
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
