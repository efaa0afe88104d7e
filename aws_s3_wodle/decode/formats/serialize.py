"""Records -> batches of compact JSON documents (bytes), the shape sinks take.

orjson does the work; the rare value it refuses (an integer past 64 bits, a non-string key)
falls back to the standard library for that record only, so such a record is still delivered.
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Iterable, Iterator, List, TypeVar

import orjson

from aws_s3_wodle.decode.errors import DecodeError

__all__ = ["dumps", "dump_batch", "batched"]

T = TypeVar("T")


def dumps(record: Any) -> bytes:
    """One compact UTF-8 JSON document."""
    try:
        return orjson.dumps(record)
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=str).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"a record cannot be written as JSON: {exc}") from None


def dump_batch(records: Iterable[Any]) -> List[bytes]:
    """``dumps`` of each record, in order."""
    out = []
    dump = orjson.dumps
    for record in records:
        try:
            out.append(dump(record))
        except (orjson.JSONEncodeError, TypeError):
            out.append(dumps(record))
    return out


def batched(items: Iterable[T], size: int) -> Iterator[List[T]]:
    """Lists of at most ``size`` items (memory is bounded by a batch, not by the object)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk
