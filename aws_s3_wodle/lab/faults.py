"""A fault-injecting HTTP proxy between AWS clients and the local AWS (moto): the lab's bad day.

Point a client at it (`AWS_ENDPOINT_URL=proxy.endpoint`) and it forwards every request to moto, except
where a rule says otherwise. Rules match a service (from the SigV4 credential scope), an action
(`GetObject`, `ReceiveMessage`, `AssumeRole`, ...) and optionally an S3 key, and either answer with an
AWS error in the service's own protocol (503 SlowDown, 500 InternalError, 403 AccessDenied, ...) or
forward the request and cut the response body short (a broken download). A rule fires on a share of
the matching calls (spread evenly, so runs are reproducible) or on the first N of them.

It can also play STS's clock: with `session_seconds`, every AssumeRole answer expires that many
seconds after it was issued, and any later request signed with expired keys is refused with
ExpiredToken, as AWS does; moto itself never expires anything. It records every request (service,
action, key) and the secrets it saw issued, so tests can count calls and look for leaks.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass
class Rule:
    """Which calls to spoil and how: the first `times` matching calls, else a `share` of them (0..1).

    The share is spread evenly and deterministically (share 0.25 = every 4th matching call), so a test
    gets the same number of faults whatever the timing of its threads.
    """

    service: Optional[str] = None      # "s3", "sqs", "sts"
    action: Optional[str] = None       # "GetObject", "ReceiveMessage", ...; None = any
    key: Optional[str] = None          # S3 key substring; None = any
    status: int = 503
    code: str = "SlowDown"
    message: str = "Please reduce your request rate."
    share: float = 1.0
    times: Optional[int] = None
    truncate: bool = False             # forward, then cut the body at half and drop the connection
    fired: int = 0
    seen: int = 0

    def matches(self, call: "Call") -> bool:
        return ((self.service is None or self.service == call.service) and
                (self.action is None or self.action == call.action) and
                (self.key is None or (call.key is not None and self.key in call.key)))


@dataclass
class Call:
    service: str
    action: str
    key: Optional[str]
    access_key: Optional[str]
    fault: Optional[str] = None
    key_age: Optional[float] = None  # seconds since the proxy saw STS issue the signing key


class FaultProxy:
    def __init__(self, upstream: str, rules: tuple[Rule, ...] = (), *, session_seconds: Optional[float] = None) -> None:
        self.upstream = urlsplit(upstream)
        self.rules = list(rules)
        self.session_seconds = session_seconds
        self.calls: list[Call] = []
        self.issued: dict[str, float] = {}   # access key id -> expiry (epoch seconds)
        self.issued_at: dict[str, float] = {}  # access key id -> when STS issued it
        self.secrets: set[str] = set()       # secret keys and session tokens seen in STS answers
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread: Optional[threading.Thread] = None

    def start(self) -> "FaultProxy":
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what happened

    def count(self, service: Optional[str] = None, action: Optional[str] = None, *, faulted: Optional[bool] = None,
              fault: Optional[str] = None) -> int:
        with self.lock:
            calls = list(self.calls)
        return sum(1 for c in calls if (service is None or c.service == service) and
                   (action is None or c.action == action) and
                   (faulted is None or (c.fault is not None) == faulted) and (fault is None or c.fault == fault))

    def faults(self) -> Counter:
        with self.lock:
            return Counter(f"{c.service}:{c.action}:{c.fault}" for c in self.calls if c.fault)

    # --- deciding

    def decide(self, call: Call) -> Optional[Rule]:
        with self.lock:
            self.calls.append(call)
            if call.access_key in self.issued_at:
                call.key_age = time.time() - self.issued_at[call.access_key]
            if call.access_key in self.issued and time.time() >= self.issued[call.access_key]:
                call.fault = "ExpiredToken"
                return Rule(status=400 if call.service == "s3" else 403, code="ExpiredToken",
                            message="The security token included in the request is expired")
            for rule in self.rules:
                if not rule.matches(call):
                    continue
                rule.seen += 1
                if rule.times is not None:
                    hit = rule.fired < rule.times
                else:
                    hit = int(rule.seen * rule.share) > int((rule.seen - 1) * rule.share)
                if hit:
                    rule.fired += 1
                    call.fault = "truncated" if rule.truncate else rule.code
                    return rule
        return None

    def note_sts(self, body: bytes) -> bytes:
        """Record what AssumeRole issued and, with session_seconds, shorten the session."""
        text = body.decode("utf-8", "replace")
        akid = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        for tag in ("SecretAccessKey", "SessionToken"):
            m = re.search(rf"<{tag}>([^<]+)</{tag}>", text)
            if m:
                with self.lock:
                    self.secrets.add(m.group(1))
        if akid:
            with self.lock:
                self.issued_at[akid.group(1)] = time.time()
        if self.session_seconds is not None and akid:
            expiry = time.time() + self.session_seconds
            stamp = dt.datetime.fromtimestamp(expiry, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            text = re.sub(r"<Expiration>[^<]+</Expiration>", f"<Expiration>{stamp}</Expiration>", text)
            with self.lock:
                self.issued[akid.group(1)] = expiry
        return text.encode()


def _classify(method: str, path: str, headers, body: bytes) -> Call:
    auth = headers.get("Authorization", "")
    m = _CREDENTIAL.search(auth)
    access_key, service = (m.group(1), m.group(2)) if m else (None, "unknown")
    target = headers.get("X-Amz-Target", "")
    key = None
    if target:
        action = target.rsplit(".", 1)[-1]
    elif service == "s3":
        parts = urlsplit(path)
        segments = parts.path.lstrip("/").split("/", 1)
        key = unquote(segments[1]) if len(segments) > 1 and segments[1] else None
        query = parse_qs(parts.query, keep_blank_values=True)
        if key is None:
            action = {"GET": "ListObjects", "PUT": "CreateBucket", "HEAD": "HeadBucket"}.get(method, method)
        elif "uploadId" in query or "uploads" in query:
            action = "MultipartUpload"
        else:
            action = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject",
                      "DELETE": "DeleteObject"}.get(method, method)
    else:
        form = parse_qs(body.decode("utf-8", "replace")) if body else {}
        action = (form.get("Action") or parse_qs(urlsplit(path).query).get("Action") or ["unknown"])[0]
    return Call(service, action, key, access_key)


def _error_response(call: Call, rule: Rule, headers) -> tuple[int, dict, bytes]:
    request_id = f"fault-{random.getrandbits(40):010x}"
    if call.service == "s3" or "json" not in headers.get("Content-Type", ""):
        if call.service == "s3":
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{rule.code}</Code><Message>{rule.message}'
                    f'</Message><RequestId>{request_id}</RequestId></Error>')
        else:
            body = (f'<ErrorResponse><Error><Type>Sender</Type><Code>{rule.code}</Code><Message>{rule.message}'
                    f'</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>')
        return rule.status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body.encode()
    body = json.dumps({"__type": f"com.amazonaws.sqs#{rule.code}", "message": rule.message}).encode()
    return rule.status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id,
                         "x-amzn-query-error": f"{rule.code};Sender"}, body


def _handler(proxy: FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        upstream: Optional[http.client.HTTPConnection] = None

        def log_message(self, *args) -> None:  # quiet: the tests read counters, not logs
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _forward(self, body: bytes) -> tuple[int, list, bytes]:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            if body or self.command in ("POST", "PUT"):
                headers["Content-Length"] = str(len(body))
            headers.pop("Expect", None)
            for attempt in (1, 2):
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port,
                                                               timeout=120)
                try:
                    self.upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = self.upstream.getresponse()
                    return response.status, response.getheaders(), response.read()
                except (http.client.HTTPException, OSError):
                    self.upstream.close()
                    self.upstream = None
                    if attempt == 2:
                        raise
            raise RuntimeError("unreachable")

        def _handle(self) -> None:
            body = self._body()
            call = _classify(self.command, self.path, self.headers, body)
            rule = proxy.decide(call)
            if rule is not None and not rule.truncate:
                status, headers, payload = _error_response(call, rule, self.headers)
                self._reply(status, list(headers.items()), b"" if self.command == "HEAD" else payload)
                return
            status, headers, payload = self._forward(body)
            if call.service == "sts" and call.action == "AssumeRole" and status == 200:
                payload = proxy.note_sts(payload)
            if rule is not None and rule.truncate and len(payload) > 1:
                self._reply(status, headers, payload, cut=len(payload) // 2)
                return
            self._reply(status, headers, payload)

        def _reply(self, status: int, headers: list, payload: bytes, cut: Optional[int] = None) -> None:
            self.send_response_only(status)
            for k, v in headers:
                if k.lower() not in _HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            if self.command == "HEAD":  # no body: the length announced is the object's
                length = next((v for k, v in headers if k.lower() == "content-length"), "0")
            else:
                length = str(len(payload))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload if cut is None else payload[:cut])
            self.wfile.flush()
            if cut is not None:
                self.close_connection = True

        def finish(self) -> None:
            super().finish()
            if self.upstream is not None:
                self.upstream.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler
