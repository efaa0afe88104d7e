"""Counting what an object costs while it is read, so a bomb fails early instead of filling the host.

Every decompressed stream of ``iter_records`` is read through a ``Metered`` reader that charges one
``Budget`` per object: bytes out in all (``--max-object-bytes``), bytes out per compressed byte in
(``--max-compression-ratio``, judged past ``RATIO_FLOOR``), and bytes read since the decoder last
produced a record (``--max-event-bytes``). The last one is what stops a 1 GB JSON string or a
newline-less CSV line: no decoder ever holds more than the limit plus its read-ahead of one record, since
the read that would pass it raises instead. Checks cost a few integer operations per read (64 KiB).
"""
from __future__ import annotations

from typing import BinaryIO, Callable, Optional

from aws_s3_wodle.decode.limits import RATIO_FLOOR, LimitExceeded, Limits

# What the decoders may read ahead beyond the record they are building (buffered reader, ijson's buffer,
# the text decoder's chunk, the format sniffer's head): a record within the limit never trips it.
READ_AHEAD = 1 << 20


class Budget:
    """The bytes one object has cost so far, checked against its limits as they grow."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0        # decompressed bytes read, all streams of the object
        self.since_record = 0  # bytes read since the last record was produced
        self.records = 0

    def record_done(self) -> None:
        self.records += 1
        self.since_record = 0

    def charge(self, n: int, compressed: Optional[int]) -> None:
        """``n`` more bytes were read; ``compressed``: compressed bytes consumed so far (None when plain)."""
        self.total += n
        self.since_record += n
        limits = self.limits
        if self.since_record > limits.event_bytes + READ_AHEAD:
            raise LimitExceeded("event_bytes", limits.event_bytes,
                                f"record {self.records + 1} is still not complete after {self.since_record} bytes")
        if self.total > limits.object_bytes:
            raise LimitExceeded("object_bytes", limits.object_bytes,
                                f"the object decompresses to more than {limits.object_bytes} bytes")
        if compressed is not None and self.total > RATIO_FLOOR and self.total > compressed * limits.compression_ratio:
            raise LimitExceeded("compression_ratio", limits.compression_ratio,
                                f"the object inflates {self.total // max(compressed, 1)}:1 ({self.total} bytes "
                                f"from {compressed}; a compression bomb?)")


class Metered:
    """A read-only byte stream that charges a Budget for every byte it gives."""

    def __init__(self, stream: BinaryIO, budget: Budget, compressed: Optional[Callable[[], int]] = None) -> None:
        self._stream, self._budget, self._compressed = stream, budget, compressed

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:  # to the end, a chunk at a time: the limits are checked as it grows
            parts = []
            while chunk := self.read(1 << 16):
                parts.append(chunk)
            return b"".join(parts)
        data = self._stream.read(n)
        self._budget.charge(len(data), self._compressed() if self._compressed else None)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._stream.readline(limit if limit is not None and limit >= 0 else 1 << 16)
        self._budget.charge(len(data), self._compressed() if self._compressed else None)
        return data
