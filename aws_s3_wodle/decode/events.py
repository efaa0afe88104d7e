"""Records -> the events Wazuh's AWS rules read, in batches ready for a sink.

Every event is wrapped as `{"integration": "aws", "aws": {"log_info": {"log_file": key, "s3bucket":
bucket}, <record>, "source": ...}}`, as Wazuh's own subscribers send them; null members are dropped
as Wazuh drops them (from objects reached through objects; `wazuh_nulls`) unless asked to keep them;
`discard_regex` drops and counts. A batch carries the
count of what it discarded, so the run summary can say so.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Optional

from aws_s3_wodle.config.discard import DiscardRule
from aws_s3_wodle.decode.formats import DecodeError, dumps
from aws_s3_wodle.decode.limits import DEFAULT, LimitExceeded, Limits
from aws_s3_wodle.seams import EventBatch


# Deepest nesting an event may have (objects and arrays). Real AWS records are a few tens of levels
# deep; a deeper one is refused as a decode error of its object instead of exhausting the stack.
MAX_DEPTH = 200


def drop_nulls(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """`value` without null object members, at every depth (arrays included; null array items stay).

    The Security Lake rows' rule (iter_parquet_events does the same on Arrow data). Works in place on
    freshly decoded records, iteratively: nesting deeper than `max_depth` raises `DecodeError`.
    """
    return _walk(value, drop_in_arrays=True, collapse=False, max_depth=max_depth)


def wazuh_nulls(value: Any, *, collapse: bool = False, max_depth: int = MAX_DEPTH) -> Any:
    """Wazuh's own rule for the events of its S3 readers (buckets and subscribers alike): null members
    are dropped from objects reached through objects only; inside an array (and below it) they stay.

    With `collapse` (the bucket types), a one-element array member of such an object is replaced by its
    element, which is not walked further: Wazuh's rules address `aws.resources.ARN`, and an array
    inside an array item (`instancesSet.items[].groupSet.items`) keeps its brackets, as Wazuh sends it.
    A member `[null]` becomes `null` and stays. Works in place, iteratively; every level is counted
    (arrays too), so nesting deeper than `max_depth` raises `DecodeError`.
    """
    return _walk(value, drop_in_arrays=False, collapse=collapse, max_depth=max_depth)


def _walk(value: Any, *, drop_in_arrays: bool, collapse: bool, max_depth: int) -> Any:
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    stack = [(value, 1, True)]  # (node, depth, whether nulls are dropped and lists collapsed in it)
    pop, push = stack.pop, stack.append
    while stack:
        node, depth, live = pop()
        if depth > max_depth:
            raise DecodeError(f"a record is nested deeper than {max_depth} levels (objects and arrays); "
                              "it is not an AWS log record")
        depth += 1
        if type(node) is dict:
            if not live:
                for v in node.values():
                    kind = type(v)
                    if kind is dict or kind is list:
                        push((v, depth, False))
                continue
            nulls = None
            for k, v in node.items():
                if v is None:
                    if nulls is None:
                        nulls = []
                    nulls.append(k)
                    continue
                kind = type(v)
                if kind is list:
                    if collapse and len(v) == 1:
                        v = node[k] = v[0]  # Wazuh neither walks the element nor drops a null one
                        kind = type(v)
                        if kind is dict or kind is list:
                            push((v, depth, False))
                        continue
                    push((v, depth, drop_in_arrays))
                elif kind is dict:
                    push((v, depth, True))
            if nulls:
                for k in nulls:
                    del node[k]
        else:
            for v in node:
                kind = type(v)
                if kind is dict or kind is list:
                    push((v, depth, live))
    return value


def is_text_line(record: dict) -> bool:
    return len(record) == 1 and "full_log" in record


def discarded(rule: DiscardRule, record: dict) -> bool:
    """Wazuh's rule: the field's value matches from its start; a plain-text line is matched whole."""
    if is_text_line(record):
        return rule.regex.match(record["full_log"]) is not None
    return rule.matches(record)


def wrap(record: dict, *, source: Optional[str], bucket: str, key: str) -> dict:
    """`{"integration": "aws", "aws": {"log_info": {...}, <record>, "source": source}}`: Wazuh's subscriber
    wrapper. `source` overrides the record's own, as Wazuh's does; None keeps the record's (and adds
    the block's when it has none: see `bucket_records`)."""
    log_info = {"log_file": key, "s3bucket": bucket}
    aws = {"log_info": log_info, **record}
    aws["log_info"] = log_info  # first in order, and ours whatever the record holds
    if source is not None:
        aws["source"] = source
    return {"integration": "aws", "aws": aws}


def event_batches(records: Iterable[dict], *, source: str, bucket: str, key: str,
                  expand: Callable[[dict], Iterable[dict]], discard: Optional[DiscardRule] = None,
                  keep_nulls: bool = False, batch_size: int = 5000, limits: Limits = DEFAULT) -> Iterator[EventBatch]:
    """Records -> (expand: one record may hold several events) -> discard -> wrap -> JSON, batched.

    Null members are dropped as Wazuh's subscribers drop them (`wazuh_nulls`). In a `.jsonl.gz` object
    Wazuh keeps each record's own `source` (and sends none when it has none: `source` is then added);
    in every other object `source` is the block's, whatever the record says. A batch ends at
    ``batch_size`` events or past ``BATCH_BYTES``; an event whose JSON is over the event limit refuses
    the object (``LimitExceeded``)."""
    batch = EventBatch()
    own_source = key.endswith(".jsonl.gz")
    size = 0
    for record in records:
        for event in expand(record):
            if not keep_nulls:
                event = wazuh_nulls(event)
            if discard is not None and discarded(discard, event):
                batch.discarded += 1
                continue
            keep = own_source and "source" in event
            document = dumps(wrap(event, source=None if keep else source, bucket=bucket, key=key))
            check_event(document, limits)
            batch.append(document)
            size += len(document)
            if len(batch) >= batch_size or size >= BATCH_BYTES:
                yield batch
                batch = EventBatch()
                size = 0
    if batch or batch.discarded:
        yield batch


def check_event(document: bytes, limits: Limits = DEFAULT) -> None:
    """Refuse the object of an event whose JSON is over the event limit."""
    if len(document) > limits.event_bytes:
        raise LimitExceeded("event_bytes", limits.event_bytes, f"an event is {len(document)} bytes as JSON")


def bucket_records(record: dict) -> Iterable[dict]:
    """A record of the buckets subscriber as Wazuh's reads it: a record with a `detail` object (an
    EventBridge event, as Firehose writes them) stands for that object (see `jsonl_records`)."""
    detail = record.get("detail")
    if isinstance(detail, dict):
        return (detail,)
    return (record,)


def jsonl_records(record: dict) -> Iterable[dict]:
    """A record of a `.jsonl.gz` object: Wazuh's subscriber sends JSON lines whole, envelope and all."""
    return (record,)


def subscriber_expand(key: str) -> Callable[[dict], Iterable[dict]]:
    """How the buckets subscriber turns a record of the object `key` into events."""
    return jsonl_records if key.endswith(".jsonl.gz") else bucket_records


# Events per batch handed to the sink for JSON, CSV and text objects. Each orjson document keeps 8-16 KB
# of the process's memory while it lives (its allocation is not trimmed), so a batch of 5000 costs ~78 MB,
# one of 500 ~8 MB, at the same speed (measured decoding a 68 MB JSON-lines object; bench/gzip_jsonl_memory.py).
MAX_BATCH = 500
# Bytes of JSON in one batch: a batch of large events (up to --max-event-bytes each) ends early.
BATCH_BYTES = 32 << 20
