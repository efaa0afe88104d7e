"""Small helpers several test modules share (the fixtures are in conftest.py)."""
from __future__ import annotations

import json
import signal
import threading
import time

HEADER = b"1:Wazuh-AWS:"  # what analysisd's queue gets before each event's JSON


def one_block_conf(tag: str, kind: str, inner: str, wodle_extra: str = "") -> bytes:
    """An ossec.conf whose one aws-s3 wodle holds one `<tag type="kind">` block around `inner`: the block's
    line is 3 and `inner` starts on line 4, which the tests of error line numbers count on."""
    return f"""<ossec_config>
  <wodle name="aws-s3">{wodle_extra}
    <{tag} type="{kind}">
{inner}
    </{tag}>
  </wodle>
</ossec_config>""".encode()


def received_payloads(engine, at_least: int = 0, wait: float = 5.0, settle: float = 0.15) -> list[bytes]:
    """The JSON of every datagram the engine got, once `at_least` arrived (or `wait` s passed) and `settle` s
    more went by (so that a duplicate would show); each datagram must carry the header."""
    engine.wait_for(at_least, wait)
    time.sleep(settle)
    assert all(d.startswith(HEADER) for d in engine.datagrams)
    return [d[len(HEADER):] for d in engine.datagrams]


def received_events(engine, at_least: int = 0, wait: float = 5.0, settle: float = 0.15) -> list[dict]:
    """received_payloads, parsed."""
    return [json.loads(p) for p in received_payloads(engine, at_least, wait, settle)]


class Concurrency:
    """Counts the callers inside `with gauge:` and keeps the most there were at once (`peak`)."""

    def __init__(self) -> None:
        self.running = self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> "Concurrency":
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.running -= 1


def terminate(proc, sig: int = signal.SIGTERM) -> tuple[float, str]:
    """Send `sig` to `proc` (started with stderr=PIPE, text); (seconds until it ended, its stderr)."""
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return time.monotonic() - sent, stderr


def drain(sock, size: int = 1 << 17) -> list[bytes]:
    """Every datagram queued on a bound socket nobody read (a stuck engine), without waiting."""
    sock.setblocking(False)
    queued = []
    while True:
        try:
            queued.append(sock.recv(size))
        except BlockingIOError:
            return queued
