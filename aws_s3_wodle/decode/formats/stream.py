"""A stream that first gives back bytes already read, then the rest: lets a decoder look at an
object's head to choose how to read it, without reading (or rewinding) the object twice."""
from __future__ import annotations

import io
from typing import BinaryIO

BUFFER = 1 << 16


class Prefixed(io.RawIOBase):
    """``head`` followed by whatever ``rest`` still has; wrap in ``io.BufferedReader`` to use."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def rejoined(head: bytes, rest: BinaryIO) -> io.BufferedReader:
    """A buffered reader over ``head + rest``."""
    return io.BufferedReader(Prefixed(head, rest), BUFFER)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
