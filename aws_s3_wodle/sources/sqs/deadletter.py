"""Messages we give up on: appended, whole, to a JSON-lines file before they are deleted from the queue.

Only used when `<dead_letter_after>` is set and a message failed for reasons that can never pass
(see delivery/outcome.py). The line holds the body exactly as received, so the notification can be replayed
(e.g. `aws sqs send-message --message-body "$(jq -r .body <line>)"`) once its cause is fixed.
If the file cannot be written the message is not deleted: it stays for the queue's redrive policy.
The file is capped (MAX_BYTES): it is never rotated, since its lines are the only copy of messages
already deleted from the queue; once full, messages are left to the redrive policy instead, and the
log says how to make room.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import orjson

from aws_s3_wodle.sources.sqs.queue import Message

FILE_NAME = "dead-letter.jsonl"
MAX_BYTES = 64 << 20  # at least 256 of SQS's largest messages (256 KiB); a host's disk is not the queue


class DeadLetterError(Exception):
    pass


class DeadLetterFile:
    def __init__(self, path: Optional[Path], max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def record(self, queue: str, message: Message, reasons: list[str]) -> str:
        """Append the message with why it was given up; returns the path. Raises DeadLetterError."""
        if self.path is None:
            raise DeadLetterError("no state directory is set (--state-dir)")
        line = orjson.dumps({
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "queue": queue,
            "message_id": message.message_id, "receive_count": message.receive_count,
            "sent_timestamp_ms": message.sent_timestamp_ms, "reasons": reasons, "body": message.body}) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                if os.fstat(fd).st_size + len(line) > self.max_bytes:
                    raise DeadLetterError(f"{self.path} is full ({self.max_bytes} bytes): replay or move its lines, "
                                          "then remove it, to let dead-lettering go on")
                if os.write(fd, line) != len(line):  # one write per line: writers never interleave lines
                    raise OSError("short write (disk full?)")
                os.fsync(fd)        # the queue forgets the message right after this
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeadLetterError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return str(self.path)
