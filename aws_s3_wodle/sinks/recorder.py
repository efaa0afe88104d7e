"""Events too big for the engine: recorded as their first bytes, size and sha256, in capped, rotated files.

An event over the engine's datagram limit cannot be sent; its object is still delivered, and the event is
recorded so an operator can see it and find it again in the object (the sha256 is of the event's JSON as it
would have been sent). Only the head is kept: an object of hostile events must not fill the disk (recording
a 200 MB event whole did), so each file is rotated at ``max_bytes`` and ``keep`` older files are kept
(``oversized-events.jsonl.1`` the newest of them); the rotation is logged, naming the file removed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional

import orjson

from aws_s3_wodle.config.settings import RECORD_FILES, RECORD_MAX_BYTES
from aws_s3_wodle.errors import SinkError

log = logging.getLogger("aws-s3-wodle")

FILE_NAME = "oversized-events.jsonl"
HEAD_BYTES = 4096  # of each event, kept as text (cut at a character boundary)


class RotatingFile:
    """Lines appended to a file rotated past ``max_bytes`` (``name.1`` .. ``name.keep``, oldest removed).

    A line is written in one ``write``: lines of several writers never interleave. The caller serialises
    appends (``append`` holds a lock of its own too)."""

    def __init__(self, path: Path, *, max_bytes: int, keep: int, what: str) -> None:
        self.path, self.max_bytes, self.keep, self.what = path, max_bytes, keep, what
        self.lock = threading.Lock()

    def append(self, line: bytes) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self._rotate(size)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                if os.write(fd, line) != len(line):
                    raise OSError("short write (disk full?)")
            finally:
                os.close(fd)

    def _rotate(self, size: int) -> None:
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        dropped = oldest.exists()
        for n in range(self.keep, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n - 1}") if n > 1 else self.path
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n}"))
        log.warning("%s reached %d bytes (--record-max-bytes %d): rotated to %s.1%s", self.path, size,
                    self.max_bytes, self.path.name,
                    f"; the oldest {self.what} ({oldest.name}) were removed (--record-files {self.keep})"
                    if dropped else "")


def head_text(event: bytes, size: int = HEAD_BYTES) -> str:
    """The first ``size`` bytes of an event as text, a character cut in two dropped."""
    head = event[:size]
    return head.decode("utf-8", "ignore") if len(event) > size else head.decode("utf-8", "replace")


class OversizeRecorder:
    """Records each event too big for the engine: its head, size and sha256, with the object it came from."""

    def __init__(self, path: Optional[Path], *, max_bytes: int = RECORD_MAX_BYTES, keep: int = RECORD_FILES,
                 head: int = HEAD_BYTES) -> None:
        self.path = path
        self.head = head
        self.file = RotatingFile(path, max_bytes=max_bytes, keep=keep, what="oversized events") if path else None

    def record(self, origin: str, event: bytes, size: int, limit: int) -> str:
        if self.file is None or self.path is None:
            raise SinkError(f"an event of {origin} is {size} bytes, over the engine's {limit}-byte limit, and no "
                            "--state-dir is set to record it; the object stays queued")
        line = orjson.dumps({"recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "object": origin,
                             "bytes": size, "event_bytes": len(event),
                             "sha256": hashlib.sha256(event).hexdigest(),
                             "head": head_text(event, self.head), "truncated": len(event) > self.head}) + b"\n"
        try:
            self.file.append(line)
        except OSError as exc:
            raise SinkError(f"cannot record an oversized event of {origin} in {self.path}: "
                            f"{exc.strerror or exc}; the object stays queued") from None
        return str(self.path)
