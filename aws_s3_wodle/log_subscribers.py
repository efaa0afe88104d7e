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


# Events per batch handed to the sink. Each orjson document keeps 8-16 KB of the process's memory
# while it lives (its allocation is not trimmed), so a batch of 5000 costs ~78 MB, one of 500 ~8 MB,
# at the same speed (measured decoding a 68 MB JSON-lines object; see bench/gzip_jsonl_memory.py).
MAX_BATCH = 500


def object_decoder(block: BucketsSubscriber, ctx: Context) -> Decoder:
    hub = isinstance(block, SecurityHubSubscriber)
    expand: Callable[[dict], Iterable[dict]] = finding_events if hub else bucket_records
    fmt = "json" if hub else "auto"

    def decode(spool: BinaryIO, ref: ObjectRef) -> Iterator[EventBatch]:
        return event_batches(iter_records(spool, key=ref.key, format=fmt), source=block.SOURCE, bucket=ref.bucket,
                             key=ref.key, expand=expand, discard=block.discard_regex, keep_nulls=ctx.keep_nulls,
                             batch_size=min(ctx.batch_size, MAX_BATCH))
    return decode


def run_object_subscriber(block: Any, ctx: Context) -> RunStats:
    return run_subscriber(block, ctx, object_decoder(block, ctx))


RUNNERS[BucketsSubscriber] = run_object_subscriber
RUNNERS[SecurityHubSubscriber] = run_object_subscriber
