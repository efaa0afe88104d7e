"""What one object may cost the host, whatever its source: the limits, and the refusal they raise.

A hostile or broken object (a 200 MB value gzip-compressed 1000:1, a zip bomb, a 1 GB JSON string, a
schema of 100k columns) must fail as that object, never take the host's memory or disk. The decoders
check what the formats tell before decoding (Parquet footers, zip members' declared sizes) and count
while decoding (bytes per event, per object, and the compression ratio). A limit that fires raises
``LimitExceeded``: a ``DecodeError``, so the object fails like a corrupt one (left in the queue,
dead-lettered, or read again) and the run goes on. Its message names the limit, its value and the flag
that raises it. The values come from the run settings (``config/settings.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from aws_s3_wodle.config import settings as defaults
from aws_s3_wodle.decode.errors import DecodeError

MIB = 1 << 20
# The ratio is judged only past this much output: a small object may compress as well as it likes.
RATIO_FLOOR = 4 * MIB


@dataclass(frozen=True)
class Limits:
    """The bounds of one object; the names match the run settings' (``max_<name>``)."""

    event_bytes: int = defaults.MAX_EVENT_BYTES          # one event (record), as read and as JSON
    object_bytes: int = defaults.MAX_OBJECT_BYTES        # one object decompressed (Parquet: uncompressed pages)
    compression_ratio: int = defaults.MAX_COMPRESSION_RATIO  # decompressed / compressed bytes
    columns: int = defaults.MAX_COLUMNS                  # fields of a Parquet schema

    @classmethod
    def from_settings(cls, settings: Any) -> "Limits":
        """The limits of a RunSettings (its ``max_*`` fields)."""
        return cls(**{f.name: getattr(settings, "max_" + f.name) for f in fields(cls)})


DEFAULT = Limits()

_FLAGS = {"event_bytes": "--max-event-bytes", "object_bytes": "--max-object-bytes",
          "compression_ratio": "--max-compression-ratio", "columns": "--max-columns"}


class LimitExceeded(DecodeError):
    """An object refused because it would cost the host more than a limit allows.

    ``limit`` is the limit's name (a ``Limits`` field), ``value`` its value; str() says what was found,
    the limit, and the flag that raises it.
    """

    def __init__(self, limit: str, value: int, found: str) -> None:
        self.limit, self.value, self.flag = limit, value, _FLAGS[limit]
        super().__init__(f"{found}: over the limit {self.flag} {value} (raise it if the object is genuine)")
