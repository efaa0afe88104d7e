"""A bucket type's decoder (seams.Decoder): parse the object's records, discard (the record as read, as Wazuh does), shape, wrap for Wazuh.

The listing source (sources/listing/run.py) builds one per prefix from its bucket type (layouts.py: a
parser and a shaper) and hands it to the delivery engine, which sends and checkpoints the batches like
any other source's. The decoder is deterministic: the same object gives the same events in the same
order, so a resume after N events skips exactly what was sent. A batch ends every `batch_size` records (or past BATCH_BYTES of events);
a corrupt tail (DecodeError) first yields the events read before it, so they are delivered and
remembered before the object is reported; any other exception of a parser or shaper on odd input is
a DecodeError of this object, not of the run.
"""
from __future__ import annotations

import logging
from typing import BinaryIO, Callable, Iterator, Optional

from aws_s3_wodle.config.discard import DiscardRule
from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.events import BATCH_BYTES, check_event, discarded
from aws_s3_wodle.decode.limits import DEFAULT, Limits
from aws_s3_wodle.decode.formats.serialize import dumps
from aws_s3_wodle.decode.shape import Shaper, wrap
from aws_s3_wodle.seams import Decoder, EventBatch, ObjectRef

log = logging.getLogger("aws-s3-wodle")

Parser = Callable[[BinaryIO, str, Limits], Iterator[dict]]


def bucket_decoder(parse: Parser, shape: Shaper, source: str, *, account: Optional[str], alias: Optional[str],
                   discard: Optional[DiscardRule], batch_size: int, limits: Limits = DEFAULT) -> Decoder:
    """The decoder of one bucket type for the objects of one account's prefix, within `limits` (an event
    whose JSON is over the event limit refuses the object)."""

    def decode(spool: BinaryIO, ref: ObjectRef) -> Iterator[EventBatch]:
        batch, records, size = EventBatch(), 0, 0
        try:
            for record in parse(spool, ref.key, limits):
                if discard is not None and discarded(discard, record):
                    batch.discarded += 1  # as Wazuh: the record as read is matched, before any shaping, and skipped
                else:
                    for event in shape(record, source):
                        document = dumps(wrap(event, key=ref.key, bucket=ref.bucket, account=account or None,
                                              alias=alias))
                        check_event(document, limits)
                        batch.append(document)
                        size += len(document)
                records += 1
                if records % batch_size == 0 or size >= BATCH_BYTES:  # memory is bounded by the batch
                    yield batch
                    batch, size = EventBatch(), 0
        except DecodeError:
            if batch or batch.discarded:
                yield batch  # the events before a corrupt tail are delivered (and checkpointed) first
            raise
        except Exception as exc:  # a parser or shaper bug on odd input: an error of this object, not the run
            log.debug("Unexpected error decoding %s", ref, exc_info=True)
            if batch or batch.discarded:
                yield batch
            raise DecodeError(f"unexpected {type(exc).__name__} in the decoder: {exc}") from None
        if batch or batch.discarded:
            yield batch

    return decode
