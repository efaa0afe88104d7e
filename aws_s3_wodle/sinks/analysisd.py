"""Wazuh analysisd: one `1:Wazuh-AWS:<json>` datagram per event on its Unix datagram socket.

One connection is reused for the whole run. When the engine restarts (socket gone or refusing) we
reconnect with backoff up to `retry_seconds`, then give up with SinkError so nothing is acknowledged.
When the engine is slow (ENOBUFS/EAGAIN) we back off instead of dropping.
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


class AnalysisdSink:
    def __init__(self, path: str, recorder: OversizeRecorder, *, retry_seconds: float = 30.0,
                 max_datagram: int = MAX_DATAGRAM, header: bytes = HEADER) -> None:
        self.path = path
        self.recorder = recorder
        self.retry_seconds = retry_seconds
        self.max_datagram = max_datagram
        self.header = header
        self.sock: Optional[socket.socket] = None
        self.lock = threading.Lock()  # blocks run in threads and share this one connection

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def _send(self, datagram: bytes) -> None:
        deadline = None
        delay = 0.05
        while True:
            try:
                if self.sock is None:
                    self.sock = self._connect()
                self.sock.send(datagram)
                return
            except OSError as exc:
                if exc.errno in _GONE:
                    if self.sock is not None:
                        self.sock.close()
                        self.sock = None
                    reason = f"the engine's socket {self.path} is not accepting ({exc.strerror})"
                elif exc.errno in _BUSY:
                    reason = f"the engine is busy ({exc.strerror})"
                else:
                    raise SinkError(f"cannot send to the engine's socket {self.path}: {exc}") from None
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.retry_seconds
                    log.warning("%s; retrying for up to %.0f s", reason, self.retry_seconds)
                if now >= deadline:
                    raise SinkError(f"{reason} after {self.retry_seconds:.0f} s of retries; is wazuh-analysisd "
                                    f"running? Nothing of the current object was acknowledged") from None
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
                log.error("An event of %s is %d bytes, over the engine's %d-byte datagram limit: not sent, "
                          "recorded in %s", origin, len(datagram), limit, where)
                result.oversized += 1
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
