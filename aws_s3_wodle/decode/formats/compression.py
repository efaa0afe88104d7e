"""Compression told by magic bytes, never by the key's suffix: gzip, zip or plain.

S3 keys lie (``.json`` objects that are gzip, ``.gz`` objects that are not), so the first bytes
decide. Every stream returned here decompresses as it is read: nothing is inflated whole.
"""
from __future__ import annotations

import gzip
import zipfile
import zlib
from typing import BinaryIO, Iterator, Optional, Tuple

from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.formats.budget import Budget, Metered
from aws_s3_wodle.decode.limits import DEFAULT, RATIO_FLOOR, LimitExceeded

GZIP = "gzip"
ZIP = "zip"
PLAIN = "plain"

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
# Formats we recognise but do not read, to say what the object is instead of "not JSON".
_UNSUPPORTED = ((b"BZh", "bzip2-compressed"), (b"\xfd7zXZ\x00", "xz-compressed"),
                (b"\x28\xb5\x2f\xfd", "zstd-compressed"), (b"\xff\x06\x00\x00sNaPpY", "snappy-compressed"),
                (b"PAR1", "Parquet"), (b"Obj\x01", "Avro"), (b"ORC", "ORC"))

# What a decompressing stream raises on bad bytes, possibly long after the first record.
STREAM_ERRORS = (EOFError, zlib.error, zipfile.BadZipFile, OSError)


def detect(head: bytes) -> str:
    """GZIP, ZIP or PLAIN from the first bytes; DecodeError for a format we recognise but do not read."""
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZIP_MAGIC):
        return ZIP
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            raise DecodeError(f"the object is {name} data, which this subscriber does not read "
                              "(supported: gzip, zip or plain JSON, CSV and text)")
    return PLAIN


def open_streams(fileobj: BinaryIO, budget: Optional[Budget] = None) -> Iterator[Tuple[str, str, BinaryIO]]:
    """Yield ``(compression, member name, readable stream)`` for each part of the object.

    A zip yields each file it holds (name = the member's path); gzip and plain yield the object
    itself once (name ""). ``fileobj`` must be seekable (the fetch spool is) and is not closed.
    Every stream charges ``budget`` (default: the default limits) for what it gives, so a bomb is
    refused while it inflates; a zip whose members declare too much is refused before any is read.
    """
    budget = budget or Budget(DEFAULT)
    fileobj.seek(0)
    kind = detect(fileobj.read(8))
    fileobj.seek(0)
    if kind == GZIP:
        _check_gzip_start(fileobj, budget)
        with gzip.GzipFile(fileobj=fileobj, mode="rb") as stream:
            yield kind, "", Metered(stream, budget, fileobj.tell)  # type: ignore[misc]
    elif kind == ZIP:
        try:
            archive = zipfile.ZipFile(fileobj)
            members = [info for info in archive.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DecodeError(f"unreadable zip archive: {exc} (truncated or corrupt?)") from exc
        _check_declared(members, budget)
        compressed = 0  # of the members read before this one
        with archive:
            for info in members:
                if info.flag_bits & 0x1:
                    raise DecodeError(f"zip member {info.filename!r} is encrypted: cannot be read")
                try:
                    stream = archive.open(info)
                except (NotImplementedError, zipfile.BadZipFile, OSError) as exc:
                    raise DecodeError(f"zip member {info.filename!r} cannot be opened: {exc}") from exc
                with stream:
                    yield kind, info.filename, Metered(stream, budget, _consumed(compressed, info, stream))
                compressed += info.compress_size
    else:
        yield kind, "", Metered(fileobj, budget)


def _check_gzip_start(fileobj: BinaryIO, budget: Budget) -> None:
    """Refuse a gzip object that inflates past the ratio within its first RATIO_FLOOR bytes of output, before
    a record of it is read: a bomb then delivers nothing. Inflates at most RATIO_FLOOR bytes once, and judges
    only by what the bytes do (a gzip trailer's declared size would do, but a truncated object's is noise)."""
    limits = budget.limits
    inflater = zlib.decompressobj(wbits=47)  # gzip header and trailer
    fileobj.seek(0)
    consumed = out = 0
    try:
        while out < RATIO_FLOOR:
            data = fileobj.read(1 << 16)
            if not data:
                break
            produced = len(inflater.decompress(data, RATIO_FLOOR - out))
            consumed += len(data) - len(inflater.unconsumed_tail)
            out += produced
            if inflater.unconsumed_tail or inflater.eof:
                break
    except zlib.error:
        pass  # corrupt: reading it says so, with what was read before
    finally:
        fileobj.seek(0)
    if out >= RATIO_FLOOR and out > consumed * limits.compression_ratio:
        raise LimitExceeded("compression_ratio", limits.compression_ratio,
                            f"it inflates {out // max(consumed, 1)}:1 ({out} bytes from its first {consumed}; "
                            "a compression bomb?)")


def _consumed(before: int, info: zipfile.ZipInfo, stream: BinaryIO):
    """Compressed bytes of the archive read so far: the members before this one, and this one's progress
    (zipfile keeps what is left of the member; an archive without it is judged by its whole members)."""
    def consumed() -> int:
        left = getattr(stream, "_compress_left", None)
        return before + (info.compress_size - left if isinstance(left, int) else info.compress_size)
    return consumed


def _check_declared(members: list, budget: Budget) -> None:
    """Refuse a zip whose members say, before any is inflated, that they hold more than the limits allow."""
    limits = budget.limits
    declared = sum(info.file_size for info in members)
    packed = sum(info.compress_size for info in members)
    if declared > limits.object_bytes:
        raise LimitExceeded("object_bytes", limits.object_bytes,
                            f"its zip members declare {declared} bytes uncompressed")
    if declared > RATIO_FLOOR and declared > packed * limits.compression_ratio:
        raise LimitExceeded("compression_ratio", limits.compression_ratio,
                            f"its zip members declare {declared} bytes from {packed} compressed "
                            f"({declared // max(packed, 1)}:1; a zip bomb?)")


def describe_stream_error(exc: BaseException, compression: str) -> str:
    """A one-line reason for an error raised while reading a (decompressing) stream."""
    if isinstance(exc, EOFError):
        return f"truncated {compression} data (the stream ends before its end marker)"
    if isinstance(exc, zlib.error):
        return f"corrupt {compression} data ({str(exc).split(': ', 1)[-1]})"
    if isinstance(exc, zipfile.BadZipFile):
        return f"corrupt zip data ({exc})"
    if isinstance(exc, gzip.BadGzipFile):
        return f"corrupt gzip data ({exc})"
    return f"cannot read the object ({exc})"
