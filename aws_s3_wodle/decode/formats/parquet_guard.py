"""What a Parquet object says about itself, read before pyarrow decodes anything of it.

pyarrow parses the whole footer to open a file (a schema of 100k columns costs it ~250 MB) and
decompresses a page whole to read it (a page holding one 200 MB value costs that, however small it
is compressed). So an object is judged first from the few bytes that state these sizes, read here
with a minimal reader of Thrift's compact protocol (the Parquet format's own encoding):
  - the footer's length and its schema's number of fields (``--max-columns``), before pyarrow opens it;
  - once opened, the row groups' uncompressed size (``--max-object-bytes``) and its ratio to the
    object's size (``--max-compression-ratio``);
  - the header of every page of a column chunk large enough to hold a page over ``PAGE_FACTOR`` times
    ``--max-event-bytes``: its uncompressed size, before the page is read. A page holds many values
    (pyarrow checks its page size only every 1024 values, so rows of 10 KB make 10 MB pages): it may be
    larger than one event; a row over the limit that hides in a page under it is refused when converted.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Optional, Tuple

from aws_s3_wodle.decode.limits import RATIO_FLOOR, LimitExceeded, Limits

# A footer this long belongs to no log writer (a few thousand fields over a few row groups is < 4 MiB);
# pyarrow would take ~10x its size to parse it.
MAX_FOOTER = 32 << 20
_HEADER_READ = 4096
PAGE_FACTOR = 4  # a page may be this many times --max-event-bytes (32 MiB by default)  # bytes read at a page's offset to decode its header; more when its statistics are long


class _Compact:
    """Just enough of Thrift's compact protocol to read a struct's leading fields and skip the rest."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise EOFError
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 70:
                raise ValueError("varint too long")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def field(self, last: int) -> Tuple[int, int]:
        """(field id, type) of the next field of a struct; type 0 is its end."""
        b = self.byte()
        kind = b & 0x0F
        if kind == 0:
            return 0, 0
        delta = b >> 4
        return (last + delta if delta else self.zigzag()), kind

    def list_header(self) -> Tuple[int, int]:
        b = self.byte()
        size, kind = b >> 4, b & 0x0F
        if size == 15:
            size = self.varint()
        return size, kind

    def skip(self, kind: int, depth: int = 0) -> None:
        if depth > 64:
            raise ValueError("nested too deep")
        if kind in (1, 2):          # booleans live in the field header
            return
        if kind == 3:
            self.pos += 1
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.pos += 8
        elif kind == 8:
            length = self.varint()  # read before pos is: `self.pos += self.varint()` would drop the varint's bytes
            self.pos += length
        elif kind in (9, 10):
            size, item = self.list_header()
            for _ in range(size):
                self.skip(item if item not in (1, 2) else 3, depth + 1)  # booleans in lists are one byte each
        elif kind == 11:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(types >> 4, depth + 1)
                    self.skip(types & 0x0F, depth + 1)
        elif kind == 12:
            last = 0
            while True:
                last, t = self.field(last)
                if t == 0:
                    return
                self.skip(t, depth + 1)
        else:
            raise ValueError(f"unknown Thrift type {kind}")
        if self.pos > len(self.data):
            raise EOFError


def footer_length(f: BinaryIO, size: int) -> int:
    """The footer's length, from the 4 bytes before the final magic."""
    f.seek(size - 8)
    return struct.unpack("<I", f.read(4))[0]


def schema_fields(f: BinaryIO, size: int) -> Optional[int]:
    """Fields of the schema (its groups and columns, the root not counted), read from the footer's first
    bytes; None when the footer does not start the usual way (pyarrow then judges it)."""
    length = footer_length(f, size)
    f.seek(size - 8 - length)
    reader = _Compact(f.read(min(length, 64)))
    try:
        last = 0
        while True:
            last, kind = reader.field(last)
            if kind == 0:
                return None
            if last == 2 and kind == 9:  # FileMetaData.schema: list<SchemaElement>
                return max(reader.list_header()[0] - 1, 0)
            if last > 2:
                return None
            reader.skip(kind)
    except (EOFError, ValueError):
        return None


def check_footer(f: BinaryIO, limits: Limits) -> None:
    """Refuse, before pyarrow opens the object, a footer or a schema no log writer makes."""
    pos = f.tell()
    try:
        size = f.seek(0, os.SEEK_END)
        length = footer_length(f, size)
        if length > MAX_FOOTER:
            raise LimitExceeded("columns", limits.columns, f"its footer is {length} bytes long (a schema or row "
                                f"groups beyond any log writer's; at most {MAX_FOOTER} bytes are read)")
        fields = schema_fields(f, size)
        if fields is not None and fields > limits.columns:
            raise LimitExceeded("columns", limits.columns, f"its schema has {fields} fields")
    finally:
        f.seek(pos)


def check_sizes(metadata, object_size: int, limits: Limits) -> None:
    """Refuse from the footer's sizes what would decompress past the object limit or inflate like a bomb."""
    total = sum(metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups))
    if total > limits.object_bytes:
        raise LimitExceeded("object_bytes", limits.object_bytes, f"its footer says its pages hold {total} bytes "
                            "uncompressed")
    if total > RATIO_FLOOR and total > max(object_size, 1) * limits.compression_ratio:
        raise LimitExceeded("compression_ratio", limits.compression_ratio,
                            f"it inflates {total // max(object_size, 1)}:1 ({total} bytes uncompressed in a "
                            f"{object_size}-byte object; a compression bomb?)")


def check_pages(f: BinaryIO, metadata, limits: Limits) -> None:
    """Refuse an object with a page over PAGE_FACTOR times the event limit, reading only page headers.

    Only the column chunks larger than that can hold such a page; in an ordinary object (pages of about
    1 MiB) there are none or a handful, whose headers are a few hundred bytes each.
    """
    page_limit = PAGE_FACTOR * limits.event_bytes
    pos = f.tell()
    try:
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                if chunk.total_uncompressed_size <= page_limit:
                    continue
                largest = _largest_page(f, chunk)
                if largest > page_limit:
                    raise LimitExceeded("event_bytes", limits.event_bytes,
                                        f"column {chunk.path_in_schema!r} (row group {g}) has a page of "
                                        f"{largest} bytes uncompressed, over {PAGE_FACTOR} times the event limit "
                                        "(a page is decoded whole)")
    finally:
        f.seek(pos)


def _largest_page(f: BinaryIO, chunk) -> int:
    """The largest uncompressed page of a column chunk, from its page headers (0 if they cannot be read:
    pyarrow then reports the chunk as corrupt)."""
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page and chunk.dictionary_page_offset else \
        chunk.data_page_offset
    if start is None:
        return 0
    end, offset, largest = start + chunk.total_compressed_size, start, 0
    while offset < end:
        header = _page_header(f, offset)
        if header is None:
            return largest
        uncompressed, compressed, length = header
        largest = max(largest, uncompressed)
        if compressed < 0 or length <= 0:
            return largest
        offset += length + compressed
    return largest


def _page_header(f: BinaryIO, offset: int) -> Optional[Tuple[int, int, int]]:
    """(uncompressed size, compressed size, header length) of the page header at ``offset``."""
    want = _HEADER_READ
    while want <= (1 << 24):
        f.seek(offset)
        reader = _Compact(f.read(want))
        sizes = {}
        try:
            last = 0
            while True:
                last, kind = reader.field(last)
                if kind == 0:
                    break
                if last in (2, 3) and kind == 5:
                    sizes[last] = reader.zigzag()
                else:
                    reader.skip(kind)
        except EOFError:
            if len(reader.data) < want:
                return None  # the object ends inside the header
            want *= 4
            continue
        except ValueError:
            return None
        if 2 not in sizes or 3 not in sizes:
            return None
        return sizes[2], sizes[3], reader.pos
    return None
