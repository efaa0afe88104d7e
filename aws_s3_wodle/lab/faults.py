"""A fault-injecting HTTP proxy between boto3 and moto: chosen calls get a canned AWS error.

moto accepts what real AWS refuses (any ExternalId, any key), so a test of "AssumeRole denied" or
"ReceiveMessage throttled" puts this proxy in front of moto and points one client (or one endpoint
setting, e.g. `<sts_endpoint>`) at it. Every other request is forwarded unchanged, so the client under
test runs its real code path: it signs, sends over HTTP and parses AWS's own error format.

A call is recognised the way AWS routes it: the service from the SigV4 credential scope in the
Authorization header, the action from `X-Amz-Target` (JSON protocols, e.g. SQS), from `Action=` in
the form body (query protocols, e.g. STS), or as `METHOD /path` for REST services (S3).
"""
from __future__ import annotations

import http.client
import json
import re
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
               "proxy-authenticate", "content-length"}


@dataclass
class Fault:
    """Answer calls of `service` (and `action`, a regex; any action when None) with an AWS error."""

    service: str
    action: Optional[str]
    status: int
    code: str
    message: str = "Injected by the fault proxy"
    times: Optional[int] = None  # how many calls to fail; None = every call
    when: Optional[Callable[[dict[str, str]], bool]] = None  # also require this of the request's parameters
    hits: int = 0

    def matches(self, service: str, action: str, params: dict[str, str]) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if service != self.service or (self.action is not None and re.fullmatch(self.action, action) is None):
            return False
        return self.when is None or bool(self.when(params))


def access_denied(service: str, action: str, message: str = "", **kw) -> Fault:
    return Fault(service, action, 403, "AccessDenied", message or f"not authorized to perform: {service}:{action}", **kw)


def require_external_id(expected: str) -> Fault:
    """STS as AWS runs it for a role whose trust policy has an sts:ExternalId condition (moto checks none)."""
    return Fault("sts", "AssumeRole", 403, "AccessDenied", "not authorized to perform: sts:AssumeRole (external id)",
                 when=lambda params: params.get("ExternalId") != expected)


def throttled(service: str, action: str, **kw) -> Fault:
    code = "SlowDown" if service == "s3" else "ThrottlingException"
    return Fault(service, action, 503 if service == "s3" else 400, code, "Rate exceeded", **kw)


@dataclass
class Seen:
    service: str
    action: str
    faulted: bool


class FaultProxy:
    """`with FaultProxy(moto.endpoint) as proxy: proxy.add(access_denied("sts", "AssumeRole"))`."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None
        self.endpoint = ""

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def _pick(self, service: str, action: str, params: dict[str, str]) -> Optional[Fault]:
        with self.lock:
            for fault in self.faults:
                if fault.matches(service, action, params):
                    fault.hits += 1
                    self.seen.append(Seen(service, action, True))
                    return fault
            self.seen.append(Seen(service, action, False))
        return None

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def classify(method: str, path: str, headers, body: bytes) -> tuple[str, str, str, dict[str, str]]:
    """(service, action, protocol, parameters) of a signed AWS request."""
    m = _SCOPE.search(headers.get("Authorization", ""))
    service = m.group(1) if m else "unknown"
    target = headers.get("X-Amz-Target")
    if target:
        try:
            params = {k: str(v) for k, v in json.loads(body or b"{}").items()}
        except (ValueError, AttributeError):
            params = {}
        return service, target.rsplit(".", 1)[-1], "json", params
    if method == "POST" and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        return service, params.get("Action", ""), "query", params
    query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
    return service, f"{method} {urlsplit(path).path}", "rest", query


def error_response(fault: Fault, protocol: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers AWS sends for an error in this protocol, so botocore parses it as real."""
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": f"com.amazonaws.{fault.service}#{fault.code}", "message": fault.message})
        return body.encode(), {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id,
                               "x-amzn-query-error": f"{fault.code};Sender"}
    if protocol == "query":
        body = (f'<ErrorResponse xmlns="https://{fault.service}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
                f"<Code>{fault.code}</Code><Message>{_xml(fault.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        return body.encode(), {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code><Message>{_xml(fault.message)}'
            f"</Message><RequestId>{request_id}</RequestId></Error>")
    return body.encode(), {"Content-Type": "application/xml", "x-amz-request-id": request_id}


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: tests read their own output
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        service, action, protocol, params = classify(self.command, self.path, self.headers, body)
        fault = self.owner._pick(service, action, params)
        if fault is not None:
            payload, headers = error_response(fault, protocol)
            self._reply(fault.status, headers, payload)
            return
        conn = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
            self._reply(resp.status, out, payload)
        finally:
            conn.close()

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle
