"""Any log object -> records (dicts), streamed: the one entry point for non-Parquet objects.

The content decides, the key only breaks ties: compression by magic bytes (gzip, zip, plain),
then the format from the first 64 KiB (JSON in any of its shapes, CSV with a header row, plain
text lines). Anything unreadable (corrupt or truncated compression, broken JSON, binary data)
raises ``DecodeError`` with a one-line reason, also part-way through, after earlier records
were yielded. Every object is read within its limits (``limits.py``, counted by ``budget.py``): one
that passes them raises ``LimitExceeded`` (a DecodeError) naming the limit that fired.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator, Optional, Sequence, Tuple

from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.formats.budget import Budget
from aws_s3_wodle.decode.formats.compression import STREAM_ERRORS, describe_stream_error, open_streams
from aws_s3_wodle.decode.formats.csv import Dialect, iter_csv, sniff_csv
from aws_s3_wodle.decode.formats.json import iter_json, looks_like_json
from aws_s3_wodle.decode.formats.stream import plural, rejoined
from aws_s3_wodle.decode.formats.text import iter_text, looks_binary
from aws_s3_wodle.decode.limits import DEFAULT, LimitExceeded, Limits

__all__ = ["iter_records", "FORMATS"]

FORMATS = ("auto", "json", "csv", "text")
HEAD = 1 << 16
_BOM = b"\xef\xbb\xbf"
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zip")
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_CSV_SUFFIXES = (".csv", ".tsv")
_TEXT_SUFFIXES = (".txt", ".log")


def iter_records(fileobj: BinaryIO, *, key: str = "", format: str = "auto", delimiter: Optional[str] = None,
                 fieldnames: Optional[Sequence[str]] = None, limits: Limits = DEFAULT) -> Iterator[dict]:
    """Yield the records of one downloaded object, one dict at a time.

    ``fileobj`` is a seekable binary file (the fetch spool); ``key`` only breaks ties between
    CSV and text and names nothing else. ``format`` forces "json", "csv" or "text"; for CSV,
    ``delimiter`` and ``fieldnames`` (headerless files) override what is sniffed. A text record
    is ``{"full_log": line}``; a JSON record is the object itself; a CSV record maps the header's
    names to the row's cells (strings). ``limits`` bound what the object may cost (``LimitExceeded``).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    count = 0
    budget = Budget(limits)
    for compression, member, stream in open_streams(fileobj, budget):
        where = f"zip member {member!r}: " if member else ""
        try:
            for record in _decode(stream, member or key, format, delimiter, fieldnames):
                count += 1
                budget.record_done()
                yield record
        except LimitExceeded as exc:
            if where:
                exc.args = (f"{where}{exc}",)
            raise
        except DecodeError as exc:
            raise DecodeError(f"{where}{exc}") from None
        except STREAM_ERRORS as exc:
            raise DecodeError(f"{where}{describe_stream_error(exc, compression)} after {plural(count, 'record')}") from None


def _decode(stream: BinaryIO, name: str, format: str, delimiter: Optional[str],
            fieldnames: Optional[Sequence[str]]) -> Iterator[dict]:
    head = stream.read(HEAD)
    complete = len(head) < HEAD
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    kind, dialect = _detect(head, name, complete) if format == "auto" else (format, None)
    if kind == "empty":
        return
    body = rejoined(head, stream)
    if kind == "json":
        yield from iter_json(body, head)
    elif kind == "csv":
        if dialect is None and not delimiter:
            dialect = sniff_csv(head.decode("utf-8", "replace"), complete=complete)
        yield from iter_csv(body, dialect=dialect, delimiter=delimiter or _suffix_delimiter(name),
                            fieldnames=fieldnames)
    else:
        yield from iter_text(body)


def _detect(head: bytes, name: str, complete: bool) -> Tuple[str, Optional[Dialect]]:
    if not head.strip():
        return ("empty" if complete else "text"), None
    if looks_like_json(head):
        return "json", None
    suffix = _suffix(name)
    if looks_binary(head):
        raise DecodeError(f"binary data, neither JSON, CSV nor text (starts with {head[:16]!r})")
    if suffix in _JSON_SUFFIXES:
        raise DecodeError(f"the key says JSON but the data is not a JSON object or array "
                          f"(starts with {head.lstrip()[:40]!r})")
    if suffix in _TEXT_SUFFIXES:
        return "text", None
    dialect = sniff_csv(head.decode("utf-8", "replace"), complete=complete)
    if dialect is not None or suffix in _CSV_SUFFIXES:
        return "csv", dialect
    return "text", None


def _suffix(name: str) -> str:
    """The key's format suffix, compression suffixes removed: 'a/b.CSV.gz' -> '.csv'."""
    name = name.rsplit("/", 1)[-1].lower()
    while name.endswith(_COMPRESSED_SUFFIXES):
        name = name.rsplit(".", 1)[0]
    return "." + name.rsplit(".", 1)[1] if "." in name else ""


def _suffix_delimiter(name: str) -> Optional[str]:
    return "\t" if _suffix(name) == ".tsv" else None
