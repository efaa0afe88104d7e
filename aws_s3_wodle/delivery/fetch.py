"""S3 GET into an anonymous spool file: objects never sit whole in memory, and vanish on close.

One GetObject streamed to the spool; if the stream breaks part-way (connection reset, a short body),
the download resumes with a Range request from the last byte written, and the result is checked
against the object's length. botocore retries throttling and 5xx answers itself (standard mode, 5
attempts, exponential backoff); on top of that a transient failure gets `attempts` tries with our own
backoff, so a burst of throttling costs time, not objects. Everything is bounded: at most
`attempts` x botocore's attempts GETs per object and run. Permanent errors (missing, denied) are not
retried. The ETag and version S3 answered with are kept: they identify the object for deduplication.
"""
from __future__ import annotations

import logging
import random
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.delivery.outcome import THROTTLED, classify_s3_error, object_error
from aws_s3_wodle.errors import ObjectError
from aws_s3_wodle.seams import ObjectRef

log = logging.getLogger("aws-s3-wodle")

CHUNK = 1 << 20
ATTEMPTS = 3          # our tries per object (each is botocore's own up to 5 attempts)
RESUMES = 5           # broken streams resumed per try
BACKOFF = 1.0         # seconds before our 2nd try, doubled after each (with jitter)


@dataclass
class Download:
    """The spooled object (rewound) and what S3 said about it."""

    file: BinaryIO
    size: int
    etag: Optional[str]
    version_id: Optional[str]
    attempts: int = 1

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Download":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Changed(Exception):
    """The object changed between two ranges of one download: start again."""


def download(s3: Any, ref: ObjectRef, spool_dir: Optional[str] = None, *, attempts: int = ATTEMPTS,
             backoff: float = BACKOFF, stop: Optional[threading.Event] = None) -> Download:
    """Download ref to a temporary file; raises ObjectError (kind from dispositions) when it cannot."""
    last: Optional[BaseException] = None
    for attempt in range(1, attempts + 1):
        spool = tempfile.TemporaryFile(dir=spool_dir)
        try:
            size, etag, version = _get(s3, ref, spool)
            spool.seek(0)
            return Download(spool, size, etag, version, attempt)
        except (ClientError, BotoCoreError, OSError, _Changed) as exc:
            spool.close()
            cls, _ = classify_s3_error(exc)
            if cls is not THROTTLED:
                raise object_error(ref.bucket, ref.key, exc) from None
            last = exc
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            log.debug("Download of %s failed (%s); trying again in %.1f s", ref, _short(last), delay)
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                break
    assert last is not None
    raise object_error(ref.bucket, ref.key, last, what=f"download failed {attempts} times,") from None


def _get(s3: Any, ref: ObjectRef, spool: BinaryIO) -> tuple[int, Optional[str], Optional[str]]:
    """Stream the object to spool, resuming broken streams with Range; returns (size, etag, version)."""
    args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        args["VersionId"] = ref.version_id
    response = s3.get_object(**args)
    size = int(response.get("ContentLength", -1))
    etag, version = response.get("ETag"), response.get("VersionId")
    written = 0
    for resume in range(RESUMES + 1):
        body = response["Body"]
        try:
            while True:
                chunk = body.read(CHUNK)
                if not chunk:
                    break
                spool.write(chunk)
                written += len(chunk)
        except (BotoCoreError, OSError, ValueError) as exc:
            # urllib3's ProtocolError / IncompleteRead arrive as botocore ResponseStreamingError or OSError
            log.debug("Stream of %s broke after %d bytes (%s); resuming", ref, written, _short(exc))
        finally:
            body.close()
        if written >= size >= 0:
            break
        if resume == RESUMES:
            raise OSError(f"the download stopped {RESUMES + 1} times; {written} of {size} bytes read")
        # the rest of the same version only: a changed object means starting over
        ranged = {**args, "Range": f"bytes={written}-"}
        if etag and not ref.version_id:
            ranged["IfMatch"] = etag
        try:
            response = s3.get_object(**ranged)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "InvalidRange", "416"):
                raise _Changed(f"{ref} changed during the download") from None
            raise
    if written != size:
        raise OSError(f"short download: {written} of {size} bytes")
    return size, etag, version


def _short(exc: Optional[BaseException]) -> str:
    return f"{type(exc).__name__}: {str(exc)[:160]}" if exc else ""


def fetch_object(s3: Any, ref: ObjectRef, spool_dir: Optional[str] = None) -> BinaryIO:
    """Download ref to a temporary file (deleted when closed) and return it rewound."""
    return download(s3, ref, spool_dir).file


__all__ = ["Download", "download", "fetch_object", "ObjectError"]
