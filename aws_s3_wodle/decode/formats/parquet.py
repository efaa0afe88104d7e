"""Parquet objects (what Amazon Security Lake writes) -> batches of JSON events.

The object is streamed batch by batch with ``ParquetFile.iter_batches``, its pages read
through a small buffer (``buffer_size``, no ``pre_buffer``): memory holds one batch and a
few pages per column, not the object nor even its row group, whose column chunks may be
hundreds of MB (a 1M-row row group is read in the same ~150 MB as a 10k-row one).
Anything wrong with the bytes (empty, not Parquet, truncated, corrupt pages, a schema the
mapping cannot express) surfaces as ``DecodeError`` with a one-line reason, so the caller
can report the object and go on with the others.

What an object may cost is judged before a page is read (``parquet_guard.py``: footer length,
fields, uncompressed sizes, page sizes) and while converting (each event's JSON size); rows of a
row group whose rows are wide are read fewer at a time (``_BATCH_BYTES``). A limit that fires raises
``LimitExceeded`` (a DecodeError) naming it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import BinaryIO, Iterator, Optional, Tuple, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aws_s3_wodle.decode.arrow_json import batch_to_json, batch_to_text
from aws_s3_wodle.platform.memory import release_free_memory
from aws_s3_wodle.platform.threads import ordered_map
from aws_s3_wodle.decode.textbatch import TextBatch
from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.formats import parquet_guard
from aws_s3_wodle.decode.limits import DEFAULT, LimitExceeded, Limits

__all__ = ["iter_parquet_events", "parquet_row_count"]

Source = Union[str, "os.PathLike[str]", BinaryIO]

_MAGIC = b"PAR1"
_ENCRYPTED_MAGIC = b"PARE"
# What else an object may turn out to be, for a helpful message.
_OTHER_FORMATS = ((b"\x1f\x8b", "gzip data"), (b"PK\x03\x04", "a zip archive"), (b"{", "JSON"),
                  (b"[", "JSON"), (b"Obj\x01", "Avro"), (b"ORC", "ORC"))
# Errors pyarrow raises for bad bytes: ArrowInvalid is a ValueError, ArrowIOError an
# OSError; ValueError also covers undecodable text and schemas convert.py refuses.
_BAD_DATA = (pa.ArrowException, OSError, ValueError)
# Pages are read through this buffer instead of whole column chunks (pre_buffer off): memory
# then depends on the batch size, not on the row group size.
_READ_BUFFER = 1 << 18
_SMALL_DICTIONARY = 32 * 1024
_TRIM_AFTER_ROWS = 100_000  # objects this large leave tens of MB of free pages; smaller ones are not worth a trim
# Uncompressed bytes of one decoded batch, on average: a row group of wide rows is read in fewer rows per
# batch than --batch-size, so a batch of 5000 rows of 1 MB each never sits in memory at once.
_BATCH_BYTES = 64 << 20


def iter_parquet_events(source: Source, *, batch_size: int = 5000, keep_nulls: bool = False,
                        threads: int = 1, limits: Limits = DEFAULT) -> Iterator[TextBatch]:
    """Yield the JSON documents (``convert.batch_to_json``) of each batch of ``source``.

    Each batch is a ``TextBatch``: a sequence of ``bytes`` kept in one Arrow buffer. With
    ``threads`` > 1, that many batches are converted at once (in order), each in a thread:
    the conversion releases the GIL, so one large object uses several cores.

    ``source`` is a path or a seekable binary file object (it is not closed here).
    Raises ``DecodeError`` when the object cannot be read as Parquet, also part-way
    through, after earlier batches were yielded; ``LimitExceeded`` when it would cost more
    than ``limits`` allow (before any page is read when the footer tells).
    """
    pf = _open(source, dictionaries=True, limits=limits)
    total = pf.metadata.num_rows
    rows = 0  # decoded so far

    def decoded() -> Iterator[Tuple[int, pa.RecordBatch]]:
        """(first row, batch), row group by row group: a batch never spans two row groups, so each
        dictionary column has one dictionary per batch."""
        nonlocal rows
        reader = pf
        for group in range(pf.metadata.num_row_groups):
            done = 0  # rows of this row group already yielded
            while True:
                try:
                    for batch in _group_batches(reader, group, _rows_per_batch(pf.metadata, group, batch_size),
                                                skip=done):
                        yield rows, batch
                        rows += batch.num_rows
                        done += batch.num_rows
                    break
                except pa.ArrowNotImplementedError as exc:
                    if reader is pf and pf is not (plain := _reopen_plain(source, pf)):
                        # pyarrow cannot make this column a dictionary here: read it plain from where we are
                        reader = plain
                        continue
                    raise DecodeError(f"Parquet data after {rows} of {total} rows cannot be read: "
                                      f"{_reason(exc)}") from exc
                except _BAD_DATA as exc:
                    raise DecodeError(f"corrupt Parquet data after {rows} of {total} rows: {_reason(exc)}") from exc

    def convert(item: Tuple[int, pa.RecordBatch]) -> TextBatch:
        first, batch = item
        try:
            text = batch_to_text(batch, keep_nulls=keep_nulls)
            _check_events(text, first, limits)
            return TextBatch(text)
        except _BAD_DATA as exc:
            raise DecodeError(f"rows {first}..{first + batch.num_rows} of {total} cannot be written as JSON: "
                              f"{_reason(exc)}") from exc

    try:
        try:  # compile the converter now: a schema JSON cannot express fails before any row
            batch_to_json(pa.RecordBatch.from_pylist([], schema=pf.schema_arrow), keep_nulls=keep_nulls)
        except ValueError as exc:
            raise DecodeError(f"schema cannot be mapped to JSON: {exc}") from exc
        yield from ordered_map(convert, decoded(), threads)
    finally:
        pf.close()
        if rows >= _TRIM_AFTER_ROWS:
            release_free_memory()  # before the next object decodes: the peak stays one object's


def _rows_per_batch(metadata: pq.FileMetaData, group: int, batch_size: int) -> int:
    """``batch_size``, fewer when the row group's rows are so wide that a batch would pass _BATCH_BYTES."""
    rg = metadata.row_group(group)
    width = rg.total_byte_size // max(rg.num_rows, 1)
    return max(1, min(batch_size, _BATCH_BYTES // max(width, 1)))


def _check_events(text: pa.Array, first: int, limits: Limits) -> None:
    """Refuse the object when an event's JSON is over the event limit (one pass over the offsets)."""
    if not len(text):
        return
    lengths = pc.binary_length(text)
    largest = pc.max(lengths).as_py() or 0
    if largest > limits.event_bytes:
        row = first + pc.index(lengths, largest).as_py()
        raise LimitExceeded("event_bytes", limits.event_bytes, f"row {row} is {largest} bytes as JSON")


def _group_batches(reader: pq.ParquetFile, group: int, batch_size: int, skip: int = 0) -> Iterator[pa.RecordBatch]:
    """The batches of one row group, without its first ``skip`` rows.

    One decoding thread: pyarrow's own thread pool costs 1.5x the CPU for the same batches,
    and the other cores are converting and sending.
    """
    for batch in reader.iter_batches(batch_size=batch_size, row_groups=[group], use_threads=False):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        if skip:
            batch, skip = batch.slice(skip), 0
        yield batch


def _reopen_plain(source: Source, pf: pq.ParquetFile) -> pq.ParquetFile:
    """The same object without dictionary columns (``pf`` itself if it had none)."""
    if not any(pa.types.is_dictionary(t) for t in _leaf_types(pf.schema_arrow)):
        return pf
    return pq.ParquetFile(source, metadata=pf.metadata, pre_buffer=False, buffer_size=_READ_BUFFER)


def _leaf_types(schema: pa.Schema) -> Iterator[pa.DataType]:
    stack = [f.type for f in schema]
    while stack:
        t = stack.pop()
        if pa.types.is_struct(t):
            stack.extend(t.field(i).type for i in range(t.num_fields))
        elif pa.types.is_map(t):
            stack.extend((t.key_type, t.item_type))
        elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            stack.append(t.value_type)
        else:
            yield t


def parquet_row_count(source: Source) -> int:
    """Rows in ``source`` according to its footer, without reading any data page."""
    pf = _open(source)
    try:
        return pf.metadata.num_rows
    finally:
        pf.close()


def _open(source: Source, dictionaries: bool = False, limits: Optional[Limits] = None) -> pq.ParquetFile:
    """``ParquetFile(source)``, with a reason a person can act on when the bytes are wrong.

    With ``dictionaries``, the low-cardinality string columns are read as Arrow dictionaries
    (see ``_small_dictionaries``). With ``limits``, the object is judged by its footer and page
    headers first (``parquet_guard``): ``LimitExceeded`` before pyarrow parses or reads anything.
    """
    _check_magic(source)
    if limits is not None:
        with _binary(source) as f:
            parquet_guard.check_footer(f, limits)
    try:
        pf = pq.ParquetFile(source, pre_buffer=False, buffer_size=_READ_BUFFER)
        if limits is not None:
            with _binary(source) as f:
                size = f.seek(0, os.SEEK_END)
                parquet_guard.check_sizes(pf.metadata, size, limits)
                parquet_guard.check_pages(f, pf.metadata, limits)
        wanted = _small_dictionaries(pf.metadata) if dictionaries else []
        if not wanted:
            return pf
        return pq.ParquetFile(source, metadata=pf.metadata, read_dictionary=wanted, pre_buffer=False,
                              buffer_size=_READ_BUFFER)
    except _BAD_DATA as exc:
        raise DecodeError(f"unreadable Parquet footer or schema: {_reason(exc)}") from exc


def _small_dictionaries(metadata: pq.FileMetaData) -> list:
    """Paths of the string columns whose values come from a small dictionary in every row group.

    Read as Arrow dictionaries they are neither decoded into one string per row nor converted
    per row: their JSON text is made once per distinct value (arrowjson's dictionary node).
    Most OCSF strings are like that (class, severity, region, product, operation...). A
    dictionary page of at most 32 KiB compressed is far below the writers' 1 MiB dictionary
    limit, so no page of the column fell back to plain values (which pyarrow would hash back
    into a dictionary, slower than decoding them).
    """
    paths = []
    for i in range(metadata.num_columns):
        chunks = [metadata.row_group(g).column(i) for g in range(metadata.num_row_groups)]
        if chunks and all(c.physical_type == "BYTE_ARRAY" and c.has_dictionary_page and c.dictionary_page_offset
                          is not None and 0 < c.data_page_offset - c.dictionary_page_offset <= _SMALL_DICTIONARY
                          for c in chunks):
            paths.append(chunks[0].path_in_schema)
    return paths


@contextmanager
def _binary(source: Source) -> Iterator[BinaryIO]:
    """``source`` as a seekable binary file (opened when it is a path; a file object is left open, at its
    position)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield f
    else:
        pos = source.tell()
        try:
            yield source
        finally:
            source.seek(pos)


def _check_magic(source: Source) -> None:
    """Parquet starts and ends with ``PAR1``: look before pyarrow does, to say what is wrong."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                head, tail, size = _ends(f)
        except OSError as exc:
            raise DecodeError(f"cannot open {os.fspath(source)}: {exc.strerror or exc}") from exc
    else:
        pos = source.tell()
        try:
            head, tail, size = _ends(source)
        finally:
            source.seek(pos)
    if size == 0:
        raise DecodeError("empty object (0 bytes): not a Parquet file")
    if head != _MAGIC:
        what = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)
        raise DecodeError(f"not a Parquet file ({size} bytes{', looks like ' + what if what else ''}; "
                          f"starts with {head!r}, expected {_MAGIC!r})")
    if tail == _ENCRYPTED_MAGIC:
        raise DecodeError("encrypted Parquet footer (PARE): decryption is not supported")
    if tail != _MAGIC or size < 12:
        raise DecodeError(f"truncated Parquet object: {size} bytes and no {_MAGIC!r} footer at the end "
                          "(cut short while written or downloaded?)")


def _ends(f: BinaryIO):
    f.seek(0)
    head = f.read(4)
    size = f.seek(0, os.SEEK_END)
    f.seek(max(size - 4, 0))
    tail = f.read(4)
    return head, tail, size


def _reason(exc: BaseException) -> str:
    """pyarrow's message on one line, without the C++ source locations it sometimes appends."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("/") and ".cc:" not in ln] or lines
    return " ".join(lines) or type(exc).__name__
