"""Where events go: the analysisd datagram socket, or a JSON-lines file / stdout.

A sink takes a batch of events (JSON documents as bytes) and either accepts all of them or raises
SinkError, in which case nothing of the object is acknowledged. Events a sink can never carry (too big
for a datagram) go to an OversizeRecorder, so they are kept, not lost.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import orjson

from aws_s3_wodle.errors import SinkError


class OversizeRecorder:
    """Appends events too big for the engine to a JSON-lines file, with where they came from."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path

    def record(self, origin: str, event: bytes, size: int, limit: int) -> str:
        if self.path is None:
            raise SinkError(f"an event of {origin} is {size} bytes, over the engine's {limit}-byte limit, and no "
                            "--state-dir is set to record it; the object stays queued")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            with os.fdopen(fd, "ab") as f:
                f.write(orjson.dumps({"recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                      "object": origin, "bytes": size, "event": _as_json(event)}) + b"\n")
        except (OSError, orjson.JSONEncodeError) as exc:
            raise SinkError(f"cannot record an oversized event of {origin} in {self.path}: {exc}; the object "
                            "stays queued") from None
        return str(self.path)


def _as_json(event: bytes):
    """The event as JSON in the record: itself when it is JSON, else its text (a CloudWatch Logs message is
    sent as it is, and may be any line)."""
    try:
        orjson.loads(event)
        return orjson.Fragment(event)
    except orjson.JSONDecodeError:
        return event.decode("utf-8", "replace")
