"""The fault proxy's latency knob: each call pays the delay once, concurrent calls pay it in parallel.

The upstream here is a plain local HTTP server (not moto) so the timing is the proxy's alone and the test
stays fast; the e2e suites use the same proxy in front of moto.
"""
from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from aws_s3_wodle.lab.faults import Fault, FaultProxy, Latency

DELAY = 0.2
SLOW_UPSTREAM = 0.3  # what /slow waits at the upstream, like a long poll's WaitTimeSeconds


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(SLOW_UPSTREAM)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _signed(service: str) -> dict[str, str]:
    """The part of a SigV4 Authorization header the proxy reads: the credential scope names the service."""
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/{service}/aws4_request, "
                             "SignedHeaders=host, Signature=0"}


def _call(endpoint: str, path: str = "/bucket/key", service: str = "s3") -> tuple[int, float]:
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers=_signed(service))
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - started
    finally:
        conn.close()


def test_a_call_pays_the_delay(upstream):
    with FaultProxy(upstream, latency=DELAY) as proxy:
        status, took = _call(proxy.endpoint)
        assert status == 200
        assert took >= DELAY
        assert proxy.count("s3", "GetObject") == 1


def test_without_latency_a_call_is_not_delayed(upstream):
    with FaultProxy(upstream) as proxy:
        _, took = _call(proxy.endpoint)
    assert took < DELAY


def test_concurrent_calls_pay_it_in_parallel(upstream):
    calls = 8
    with FaultProxy(upstream, latency=DELAY) as proxy:
        took: list[float] = []
        started = time.perf_counter()
        threads = [threading.Thread(target=lambda i=i: took.append(_call(proxy.endpoint, f"/bucket/k{i}")[1]))
                   for i in range(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        assert len(took) == calls and min(took) >= DELAY
        assert wall < DELAY * 3, f"{calls} concurrent calls took {wall:.2f} s: the delay was paid in series"
        assert proxy.calls_by_action()["s3:GetObject"] == calls


def test_the_upstream_wait_is_not_shortened(upstream):
    """A long poll waits its own time at the server on top of the round trip."""
    with FaultProxy(upstream, latency=DELAY) as proxy:
        _, took = _call(proxy.endpoint, "/slow/key")
    assert took >= DELAY + SLOW_UPSTREAM


def test_per_service_delay_and_faulted_calls_pay_it_too(upstream):
    latency = Latency(0.0, {"sqs": DELAY})
    with FaultProxy(upstream, [Fault("sqs", None, times=1)], latency=latency) as proxy:
        _, s3_took = _call(proxy.endpoint, service="s3")
        status, sqs_took = _call(proxy.endpoint, "/queue", service="sqs")
    assert s3_took < DELAY
    assert status == 503 and sqs_took >= DELAY  # an error answer is a round trip too


def test_a_negative_latency_is_refused():
    with pytest.raises(ValueError):
        Latency(-1)
