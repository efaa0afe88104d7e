"""Plain text -> one record ``{"full_log": line}`` per non-empty line (what Wazuh's rules read).

Lines are decoded as UTF-8 with undecodable bytes replaced, so a stray Latin-1 byte costs a
character, not the event. Binary data is refused up front (``looks_binary``), not sent as text.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

__all__ = ["iter_text", "looks_binary"]

_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 12, 13, 27))


def looks_binary(head: bytes) -> bool:
    """NUL bytes, or more than 10 % control characters, in the first bytes: not a text log."""
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = len(head) - len(head.translate(None, _CONTROL))
    return controls * 10 > len(head)


def iter_text(stream: BinaryIO) -> Iterator[dict]:
    for line in stream:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text.strip():
            yield {"full_log": text}
