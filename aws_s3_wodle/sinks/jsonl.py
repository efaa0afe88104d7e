"""JSON lines to a file (appended) or to stdout (`-`): for testing, piping, or another collector."""
from __future__ import annotations

import os
import sys
import threading
from typing import BinaryIO

from aws_s3_wodle.errors import SinkError
from aws_s3_wodle.seams import SendResult


class JsonLinesSink:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            if path == "-":
                self.out: BinaryIO = sys.stdout.buffer
            else:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                self.out = os.fdopen(fd, "ab")
        except OSError as exc:
            raise SinkError(f"cannot open the output file {path}: {exc.strerror}; check the path and permissions") from None

    def send_batch(self, events: list[bytes], origin: str) -> SendResult:
        try:
            with self.lock:
                self.out.write(b"\n".join(events) + b"\n" if events else b"")
                self.out.flush()  # the object is acknowledged after this: it must have left our buffers
        except OSError as exc:
            raise SinkError(f"cannot write to {self.path}: {exc.strerror}") from None
        return SendResult(sent=len(events), bytes=sum(len(e) + 1 for e in events))

    def close(self) -> None:
        if self.out is not sys.stdout.buffer:
            self.out.close()
