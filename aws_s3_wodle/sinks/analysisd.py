"""Wazuh analysisd: one `1:Wazuh-AWS:<json>` datagram per event on its Unix datagram socket.

One connection is reused for the whole run. When the engine restarts (socket gone or refusing) we
reconnect with backoff up to `retry_seconds`, then give up with SinkError so nothing is acknowledged.
When the engine is slow (ENOBUFS/EAGAIN, or a send blocked on its full queue) we back off instead of
dropping, up to `busy_seconds` without any progress. Each outage is logged once, and its end once.
"""
from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Optional

from ..errors import SinkError
from . import OversizeRecorder, SendResult

log = logging.getLogger("aws-s3-wodle")

HEADER = b"1:Wazuh-AWS:"
MAX_DATAGRAM = 65535  # analysisd cuts longer messages: never send one blindly

_GONE = (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE, errno.EDESTADDRREQ)
_BUSY = (errno.ENOBUFS, errno.EAGAIN, errno.EWOULDBLOCK)
SEND_TIMEOUT = 1.0     # a send blocked this long (engine queue full) is "busy": back off and try again
BUSY_SECONDS = 300.0   # an engine that takes nothing for this long is stuck: stop the run, acknowledge nothing


class AnalysisdSink:
    def __init__(self, path: str, recorder: OversizeRecorder, *, retry_seconds: float = 30.0,
                 max_datagram: int = MAX_DATAGRAM, header: bytes = HEADER, busy_seconds: float = BUSY_SECONDS,
                 send_timeout: float = SEND_TIMEOUT) -> None:
        self.path = path
        self.recorder = recorder
        self.retry_seconds = retry_seconds
        self.busy_seconds = busy_seconds
        self.send_timeout = send_timeout
        self.max_datagram = max_datagram
        self.header = header
        self.sock: Optional[socket.socket] = None
        self.lock = threading.Lock()  # blocks run in threads and share this one connection
        self.trouble: Optional[str] = None  # "gone" or "busy" while the engine does not take events
        self.trouble_since = 0.0
        self.waits = 0  # backoff sleeps, for the stats and tests

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        # A full engine queue blocks send(); past this it counts as busy, so we can back off and give up
        # after busy_seconds instead of hanging for ever on an engine that stopped reading.
        sock.settimeout(self.send_timeout)
        return sock

    def _send(self, datagram: bytes) -> None:
        deadline, deadline_kind = 0.0, None  # the retry window restarts when the kind of trouble changes
        delay = 0.05
        while True:
            try:
                if self.sock is None:
                    self.sock = self._connect()
                self.sock.send(datagram)
                if self.trouble:
                    log.info("The engine's socket %s takes events again after %.1f s", self.path,
                             time.monotonic() - self.trouble_since)
                    self.trouble = None
                return
            except OSError as exc:
                if isinstance(exc, socket.timeout) or exc.errno in _BUSY:
                    kind, limit = "busy", self.busy_seconds
                    reason = f"the engine is busy ({exc.strerror or 'send timed out'}): backing off, nothing is dropped"
                elif exc.errno in _GONE:
                    if self.sock is not None:
                        self.sock.close()
                        self.sock = None
                    kind, limit = "gone", self.retry_seconds
                    reason = f"the engine's socket {self.path} is not accepting ({exc.strerror})"
                else:
                    raise SinkError(f"cannot send to the engine's socket {self.path}: {exc}") from None
                now = time.monotonic()
                if self.trouble != kind:
                    self.trouble, self.trouble_since = kind, now
                    log.warning("%s; retrying for up to %.0f s", reason, limit)
                if kind != deadline_kind:
                    deadline, deadline_kind = now + limit, kind
                if now >= deadline:
                    hint = "is wazuh-analysisd running?" if kind == "gone" else "is wazuh-analysisd stuck?"
                    raise SinkError(f"{reason} after {limit:.0f} s of retries; {hint} Nothing of the current "
                                    "object was acknowledged") from None
                self.waits += 1
                time.sleep(min(delay, max(0.0, deadline - now)))
                delay = min(delay * 2, 2.0)

    def send_batch(self, events: list[bytes], origin: str) -> SendResult:
        result = SendResult()
        header, limit = self.header, self.max_datagram
        with self.lock:
            self._send_all(events, origin, header, limit, result)
        return result

    def _send_all(self, events: list[bytes], origin: str, header: bytes, limit: int, result: SendResult) -> None:
        for event in events:
            datagram = header + event
            if len(datagram) > limit:
                where = self.recorder.record(origin, event, len(datagram), limit)
                log.debug("An event of %s is %d bytes, over the engine's %d-byte datagram limit: not sent, "
                          "recorded in %s", origin, len(datagram), limit, where)
                result.oversized += 1
                result.recorded_in = where
                continue
            self._send(datagram)
            result.sent += 1
            result.bytes += len(datagram)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def default_socket(wazuh_path: str) -> str:
    return str(Path(wazuh_path) / "queue" / "sockets" / "queue")
