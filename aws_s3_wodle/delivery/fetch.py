"""S3 GET into an anonymous spool file (or memory, when small): a large object never sits whole in memory,
and either vanishes on close. An object of at most IN_MEMORY bytes (S3's Content-Length) is held in a BytesIO
instead: many small objects in flight cost no file system calls, and their bytes are bounded by the run's
admission budget (concurrency.py counts each object in flight at most IN_MEMORY bytes).

One GetObject streamed to the spool; if the stream breaks part-way (connection reset, a short body),
the download resumes with a Range request from the last byte written, and the result is checked
against the object's length. botocore retries throttling and 5xx answers itself (standard mode, 5
attempts, exponential backoff); on top of that a transient failure gets `attempts` tries with our own
backoff, so a burst of throttling costs time, not objects. Everything is bounded: at most
`attempts` x botocore's attempts GETs per object and run. Permanent errors (missing, denied) are not
retried. The ETag and version S3 answered with are kept: they identify the object for deduplication.

A stop (SIGTERM) ends a download within a second or so, wherever it is: in a retry's backoff, between
two chunks, or blocked on a stalled connection (a watcher shuts the socket's reading side, which wakes
the read). The download then raises `Interrupted`; nothing of the object was sent, so nothing is lost.
"""
from __future__ import annotations

import io
import logging
import random
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Optional

from contextlib import contextmanager
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.delivery.outcome import THROTTLED, Interrupted, classify_s3_error, object_error
from aws_s3_wodle.errors import ObjectError
from aws_s3_wodle.platform.aws_errors import error_code
from aws_s3_wodle.platform.threads import ThreadCache
from aws_s3_wodle.seams import ObjectRef

log = logging.getLogger("aws-s3-wodle")

CHUNK = 1 << 20
ATTEMPTS = 3          # our tries per object (each is botocore's own up to 5 attempts)
RESUMES = 5           # broken streams resumed per try
BACKOFF = 1.0         # seconds before our 2nd try, doubled after each (with jitter)
STOP_POLL = 0.25      # seconds between two looks at the stop flag while a download streams
IN_MEMORY = 8 << 20   # objects up to this size are held in memory, larger ones spooled to a temporary file
WATCHERS = ThreadCache("aws-s3-wodle-download-stop")  # the downloads' stop watchers (_cut_on_stop), reused


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
    """Download ref to a temporary file; raises ObjectError (kind from outcome.py) when it cannot, and
    Interrupted when `stop` is set meanwhile."""
    stop = stop or threading.Event()
    last: Optional[BaseException] = None
    for attempt in range(1, attempts + 1):
        if stop.is_set():
            raise Interrupted(f"stopped while downloading {ref}; it is read again on the next run")
        spools: list[BinaryIO] = []

        def spool_for(size: int) -> BinaryIO:
            spool: BinaryIO = (io.BytesIO() if 0 <= size <= IN_MEMORY
                               else tempfile.TemporaryFile(dir=spool_dir))  # type: ignore[assignment]
            spools.append(spool)
            return spool
        try:
            size, etag, version = _get(s3, ref, spool_for, stop)
            spools[0].seek(0)
            return Download(spools[0], size, etag, version, attempt)
        except Interrupted:
            for spool in spools:
                spool.close()
            raise
        except (ClientError, BotoCoreError, OSError, _Changed) as exc:
            for spool in spools:
                spool.close()
            if stop.is_set():  # the watcher cut the stream, or the stop came during a failing call
                raise Interrupted(f"stopped while downloading {ref}; it is read again on the next run") from None
            cls, _ = classify_s3_error(exc)
            if cls is not THROTTLED:
                raise object_error(ref.bucket, ref.key, exc) from None
            last = exc
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            log.debug("Download of %s failed (%s); trying again in %.1f s", ref, _short(last), delay)
            if stop.wait(delay):
                raise Interrupted(f"stopped while downloading {ref} (waiting to try again); it is read again "
                                  "on the next run")
    assert last is not None
    raise object_error(ref.bucket, ref.key, last, what=f"download failed {attempts} times,") from None


@contextmanager
def _cut_on_stop(body: Any, stop: threading.Event) -> Iterator[None]:
    """While the body streams, a watcher shuts its socket's reading side once `stop` is set: a read blocked
    on a stalled connection returns at once instead of after the read timeout."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL):
            if stop.is_set():
                raw = getattr(body, "_raw_stream", None)
                try:
                    raw.shutdown()  # urllib3 >= 2.3: shuts the socket for reading, from any thread
                except Exception:  # noqa: BLE001 - an older urllib3 or a released connection: the chunk loop stops
                    pass
                return

    WATCHERS.run(watch)
    try:
        yield
    finally:
        done.set()


def _get(s3: Any, ref: ObjectRef, spool_for: Callable[[int], BinaryIO],
         stop: threading.Event) -> tuple[int, Optional[str], Optional[str]]:
    """Stream the object to `spool_for(its size)`, resuming broken streams with Range; returns (size, etag, version)."""
    args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        args["VersionId"] = ref.version_id
    response = s3.get_object(**args)
    size = int(response.get("ContentLength", -1))
    etag, version = response.get("ETag"), response.get("VersionId")
    spool = spool_for(size)
    written = 0
    for resume in range(RESUMES + 1):
        body = response["Body"]
        try:
            with _cut_on_stop(body, stop):
                while not stop.is_set():
                    chunk = body.read(CHUNK)
                    if not chunk:
                        break
                    spool.write(chunk)
                    written += len(chunk)
        except (BotoCoreError, OSError, ValueError) as exc:
            # urllib3's ProtocolError / IncompleteRead arrive as botocore ResponseStreamingError or OSError
            if not stop.is_set():
                log.debug("Stream of %s broke after %d bytes (%s); resuming", ref, written, _short(exc))
        finally:
            body.close()
        if stop.is_set():
            raise Interrupted(f"stopped while downloading {ref} ({written} of {size} bytes read); it is read "
                              "again on the next run")
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
            if error_code(exc) in ("PreconditionFailed", "412", "InvalidRange", "416"):
                raise _Changed(f"{ref} changed during the download") from None
            raise
    if written != size:
        raise OSError(f"short download: {written} of {size} bytes")
    return size, etag, version


def _short(exc: Optional[BaseException]) -> str:
    return f"{type(exc).__name__}: {str(exc)[:160]}" if exc else ""


__all__ = ["Download", "Interrupted", "download", "ObjectError"]
