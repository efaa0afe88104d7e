"""Plain text -> one record ``{"full_log": line}`` per non-empty line (what Wazuh's rules read).

Lines are decoded as UTF-8 with undecodable bytes replaced, so a stray Latin-1 byte costs a
character, not the event. Binary data is refused up front (``looks_binary``), not sent as text.
Lines are read with a size limit (``MAX_LINE``): a line past it is no log line an engine can take, and
holding it whole would cost memory in proportion to the object. It makes the object fail with a
``DecodeError`` naming the line and its size (the lines before it are delivered); the object stays
queued / unread, so the line is reported, never silently dropped.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from aws_s3_wodle.decode.errors import DecodeError

__all__ = ["iter_text", "looks_binary", "MAX_LINE"]

MAX_LINE = 1 << 20  # bytes of one text line, its line break not counted
_CHUNK = 1 << 16

_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 12, 13, 27))


def looks_binary(head: bytes) -> bool:
    """NUL bytes, or more than 10 % control characters, in the first bytes: not a text log."""
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = len(head) - len(head.translate(None, _CONTROL))
    return controls * 10 > len(head)


def iter_text(stream: BinaryIO, max_line: int = MAX_LINE) -> Iterator[dict]:
    number = 0
    while True:
        line = stream.readline(max_line + 2)  # room for "\r\n"
        if not line:
            return
        number += 1
        body = line.rstrip(b"\r\n")
        if len(body) > max_line:
            size = len(body) if line.endswith(b"\n") else _measure(len(line), stream)
            raise DecodeError(f"line {number} is {size} bytes long, over the "
                              f"{max_line}-byte limit of a text line; not a log line (the lines before it "
                              "were read)")
        text = body.decode("utf-8", "replace")
        if text.strip():
            yield {"full_log": text}


def _measure(read: int, stream: BinaryIO) -> int:
    """The size of an oversized line, read on in chunks (memory stays bounded) up to its line break."""
    size = read
    while True:
        chunk = stream.readline(_CHUNK)
        size += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return size - (2 if chunk.endswith(b"\r\n") else 1 if chunk.endswith(b"\n") else 0)
