"""Runs `<subscriber type="buckets">` and `<subscriber type="security_hub">`: the shared SQS subscriber
run with a decoder that reads any log object (formats.iter_records) and wraps its events for Wazuh."""
from __future__ import annotations

from typing import Any, BinaryIO, Callable, Iterable, Iterator

from .events import EventBatch, event_batches
from .formats import iter_records
from .notifications import ObjectRef
from .runner import RUNNERS, Context, run_subscriber
from .securityhub import finding_events
from .stats import RunStats
from .subscriber import Decoder
from .subscriber_config import BucketsSubscriber, SecurityHubSubscriber


def bucket_records(record: dict) -> Iterable[dict]:
    """A record as Wazuh's custom-bucket rules read it: an EventBridge event stands for its `detail`."""
    detail = record.get("detail")
    if isinstance(detail, dict) and "detail-type" in record:
        return (detail,)
    return (record,)


def object_decoder(block: BucketsSubscriber, ctx: Context) -> Decoder:
    hub = isinstance(block, SecurityHubSubscriber)
    expand: Callable[[dict], Iterable[dict]] = finding_events if hub else bucket_records
    fmt = "json" if hub else "auto"

    def decode(spool: BinaryIO, ref: ObjectRef) -> Iterator[EventBatch]:
        return event_batches(iter_records(spool, key=ref.key, format=fmt), source=block.SOURCE, bucket=ref.bucket,
                             key=ref.key, expand=expand, discard=block.discard_regex, keep_nulls=ctx.keep_nulls,
                             batch_size=ctx.batch_size)
    return decode


def run_object_subscriber(block: Any, ctx: Context) -> RunStats:
    return run_subscriber(block, ctx, object_decoder(block, ctx))


RUNNERS[BucketsSubscriber] = run_object_subscriber
RUNNERS[SecurityHubSubscriber] = run_object_subscriber
