"""Wazuh analysisd: one `1:Wazuh-AWS:<json>` datagram per event on its Unix datagram socket.

One connection is reused for the whole run. When the engine restarts (socket gone or refusing) we
reconnect with backoff up to `retry_seconds`, then give up with SinkError so nothing is acknowledged.
When the engine is slow (ENOBUFS/EAGAIN, or a send blocked on its full queue) we back off instead of
dropping, up to `busy_seconds` without any progress. Each outage is logged once, and its end once.
A stop request (`stop`) ends those waits: Interrupted says how much of the batch the engine took (`handled`,
`partial`), so the caller records exactly that and the rest is sent on the next run.
"""
from __future__ import annotations

import errno
import logging
import socket
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

from aws_s3_wodle.errors import Interrupted, SinkError
from aws_s3_wodle.sinks.recorder import OversizeRecorder
from aws_s3_wodle.seams import Batch, SendResult, as_batch

if TYPE_CHECKING:
    from aws_s3_wodle.sinks.mmsg import BatchSender, Spans

log = logging.getLogger("aws-s3-wodle")

HEADER = b"1:Wazuh-AWS:"
MAX_DATAGRAM = 65535  # analysisd cuts longer messages: never send one blindly

_GONE = (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE, errno.EDESTADDRREQ)
_BUSY = (errno.ENOBUFS, errno.EAGAIN, errno.EWOULDBLOCK)
SEND_TIMEOUT = 0.5     # a send blocked this long (engine queue full) is "busy": back off and try again (a stop too)
BUSY_SECONDS = 300.0   # an engine that takes nothing for this long is stuck: stop the run, acknowledge nothing


class AnalysisdSink:
    def __init__(self, path: str, recorder: OversizeRecorder, *, retry_seconds: float = 30.0,
                 max_datagram: int = MAX_DATAGRAM, header: bytes = HEADER, busy_seconds: float = BUSY_SECONDS,
                 send_timeout: float = SEND_TIMEOUT, batched: bool = True,
                 stop: Optional[threading.Event] = None) -> None:
        self.path = path
        self.stop = stop or threading.Event()  # the process's stop request: it ends a wait for the engine
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
        # Batches kept in one Arrow buffer (TextBatch, the Parquet path) go out many datagrams per system call.
        # Made at the first such batch: pyarrow is loaded by then, and an empty pass never pays for it.
        self.batched = batched
        self._batcher: Optional["BatchSender"] = None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.path)
            self._set_send_timeout(sock)
        except OSError:
            sock.close()
            raise
        return sock

    def _set_send_timeout(self, sock: socket.socket) -> None:
        """A full engine queue blocks a send; past send_timeout it fails with EAGAIN and counts as busy, so we
        back off and give up after busy_seconds instead of hanging for ever on an engine that stopped reading.

        The kernel's SO_SNDTIMEO, not Python's timeout: that one adds a poll() to every send and would not
        bound sendmmsg. Its struct timeval is two longs, or two 64-bit fields on 32-bit systems with a 64-bit
        time_t; where neither is taken, Python's timeout (and no sendmmsg, which it would not bound).
        """
        seconds = int(self.send_timeout)
        micros = int((self.send_timeout - seconds) * 1e6)
        for layout in ("@ll", "@qq"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack(layout, seconds, micros))
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
        sock.settimeout(self.send_timeout)
        self.batched = False

    def _deliver(self, attempt: Callable[[socket.socket], None], progress: Callable[[], int] = lambda: 0) -> None:
        """Run ``attempt`` on the connection until it returns, reconnecting and backing off as needed.

        ``progress`` counts what the attempts took so far: any progress restarts the retry window.
        """
        deadline, deadline_kind = 0.0, None  # the retry window restarts when the kind of trouble changes
        delay, seen = 0.05, progress()
        while True:
            try:
                if self.sock is None:
                    self.sock = self._connect()
                attempt(self.sock)
                if self.trouble:
                    log.info("The engine's socket %s takes events again after %.1f s", self.path,
                             time.monotonic() - self.trouble_since)
                    self.trouble = None
                return
            except InterruptedError:  # a signal: Python ran its handler
                if self.stop.is_set():
                    self._stopped()
                continue
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
                if progress() != seen:
                    seen, deadline_kind, delay = progress(), None, 0.05
                if kind != deadline_kind:
                    deadline, deadline_kind = now + limit, kind
                if now >= deadline:
                    hint = "is wazuh-analysisd running?" if kind == "gone" else "is wazuh-analysisd stuck?"
                    raise SinkError(f"{reason} after {limit:.0f} s of retries; {hint} Nothing of the current "
                                    "object was acknowledged") from None
                self.waits += 1
                if self.stop.wait(min(delay, max(0.0, deadline - now))):
                    self._stopped()
                delay = min(delay * 2, 2.0)

    def _stopped(self) -> None:
        waiting = {"busy": "the engine was busy", "gone": f"the engine's socket {self.path} was gone"}.get(
            self.trouble or "", "sending to the engine")
        raise Interrupted(f"stopped while {waiting}; what the engine took of the batch is recorded, the rest is sent "
                          "on the next run")

    def _send(self, datagram: bytes) -> None:
        self._deliver(lambda sock: sock.send(datagram))

    def send_batch(self, events: Batch, origin: str) -> SendResult:
        result = SendResult()
        header, limit = self.header, self.max_datagram
        events = as_batch(events)
        with self.lock:
            text = events.arrow_text()
            batcher = self._batcher_for() if text is not None else None
            try:
                if batcher is not None:
                    from aws_s3_wodle.sinks.mmsg import Spans
                    self._send_spans(batcher, Spans(text), events, origin, result)
                else:
                    self._send_all(events, origin, header, limit, result)
            except Interrupted as exc:
                exc.partial = result  # what it took of the batch, in order: the caller's checkpoint and counters
                raise
        return result

    def _send_all(self, events: Iterable[bytes], origin: str, header: bytes, limit: int, result: SendResult) -> None:
        for event in events:
            datagram = header + event
            if len(datagram) > limit:
                self._record(origin, event, len(datagram), result)
                continue
            if self.stop.is_set():  # between two events: a slow engine does not hold a stop
                self._stopped()
            self._send(datagram)
            result.sent += 1
            result.bytes += len(datagram)

    def _record(self, origin: str, event: bytes, size: int, result: SendResult) -> None:
        where = self.recorder.record(origin, event, size, self.max_datagram)
        log.debug("An event of %s is %d bytes, over the engine's %d-byte datagram limit: not sent, recorded in %s",
                  origin, size, self.max_datagram, where)
        result.oversized += 1
        result.recorded_in = where

    def _batcher_for(self) -> Optional["BatchSender"]:
        """The batch sender for a batch kept in one Arrow array, when sendmmsg exists."""
        if not self.batched:
            return None
        if self._batcher is None:
            from aws_s3_wodle.sinks.mmsg import BatchSender
            self._batcher = BatchSender.create(self.header)
            if self._batcher is None:
                self.batched = False
                log.debug("sendmmsg is not available here: sending one datagram per system call")
        return self._batcher

    def _send_spans(self, batcher: "BatchSender", spans: "Spans", events: Sequence[bytes], origin: str,
                    result: SendResult) -> None:
        """The batch path: runs of sendable events go out a window at a time; oversized ones are recorded."""
        from aws_s3_wodle.sinks.mmsg import Refused
        over = spans.longer_than(self.max_datagram - len(self.header))
        start = 0
        for stop in [*over, len(spans)]:
            if stop > start:
                position = [start]

                def attempt(sock: socket.socket, stop: int = stop, position: list = position) -> None:
                    while position[0] < stop:
                        if self.stop.is_set():  # between two windows: a slow engine does not hold a stop
                            self._stopped()
                        position[0] += batcher.send(sock.fileno(), spans, position[0], stop)

                try:
                    self._deliver(attempt, lambda position=position: position[0])
                except Interrupted:
                    self._count_sent(result, spans, start, position[0])  # what this span sent before the stop
                    raise
                except Refused as exc:  # the kernel or a seccomp filter forbids sendmmsg: the rest one by one
                    log.warning("sendmmsg is refused here (%s): sending one datagram per system call", exc)
                    self.batched, self._batcher = False, None
                    self._count_sent(result, spans, start, position[0])
                    rest = events[position[0]:]  # type: ignore[index]
                    self._send_all(rest, origin, self.header, self.max_datagram, result)
                    return
                self._count_sent(result, spans, start, stop)
            if stop < len(spans):
                event = events[stop]
                self._record(origin, event, len(self.header) + len(event), result)
            start = stop + 1

    def _count_sent(self, result: SendResult, spans: "Spans", start: int, stop: int) -> None:
        result.sent += stop - start
        result.bytes += spans.total(start, stop) + (stop - start) * len(self.header)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def default_socket(wazuh_path: str) -> str:
    return str(Path(wazuh_path) / "queue" / "sockets" / "queue")
