"""CSV with a header row (or given field names) -> one record per row, streamed.

Detection is deliberately cautious, since a text log with commas must stay a text log: the
sample's rows must all have the same width (two fields or more) under the sniffed dialect, and
the header's cells must be distinct, non-empty names rather than values. Rows that are shorter
than the header keep the fields they have; extra cells go to ``_extra`` (never dropped).
"""
from __future__ import annotations

import csv
import io
import re
from typing import BinaryIO, Iterator, Optional, Sequence, Type, Union

from aws_s3_wodle.decode.errors import DecodeError

__all__ = ["iter_csv", "sniff_csv"]

_DELIMITERS = ",;\t|"
_SAMPLE_ROWS = 50
_VALUE = re.compile(r"[-+]?(\d[\d,.:/ -]*|\.\d+)([eE][-+]?\d+)?")  # numbers, dates, times: values, not names

Dialect = Union[Type[csv.Dialect], csv.Dialect]


def sniff_csv(sample: str, *, complete: bool) -> Optional[Dialect]:
    """The dialect when ``sample`` (the object's first bytes as text) is CSV with a header row.

    ``complete`` says whether the sample is the whole object (else its last line may be cut).
    """
    lines = sample.splitlines()
    if not complete and lines:
        lines = lines[:-1]
    lines = [line for line in lines if line.strip()][:_SAMPLE_ROWS]
    if len(lines) < 2:
        return None
    text = "\n".join(lines)
    try:
        # Only the delimiter is taken from the sniffer: its guesses about quoting are unreliable
        # (it misses RFC 4180's doubled quotes), and nearly every CSV writer quotes the standard way.
        delimiter = csv.Sniffer().sniff(text, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return None
    dialect = type("Sniffed", (csv.excel,), {"delimiter": delimiter})
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error:
        return None
    header = rows[0]
    if len(header) < 2 or any(len(row) != len(header) for row in rows):
        return None
    names = [cell.strip() for cell in header]
    if not all(names) or len(set(names)) != len(names) or any(_VALUE.fullmatch(n) for n in names):
        return None
    return dialect


def iter_csv(stream: BinaryIO, *, dialect: Optional[Dialect] = None, delimiter: Optional[str] = None,
             fieldnames: Optional[Sequence[str]] = None) -> Iterator[dict]:
    """Rows of ``stream`` (UTF-8; undecodable bytes replaced) as dicts keyed by the header.

    ``fieldnames`` are for headerless files (every row is data); ``delimiter`` overrides the
    dialect's (e.g. ``" "`` for space-separated logs).
    """
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    kwargs = {"delimiter": delimiter} if delimiter else {}
    reader = csv.reader(text, dialect or csv.excel, **kwargs)
    try:
        names = list(fieldnames) if fieldnames else None
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if names is None:
                names = [cell.strip() for cell in row]
                continue
            record = dict(zip(names, row))
            if len(row) > len(names):
                record["_extra"] = row[len(names):]
            yield record
    except csv.Error as exc:
        raise DecodeError(f"bad CSV at line {reader.line_num}: {exc}") from None
    finally:
        text.detach()  # the caller owns (and closes) the byte stream
