"""JSON objects -> records, streamed: one object, an array, JSON lines, concatenated objects, or
a CloudTrail-style ``{"Records": [...]}`` document (one record per item).

JSON lines take the fast path (one ``orjson.loads`` per line). Everything else goes through
ijson's C parser, which builds one record at a time: a 1 GB array or a Firehose object of
back-to-back ``{...}{...}`` with no newline never sits whole in memory.
"""
from __future__ import annotations

import re
from typing import Any, BinaryIO, Iterator

import ijson
import orjson

from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.formats.stream import plural, rejoined

__all__ = ["iter_json", "looks_like_json"]

# Longest line parsed whole as one JSON line; from a longer one (a single-line Firehose object of
# back-to-back values, a huge record) on, the data is parsed as a stream.
LINE_LIMIT = 1 << 20
_NOT_A_LINE = object()

_RECORDS = re.compile(rb'\A\s*\{\s*"Records"\s*:\s*\[')
# After the opening bracket, what a JSON value can start with: a log line like "[2024-05-01 ...]"
# or "{host} ..." must not be taken for JSON.
_OPENS_JSON = re.compile(rb'\A\s*(\{\s*("|\}|\Z)|\[\s*([\[\{"\]]|(-?\d[\d.eE+-]*|true|false|null)\s*[,\]]|\Z))')


def looks_like_json(head: bytes) -> bool:
    """Whether the object (its first bytes, BOM removed) starts like a JSON object or array."""
    return _OPENS_JSON.match(head) is not None


def iter_json(stream: BinaryIO, head: bytes) -> Iterator[dict]:
    """Records of a JSON object; ``stream`` reads from the start, ``head`` is its first bytes."""
    start = head.lstrip()
    if start.startswith(b"["):
        yield from _items(stream, "item", "array item")
    elif _RECORDS.match(start):
        yield from _items(stream, "Records.item", "Records item")
    else:
        yield from _lines_or_values(stream)


def _lines_or_values(stream: BinaryIO) -> Iterator[dict]:
    """JSON lines while every line is one whole value (the fast path); from the first line that is
    not (a pretty-printed object, back-to-back objects, a line over the limit), value by value."""
    number = count = 0
    while True:
        line = stream.readline(LINE_LIMIT)
        if not line:
            return
        number += 1
        try:
            value = orjson.loads(line) if len(line) < LINE_LIMIT or line.endswith(b"\n") else _NOT_A_LINE
        except orjson.JSONDecodeError:
            value = None if not line.strip() else _NOT_A_LINE
            if value is None:
                continue
        if value is _NOT_A_LINE:
            yield from _items(rejoined(line, stream), "", "value", done=count, line=number)
            return
        count += 1
        yield _record(value, f"line {number}")


def _items(stream: BinaryIO, prefix: str, what: str, *, done: int = 0, line: int = 0) -> Iterator[dict]:
    count = done
    try:
        for value in ijson.items(stream, prefix, multiple_values=True, use_float=True):
            count += 1
            yield _record(value, f"{what} {count}")
    except ijson.JSONError as exc:
        since = f" (read as a stream of values from line {line} on)" if line > 1 else ""
        raise DecodeError(f"{_ijson_reason(exc)} after {plural(count, 'record')}{since}") from None


def _record(value: Any, where: str) -> dict:
    if isinstance(value, dict):
        return value
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    raise DecodeError(f"{where} is {kind}, not a JSON object")


def _ijson_reason(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "premature EOF" in first:
        return "truncated JSON (the data ends inside a value)"
    return f"invalid JSON ({first})"
