"""A batch of JSON events kept as one Arrow string array: what the Parquet decoder hands to sinks.

It is a read-only sequence of ``bytes`` (``len``, iteration, indexing, slicing), so sinks and the
delivery code treat it as the ``list[bytes]`` other decoders give. The difference is memory and
time: the events stay in Arrow's one buffer, and each ``bytes`` is made only when a sink takes
it, one at a time, instead of 5000 Python objects per batch made at once and alive together.
"""
from __future__ import annotations

from typing import Iterator, Sequence, Union, overload

import pyarrow as pa

__all__ = ["TextBatch"]


class TextBatch(Sequence[bytes]):
    __slots__ = ("_text", "_offsets", "_data")
    discarded = 0  # the Parquet path drops no event

    def arrow_text(self) -> pa.Array:
        """The Arrow binary array holding the events (what sinks send from in place): the Batch seam."""
        return self._text

    def __init__(self, text: pa.Array) -> None:
        if pa.types.is_large_string(text.type) or pa.types.is_large_binary(text.type):
            text = text.cast(pa.binary())
        if text.null_count:
            raise ValueError("a batch of events has no null entries")
        self._text = text  # owns the buffers the views below point into
        _, offsets, data = text.buffers()
        self._offsets = memoryview(offsets).cast("i")[text.offset:text.offset + len(text) + 1] if len(text) else \
            memoryview(b"\0\0\0\0").cast("i")
        self._data = memoryview(data) if data is not None else memoryview(b"")

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> "TextBatch": ...

    def __getitem__(self, i: Union[int, slice]) -> Union[bytes, "TextBatch"]:
        n = len(self)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step != 1:
                raise ValueError("a TextBatch slices with step 1 only")
            return TextBatch(self._text.slice(start, max(0, stop - start)))
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("TextBatch index out of range")
        return self._data[self._offsets[i]:self._offsets[i + 1]].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        data, offsets = self._data, self._offsets
        lo = offsets[0]
        for hi in offsets[1:]:
            yield data[lo:hi].tobytes()
            lo = hi

    @property
    def nbytes(self) -> int:
        """Bytes of all the events (without separators)."""
        return self._offsets[-1] - self._offsets[0]

    @property
    def text(self) -> pa.Array:
        """The events as an Arrow array (string or binary), for sinks that write them in bulk."""
        return self._text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (TextBatch, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"TextBatch({len(self)} events, {self.nbytes} bytes)"
