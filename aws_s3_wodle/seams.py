"""The seams between the stages, declared once: what a block, an object, a batch, a decoder, a sink and
the checkpoint store are to the stages that use them.

    config -> run -> source -> delivery (fetch, checkpoint) -> decode -> sink -> acknowledge

Each stage depends on these types, not on the stage beside it, so a stage is tested alone with any
object of the right shape, and a type checker can follow an object from the queue to the socket.
This module imports nothing of the package but `errors`' helper for safe log text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Optional, Protocol, Sequence, runtime_checkable

from aws_s3_wodle.errors import one_line


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object to deliver, as a source names it (a notification, a listing)."""

    bucket: str
    key: str
    size: Optional[int] = None
    etag: Optional[str] = None
    version_id: Optional[str] = None

    def __str__(self) -> str:
        # Keys may hold any character: escape the unprintable ones, so a key cannot forge a log line.
        return one_line(f"s3://{self.bucket}/{self.key}")


@runtime_checkable
class Block(Protocol):
    """A configured block (`<subscriber>`, `<bucket>`, `<service>`): a config dataclass with a label."""

    @property
    def label(self) -> str: ...

    def secrets(self) -> list[str]: ...


class Batch(Protocol):
    """Events (compact JSON documents) handed to a sink at once: a read-only sequence of bytes.

    `discarded` counts the events of the same stretch a discard rule dropped; `arrow_text()` gives the
    batch's Arrow string array when the events live in one (the Parquet path), so a sink can send them
    without making a Python object per event, or None.
    """

    discarded: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[bytes]: ...

    def __getitem__(self, index: Any) -> Any: ...

    def arrow_text(self) -> Optional[Any]: ...


class EventBatch(list):
    """A batch of events as Python bytes (JSON, CSV, text objects): a list with the Batch protocol."""

    discarded: int = 0

    def __getitem__(self, index: Any) -> Any:
        item = list.__getitem__(self, index)
        return EventBatch(item) if isinstance(index, slice) else item

    def arrow_text(self) -> None:
        return None


def as_batch(events: Iterable[bytes]) -> Batch:
    """Any sequence of events as a Batch (a list becomes an EventBatch; a Batch stays itself)."""
    if hasattr(events, "arrow_text") and hasattr(events, "discarded"):
        return events  # type: ignore[return-value]
    return EventBatch(events)


# Turns a downloaded object (a seekable binary file) into batches of events.
Decoder = Callable[[BinaryIO, ObjectRef], Iterator[Batch]]


@dataclass
class SendResult:
    sent: int = 0
    bytes: int = 0
    oversized: int = 0
    recorded_in: Optional[str] = None  # where the oversized events were recorded

    def add(self, other: "SendResult") -> None:
        """`other` (another batch's result, or the part of one a stop left) counted in."""
        self.sent += other.sent
        self.bytes += other.bytes
        self.oversized += other.oversized
        self.recorded_in = other.recorded_in or self.recorded_in


class Sink(Protocol):
    """Where events go. Takes a whole batch or raises SinkError (then nothing of the object is acknowledged)."""

    def send_batch(self, events: Batch, origin: str) -> SendResult: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ObjectId:
    """One version of one object. `version` is the S3 version id, else the ETag (quotes removed)."""

    bucket: str
    key: str
    version: str

    @classmethod
    def of(cls, ref: ObjectRef, etag: Optional[str] = None, version_id: Optional[str] = None) -> Optional["ObjectId"]:
        """From the source's version/ETag, else the ones S3 answered with; None when neither is known."""
        version = ref.version_id or version_id or _etag(ref.etag) or _etag(etag)
        return cls(ref.bucket, ref.key, version) if version else None


def _etag(value: Optional[str]) -> Optional[str]:
    return value.strip('"') if value else None


class CheckpointStore(Protocol):
    """What was delivered, and how far a half-done object got (events the sink accepted)."""

    def is_delivered(self, oid: ObjectId) -> bool: ...

    def resume_point(self, oid: ObjectId) -> int: ...

    def save_progress(self, oid: ObjectId, events: int) -> None: ...

    def mark_delivered(self, oid: ObjectId, events: int) -> None: ...

    def close(self) -> None: ...


__all__ = ["Batch", "Block", "CheckpointStore", "Decoder", "EventBatch", "ObjectId", "ObjectRef", "SendResult",
           "Sink", "as_batch", "Sequence"]
