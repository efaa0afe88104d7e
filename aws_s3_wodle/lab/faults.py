"""A fault-injecting HTTP proxy between boto3 and moto: the lab's bad day.

moto accepts what real AWS refuses (any ExternalId, any key) and never throttles, fails or expires
anything, so a test puts this proxy in front of moto and points a client at it (`AWS_ENDPOINT_URL`, or
one endpoint setting such as `<sts_endpoint>`). Every request is forwarded unchanged unless a Fault
says otherwise, so the client under test runs its real code path: it signs, sends over HTTP and parses
AWS's own error format.

A call is recognised the way AWS routes it: the service from the SigV4 credential scope in the
Authorization header, the action from `X-Amz-Target` (JSON protocols, e.g. SQS), from `Action=` in the
form body (query protocols, e.g. STS), or as `METHOD /path` for REST services (S3), which also get an
operation name (`GetObject`, `HeadObject`, ...) and their object key. A Fault matches on service, action
or operation (a regular expression), S3 key, request parameters; it fires on the first `times` matching
calls, or on a `share` of them spread evenly (0.25 = every 4th: the same count whatever the timing of
the client's threads), and either answers with an AWS error or forwards the call and cuts the response
body half-way (`truncate`: a broken download), or stall it half-way for a while (`stall`: a slow download).

With `session_seconds`, it also plays STS's clock: every AssumeRole answer expires that many seconds
after it was issued, and a request signed with expired keys is refused with ExpiredToken, as AWS does.
Every call is recorded in `seen` (service, action, operation, key, signing key and its age, fault), and
the secrets STS issued in `secrets`, so tests can count calls and look for leaks.

With `latency`, it also plays a region's distance: every call waits that many seconds before it is forwarded
(or answered with a fault), as a request's round trip to a real endpoint does; see `Latency`.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "content-length"}


@dataclass
class Fault:
    """Which calls to spoil and how (see the module's docstring)."""

    service: Optional[str] = None      # "s3", "sqs", "sts"; None = any
    action: Optional[str] = None       # regex on the action or the operation name; None = any
    status: int = 503
    code: str = "SlowDown"
    message: str = "Injected by the fault proxy"
    times: Optional[int] = None        # fail the first N matching calls; None = every one (or a share)
    when: Optional[Callable[[dict[str, str]], bool]] = None  # also require this of the request's parameters
    key: Optional[str] = None          # S3 object key substring
    share: Optional[float] = None      # fail this share of the matching calls, spread evenly
    truncate: bool = False             # forward, then cut the body at half and drop the connection
    stall: float = 0.0                 # forward, send half the body, wait this many seconds, then the rest
    hits: int = 0                      # calls spoiled
    matched: int = 0                   # calls that matched (the base of `share`)

    def matches(self, call: "Seen", params: dict[str, str]) -> bool:
        if self.service is not None and call.service != self.service:
            return False
        if self.action is not None and not (re.fullmatch(self.action, call.action) or
                                            re.fullmatch(self.action, call.operation)):
            return False
        if self.key is not None and (call.key is None or self.key not in call.key):
            return False
        return self.when is None or bool(self.when(params))

    def fires(self) -> bool:
        """Called once per matching call: whether this one is spoiled."""
        self.matched += 1
        if self.times is not None:
            return self.hits < self.times
        if self.share is not None:
            return int(self.matched * self.share) > int((self.matched - 1) * self.share)
        return True


Rule = Fault  # the name the delivery fault suite uses


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
class Latency:
    """A fixed delay per AWS call, optionally per service: `Latency(0.02)`, `Latency(0.02, {"s3": 0.03})`.

    Modelling choice: from a host in the same region, an SDK call to SQS or S3 typically takes 10-50 ms
    (TLS already up, small request and answer), against about 1 ms to moto on loopback; so 20 ms per call
    is the bench's "real region". The delay is paid once per request round trip, before the request is
    forwarded (or answered with a fault), by the thread serving that connection: concurrent calls each pay it
    in parallel, as they would over the network, and a long poll still waits its full WaitTimeSeconds at
    moto on top of it. The transfer time of a large body is not modelled (loopback's bandwidth is kept).
    """

    def __init__(self, seconds: float = 0.0, per_service: Optional[dict[str, float]] = None) -> None:
        if seconds < 0 or any(v < 0 for v in (per_service or {}).values()):
            raise ValueError("a latency is a number of seconds >= 0")
        self.seconds = seconds
        self.per_service = dict(per_service or {})

    def of(self, service: str) -> float:
        """The delay a call to `service` pays."""
        return self.per_service.get(service, self.seconds)


@dataclass
class Seen:
    """One call through the proxy."""

    service: str
    action: str                        # X-Amz-Target / Action= name, or "METHOD /path" for REST (S3)
    faulted: bool = False
    operation: str = ""                # the API operation (GetObject, ...); = action for JSON/query calls
    key: Optional[str] = None          # S3 object key
    access_key: Optional[str] = None   # the key id that signed it
    fault: Optional[str] = None        # the error code answered, "truncated", or None
    key_age: Optional[float] = None    # seconds since STS (through this proxy) issued the signing key
    upstream_seconds: float = 0.0      # how long moto took to answer (the added latency not included)


class FaultProxy:
    """`with FaultProxy(moto.endpoint, [faults], session_seconds=...) as proxy: ...; proxy.add(fault)`."""

    def __init__(self, upstream: str, faults: tuple = (), *, session_seconds: Optional[float] = None,
                 latency: "float | Latency" = 0.0) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.faults: list[Fault] = list(faults)
        self.session_seconds = session_seconds
        self.latency = latency if isinstance(latency, Latency) else Latency(latency)
        self.seen: list[Seen] = []
        self.issued: dict[str, float] = {}     # access key id -> expiry (epoch seconds), with session_seconds
        self.issued_at: dict[str, float] = {}  # access key id -> when STS issued it
        self.secrets: set[str] = set()         # secret keys and session tokens STS issued
        self.lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None
        self.endpoint = ""

    @property
    def calls(self) -> list[Seen]:
        return self.seen

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

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

    # --- what happened

    def count(self, service: Optional[str] = None, action: Optional[str] = None, *, faulted: Optional[bool] = None,
              fault: Optional[str] = None) -> int:
        """Calls of service and action (or operation name), optionally only faulted ones or one fault code."""
        with self.lock:
            calls = list(self.seen)
        return sum(1 for c in calls if (service is None or c.service == service) and
                   (action is None or action in (c.action, c.operation)) and
                   (faulted is None or c.faulted == faulted) and (fault is None or c.fault == fault))

    def calls_by_action(self) -> Counter:
        """`service:operation` -> how many calls (faulted ones included)."""
        with self.lock:
            return Counter(f"{c.service}:{c.operation}" for c in self.seen)

    def upstream_seconds(self) -> Counter:
        """`service:operation` -> seconds moto spent answering those calls in all (a long poll's wait included)."""
        out: Counter = Counter()
        with self.lock:
            for c in self.seen:
                out[f"{c.service}:{c.operation}"] += c.upstream_seconds
        return out

    def faults_seen(self) -> Counter:
        """`service:operation:fault` -> how many calls got it."""
        with self.lock:
            return Counter(f"{c.service}:{c.operation}:{c.fault}" for c in self.seen if c.fault)

    # --- deciding

    def _pick(self, call: Seen, params: dict[str, str]) -> Optional[Fault]:
        with self.lock:
            self.seen.append(call)
            now = time.time()
            if call.access_key in self.issued_at:
                call.key_age = now - self.issued_at[call.access_key]
            if call.access_key in self.issued and now >= self.issued[call.access_key]:
                call.faulted, call.fault = True, "ExpiredToken"
                return Fault(call.service, None, 400 if call.service == "s3" else 403, "ExpiredToken",
                             "The security token included in the request is expired")
            for fault in self.faults:
                if fault.matches(call, params) and fault.fires():
                    fault.hits += 1
                    call.faulted, call.fault = True, "truncated" if fault.truncate else fault.code
                    return fault
        return None

    def _issued(self, body: bytes) -> bytes:
        """Record what AssumeRole issued and, with session_seconds, shorten the session."""
        text = body.decode("utf-8", "replace")
        akid = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        with self.lock:
            for tag in ("SecretAccessKey", "SessionToken"):
                m = re.search(rf"<{tag}>([^<]+)</{tag}>", text)
                if m:
                    self.secrets.add(m.group(1))
            if akid:
                self.issued_at[akid.group(1)] = time.time()
        if self.session_seconds is not None and akid:
            expiry = time.time() + self.session_seconds
            stamp = dt.datetime.fromtimestamp(expiry, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            text = re.sub(r"<Expiration>[^<]+</Expiration>", f"<Expiration>{stamp}</Expiration>", text)
            with self.lock:
                self.issued[akid.group(1)] = expiry
        return text.encode()


_S3_OPERATIONS = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
_S3_BUCKET_OPERATIONS = {"GET": "ListObjects", "PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}


def classify(method: str, path: str, headers, body: bytes) -> tuple[Seen, str, dict[str, str]]:
    """(the call, its protocol, its parameters) of a signed AWS request."""
    m = _CREDENTIAL.search(headers.get("Authorization", ""))
    access_key, service = (m.group(1), m.group(2)) if m else (None, "unknown")
    target = headers.get("X-Amz-Target")
    if target:
        try:
            params = {k: str(v) for k, v in json.loads(body or b"{}").items()}
        except (ValueError, AttributeError):
            params = {}
        action = target.rsplit(".", 1)[-1]
        return Seen(service, action, operation=action, access_key=access_key), "json", params
    if method == "POST" and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = params.get("Action", "")
        return Seen(service, action, operation=action, access_key=access_key), "query", params
    parts = urlsplit(path)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    segments = parts.path.lstrip("/").split("/", 1)
    key = unquote(segments[1]) if len(segments) > 1 and segments[1] else None
    if key is None:
        operation = _S3_BUCKET_OPERATIONS.get(method, method)
    elif "uploadId" in query or "uploads" in query:
        operation = "MultipartUpload"
    else:
        operation = _S3_OPERATIONS.get(method, method)
    return Seen(service, f"{method} {parts.path}", operation=operation, key=key, access_key=access_key), "rest", query


def error_response(fault: Fault, protocol: str, service: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers AWS sends for an error in this protocol, so botocore parses it as real."""
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": f"com.amazonaws.{service}#{fault.code}", "message": fault.message})
        return body.encode(), {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id,
                               "x-amzn-query-error": f"{fault.code};Sender"}
    if protocol == "query":
        body = (f'<ErrorResponse xmlns="https://{service}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
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
    upstream: Optional[http.client.HTTPConnection] = None  # one per client connection, reused

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

    def _forward(self, body: bytes) -> tuple[int, list, bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "expect"}
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port,
                                                           timeout=120)
            try:
                self.upstream.request(self.command, self.path, body=body, headers=headers)
                resp = self.upstream.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (http.client.HTTPException, OSError):
                self.upstream.close()
                self.upstream = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def _handle(self) -> None:
        body = self._body()
        call, protocol, params = classify(self.command, self.path, self.headers, body)
        fault = self.owner._pick(call, params)
        delay = self.owner.latency.of(call.service)
        if delay:
            time.sleep(delay)  # the request's round trip (Latency); this connection's thread only
        if fault is not None and not fault.truncate and not fault.stall:
            payload, headers = error_response(fault, protocol, call.service)
            self._reply(fault.status, list(headers.items()), payload)
            return
        started = time.perf_counter()
        status, headers, payload = self._forward(body)
        call.upstream_seconds = time.perf_counter() - started
        if call.service == "sts" and call.action == "AssumeRole" and status == 200:
            payload = self.owner._issued(payload)
        if fault is not None and fault.stall:
            self._reply(status, headers, payload, stall=fault.stall)
            return
        cut = len(payload) // 2 if fault is not None and len(payload) > 1 else None
        self._reply(status, headers, payload, cut)

    def _reply(self, status: int, headers: list, payload: bytes, cut: Optional[int] = None,
               stall: float = 0.0) -> None:
        self.send_response_only(status)
        length = str(len(payload))
        for k, v in headers:
            if k.lower() == "content-length" and self.command == "HEAD":
                length = v  # no body: the length announced is the object's
            elif k.lower() not in _HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD" and stall:
            half = len(payload) // 2
            self.wfile.write(payload[:half])
            self.wfile.flush()
            time.sleep(stall)  # a stalled connection: the client's read blocks until the rest comes
            try:
                self.wfile.write(payload[half:])
            except OSError:
                pass  # the client gave up meanwhile
        elif self.command != "HEAD":
            self.wfile.write(payload if cut is None else payload[:cut])
        self.wfile.flush()
        if cut is not None:
            self.close_connection = True

    def finish(self) -> None:
        super().finish()
        if self.upstream is not None:
            self.upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle
