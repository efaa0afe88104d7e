"""Records -> the events Wazuh's AWS rules read, in batches ready for a sink.

Every event is wrapped as `{"integration": "aws", "aws": {<record>, "source": ..., "log_info":
{"log_file": key, "s3bucket": bucket}}}`; null members are dropped at every depth (as the Security
Lake events are) unless asked to keep them; `discard_regex` drops and counts. A batch carries the
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


def drop_nulls(value: Any, *, unwrap_singletons: bool = False, max_depth: int = MAX_DEPTH) -> Any:
    """`value` without null object members, at every depth; null array items stay (positions matter).

    With `unwrap_singletons`, a one-element array is replaced by its element (what Wazuh's bucket module
    does, so rules address `aws.resources.ARN`). Works in place on freshly decoded records (the hot path
    of a large object: no copies), iteratively: nesting deeper than `max_depth` raises `DecodeError`.
    """
    if unwrap_singletons:
        value = _unwrap(value)
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            raise DecodeError(f"a record is nested deeper than {max_depth} levels (objects and arrays); "
                              "it is not an AWS log record")
        depth += 1
        if type(node) is dict:
            nulls = None
            for k, v in node.items():
                if v is None:
                    if nulls is None:
                        nulls = []
                    nulls.append(k)
                    continue
                kind = type(v)
                if kind is list:
                    if unwrap_singletons and len(v) == 1:
                        v = node[k] = _unwrap(v)
                        kind = type(v)
                        if v is None:
                            if nulls is None:
                                nulls = []
                            nulls.append(k)
                            continue
                if kind is dict or kind is list:
                    push((v, depth))
            if nulls:
                for k in nulls:
                    del node[k]
        else:
            for i, v in enumerate(node):
                kind = type(v)
                if kind is list and unwrap_singletons and len(v) == 1:
                    v = node[i] = _unwrap(v)
                    kind = type(v)
                if kind is dict or kind is list:
                    push((v, depth))
    return value


def _unwrap(value: Any) -> Any:
    while type(value) is list and len(value) == 1:
        value = value[0]
    return value


def is_text_line(record: dict) -> bool:
    return len(record) == 1 and "full_log" in record


def discarded(rule: DiscardRule, record: dict) -> bool:
    """Wazuh's rule: the field's value matches from its start; a plain-text line is matched whole."""
    if is_text_line(record):
        return rule.regex.match(record["full_log"]) is not None
    return rule.matches(record)


def wrap(record: dict, *, source: str, bucket: str, key: str) -> dict:
    return {"integration": "aws",
            "aws": {**record, "source": source, "log_info": {"log_file": key, "s3bucket": bucket}}}


def event_batches(records: Iterable[dict], *, source: str, bucket: str, key: str,
                  expand: Callable[[dict], Iterable[dict]], discard: Optional[DiscardRule] = None,
                  keep_nulls: bool = False, batch_size: int = 5000, limits: Limits = DEFAULT) -> Iterator[EventBatch]:
    """Records -> (expand: one record may hold several events) -> discard -> wrap -> JSON, batched.

    A batch ends at ``batch_size`` events or past ``BATCH_BYTES``; an event whose JSON is over the event
    limit refuses the object (``LimitExceeded``)."""
    batch = EventBatch()
    size = 0
    for record in records:
        for event in expand(record):
            if not keep_nulls:
                event = drop_nulls(event)
            if discard is not None and discarded(discard, event):
                batch.discarded += 1
                continue
            document = dumps(wrap(event, source=source, bucket=bucket, key=key))
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
    """A record as Wazuh's custom-bucket rules read it: an EventBridge event stands for its `detail`."""
    detail = record.get("detail")
    if isinstance(detail, dict) and "detail-type" in record:
        return (detail,)
    return (record,)


# Events per batch handed to the sink for JSON, CSV and text objects. Each orjson document keeps 8-16 KB
# of the process's memory while it lives (its allocation is not trimmed), so a batch of 5000 costs ~78 MB,
# one of 500 ~8 MB, at the same speed (measured decoding a 68 MB JSON-lines object; bench/gzip_jsonl_memory.py).
MAX_BATCH = 500
# Bytes of JSON in one batch: a batch of large events (up to --max-event-bytes each) ends early.
BATCH_BYTES = 32 << 20
