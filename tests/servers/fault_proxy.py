# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small fault-injecting HTTP proxy for tests of retries: put it between a client and a real server.

    with FaultProxy("http://127.0.0.1:31680") as proxy:
        config = dict(bank_config, endpoint_url=proxy.url)      # or proxy.rewrite(url) for any URL
        proxy.fail_next(2, fault="503", method="PUT")            # the next 2 PUTs get a 503
        proxy.fail_next(1, fault="reset")                        # the next request: connection reset
        proxy.fail_always(fault="503", method="GET", path_contains="/chunks/")   # until clear()
        ...
        assert proxy.injected("503") == 2
        assert proxy.count(method="GET", query_contains="list-type=2") >= 11

Faults: "503" (answer 503 with an S3-style SlowDown body), "500", "429", "reset" (read the
request, then close the connection with a TCP RST), "truncate" (forward the real answer but cut
the body in half, then reset), "delay" (wait ``delay`` seconds, then forward: for timeouts).
Request headers are forwarded unchanged, Host included, so S3 signatures stay valid and Swift's
tempauth hands out storage URLs that point back at the proxy. Every request is logged in
``proxy.requests`` (method, path with query, status or fault).
"""

from __future__ import annotations

import http.client
import http.server
import socket
import struct
import threading
import time
import typing as t
import urllib.parse

FAULTS = ("503", "500", "429", "reset", "truncate", "delay")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
_ERROR_BODIES = {
    "503": b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Injected by fault_proxy</Message></Error>',
    "500": b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>Injected by fault_proxy</Message></Error>',
    "429": b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Injected by fault_proxy</Message></Error>',
}


class Rule:
    """Which requests get which fault, and how many more times (None: until cleared)."""

    def __init__(self, fault: str, remaining: int | None, method: str | None, path_contains: str | None, delay: float) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self.fault = fault
        self.remaining = remaining
        self.method = method.upper() if method else None
        self.path_contains = path_contains
        self.delay = delay

    def matches(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method and self.method != method:
            return False
        return not self.path_contains or self.path_contains in path


class LoggedRequest(t.NamedTuple):
    method: str
    path: str
    outcome: str  # the upstream status ("200") or the injected fault ("fault:503")


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 forwarding to ``target`` (``http://host:port``)."""

    def __init__(self, target: str, port: int = 0, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(target if "//" in target else f"http://{target}")
        if parts.scheme != "http":
            raise ValueError("fault_proxy forwards plain http only")
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 80
        self.timeout = timeout
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self.requests: list[LoggedRequest] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- control ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rewrite(self, url: str) -> str:
        """``url`` with its scheme and netloc replaced by the proxy's (for auth URLs and endpoints)."""
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(("http", f"127.0.0.1:{self.port}", parts.path, parts.query, parts.fragment))

    def fail_next(self, count: int, fault: str = "503", method: str | None = None, path_contains: str | None = None, delay: float = 0.0) -> None:
        """Inject ``fault`` into the next ``count`` requests that match (all requests when no filter)."""
        with self._lock:
            self._rules.append(Rule(fault, count, method, path_contains, delay))

    def fail_always(self, fault: str = "503", method: str | None = None, path_contains: str | None = None, delay: float = 0.0) -> None:
        """Inject ``fault`` into every matching request until ``clear()``."""
        with self._lock:
            self._rules.append(Rule(fault, None, method, path_contains, delay))

    def clear(self) -> None:
        """Remove every fault rule (the request log is kept)."""
        with self._lock:
            self._rules.clear()

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def count(self, method: str | None = None, path_contains: str | None = None, query_contains: str | None = None, outcome: str | None = None) -> int:
        """How many logged requests match all the filters given."""
        with self._lock:
            logged = list(self.requests)
        return sum(
            1 for r in logged
            if (not method or r.method == method.upper())
            and (not path_contains or path_contains in r.path.split("?", 1)[0])
            and (not query_contains or query_contains in (r.path.split("?", 1) + [""])[1])
            and (outcome is None or r.outcome == outcome)
        )

    def injected(self, fault: str | None = None) -> int:
        """How many faults were injected (of one kind, or all)."""
        with self._lock:
            return sum(1 for r in self.requests if r.outcome.startswith("fault:") and (fault is None or r.outcome == f"fault:{fault}"))

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- internals ----------------------------------------------------------------------------

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def _log(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(method, path, outcome))

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
                pass  # the request log is proxy.requests

            def _read_body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    body = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return bytes(body)
                        body += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _reset(self) -> None:
                # SO_LINGER with a zero timeout makes close() send a RST: a real "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _handle(self) -> None:
                method, path = self.command, self.path
                body = self._read_body()
                rule = proxy._take_rule(method, path)
                if rule is not None and rule.fault != "delay":
                    proxy._log(method, path, f"fault:{rule.fault}")
                    if rule.fault == "reset":
                        self._reset()
                        return
                    if rule.fault in _ERROR_BODIES:
                        payload = _ERROR_BODIES[rule.fault]
                        self.send_response(int(rule.fault))
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(payload) if method != "HEAD" else 0))
                        self.end_headers()
                        if method != "HEAD":
                            self.wfile.write(payload)
                        return
                if rule is not None and rule.fault == "delay":
                    proxy._log(method, path, "fault:delay")
                    time.sleep(rule.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or method in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=proxy.timeout)
                try:
                    upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                    for name, value in headers.items():
                        upstream.putheader(name, value)
                    upstream.endheaders(body if body else None)
                    response = upstream.getresponse()
                    payload = response.read()
                    status, reason, response_headers = response.status, response.reason, response.getheaders()
                except OSError as exc:
                    proxy._log(method, path, f"upstream-error:{type(exc).__name__}")
                    self._reset()
                    return
                finally:
                    upstream.close()
                if rule is None or rule.fault == "delay":
                    proxy._log(method, path, str(status))
                self.send_response(status, reason)
                for name, value in response_headers:
                    if name.lower() in _HOP_BY_HOP or (name.lower() == "content-length" and method != "HEAD"):
                        continue
                    self.send_header(name, value)
                if method != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if rule is not None and rule.fault == "truncate":
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self._reset()
                    return
                if method != "HEAD" and payload:
                    self.wfile.write(payload)

            def _dispatch(self) -> None:
                try:
                    self._handle()
                except (ConnectionError, socket.timeout):
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

        return Handler
