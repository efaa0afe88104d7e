"""Records -> the events Wazuh's AWS rules read, in batches ready for a sink.

Every event is wrapped as `{"integration": "aws", "aws": {<record>, "source": ..., "log_info":
{"log_file": key, "s3bucket": bucket}}}`; null members are dropped at every depth (as the Security
Lake events are) unless asked to keep them; `discard_regex` drops and counts. A batch carries the
count of what it discarded, so the run summary can say so.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, List, Optional

from .discard import DiscardRule
from .formats import dumps


class EventBatch(List[bytes]):
    """JSON events for the sink, plus how many events of the same stretch were discarded."""

    discarded: int = 0


def drop_nulls(value: Any) -> Any:
    """`value` without null object members, at every depth; null array items stay (positions matter).

    Works in place on freshly decoded records (the hot path of a large object: no copies).
    """
    if type(value) is dict:
        _strip_dict(value)
    elif type(value) is list:
        _strip_list(value)
    return value


def _strip_dict(d: dict) -> None:
    nulls = None
    for k, v in d.items():
        if v is None:
            if nulls is None:
                nulls = [k]
            else:
                nulls.append(k)
        elif type(v) is dict:
            _strip_dict(v)
        elif type(v) is list:
            _strip_list(v)
    if nulls:
        for k in nulls:
            del d[k]


def _strip_list(items: list) -> None:
    for v in items:
        if type(v) is dict:
            _strip_dict(v)
        elif type(v) is list:
            _strip_list(v)


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
                  keep_nulls: bool = False, batch_size: int = 5000) -> Iterator[EventBatch]:
    """Records -> (expand: one record may hold several events) -> discard -> wrap -> JSON, batched."""
    batch = EventBatch()
    for record in records:
        for event in expand(record):
            if not keep_nulls:
                event = drop_nulls(event)
            if discard is not None and discarded(discard, event):
                batch.discarded += 1
                continue
            batch.append(dumps(wrap(event, source=source, bucket=bucket, key=key)))
            if len(batch) >= batch_size:
                yield batch
                batch = EventBatch()
    if batch or batch.discarded:
        yield batch
