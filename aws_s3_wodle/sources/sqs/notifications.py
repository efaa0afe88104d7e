"""SQS message body -> the S3 objects it announces.

Understood: Security Lake's EventBridge-style body (`detail.bucket.name`, `detail.object.key`, key not
URL-encoded), full EventBridge "Object Created" events, S3 event notifications (`Records[*].s3`, keys
URL-encoded with '+' for space), any of these inside an SNS envelope (`Message` holds the JSON string),
and `s3:TestEvent`, which is noise. Only created objects carry events: an S3 record whose `eventName` is
not `ObjectCreated:*` (a deletion, a lifecycle expiration, a restore, a tag change) and an EventBridge
"Object Deleted" event are noise too (logged, then deleted from the queue); a message mixing created and
removed records announces only the created objects.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote_plus

from aws_s3_wodle.seams import ObjectRef

log = logging.getLogger("aws-s3-wodle")

MAX_BODY = 256 * 1024  # SQS's own limit; anything bigger is not a notification of ours


class NotificationError(ValueError):
    """The body is not a notification we understand; str() says why."""


@dataclass(frozen=True)
class Notification:
    objects: tuple[ObjectRef, ...]
    kind: str  # "eventbridge", "s3", "sns+s3", "test", "removed" (nothing created), "sns+removed"...

    @property
    def is_noise(self) -> bool:
        return self.kind.rsplit("+", 1)[-1] in ("test", "removed")


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise NotificationError(f"{what} is missing or not a string")
    return value


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _eventbridge(body: dict) -> ObjectRef:
    detail = body.get("detail")
    if not isinstance(detail, dict):
        raise NotificationError("EventBridge event without a 'detail' object")
    bucket = _str((detail.get("bucket") or {}).get("name") if isinstance(detail.get("bucket"), dict) else None,
                  "detail.bucket.name")
    obj = detail.get("object") if isinstance(detail.get("object"), dict) else {}
    key = _str(obj.get("key"), "detail.object.key")
    return ObjectRef(bucket, key, _int(obj.get("size")), obj.get("etag") if isinstance(obj.get("etag"), str) else None,
                     obj.get("version-id") if isinstance(obj.get("version-id"), str) else None)


def _s3_records(records: Any) -> list[ObjectRef]:
    if not isinstance(records, list) or not records:
        raise NotificationError("'Records' is empty or not a list")
    refs = []
    for i, record in enumerate(records):
        s3 = record.get("s3") if isinstance(record, dict) else None
        if not isinstance(s3, dict):
            raise NotificationError(f"Records[{i}] has no 's3' object")
        bucket = _str((s3.get("bucket") or {}).get("name") if isinstance(s3.get("bucket"), dict) else None,
                      f"Records[{i}].s3.bucket.name")
        obj = s3.get("object") if isinstance(s3.get("object"), dict) else {}
        key = unquote_plus(_str(obj.get("key"), f"Records[{i}].s3.object.key"))
        name = record.get("eventName")
        if isinstance(name, str) and not name.startswith("ObjectCreated:"):
            log.info("Ignoring the %s record of s3://%s/%s: only created objects carry events", name, bucket, key)
            continue
        refs.append(ObjectRef(bucket, key, _int(obj.get("size")), obj.get("eTag") if isinstance(obj.get("eTag"), str)
                              else None, obj.get("versionId") if isinstance(obj.get("versionId"), str) else None))
    return refs


def _classify(body: Any, depth: int = 0) -> Notification:
    if not isinstance(body, dict):
        raise NotificationError("the body is JSON but not an object")
    if body.get("Event") == "s3:TestEvent":
        return Notification((), "test")
    if "Records" in body:
        refs = tuple(_s3_records(body["Records"]))
        return Notification(refs, "s3" if refs else "removed")
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str) and depth == 0:
        inner = _classify(_loads(body["Message"]), depth + 1)
        return Notification(inner.objects, "sns+" + inner.kind)
    if "detail" in body:
        detail_type = body.get("detail-type")
        if detail_type == "Object Deleted":
            ref = _eventbridge(body)
            log.info("Ignoring the EventBridge 'Object Deleted' event of %s: only created objects carry events", ref)
            return Notification((), "removed")
        if detail_type not in (None, "Object Created"):
            raise NotificationError(f"EventBridge event of type '{detail_type}', not 'Object Created'")
        return Notification((_eventbridge(body),), "eventbridge")
    raise NotificationError("neither an EventBridge 'Object Created' event, nor S3 'Records', nor an SNS envelope")


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NotificationError(f"the body is not JSON ({str(exc)[:80]})") from None


def parse_body(body: Any) -> Notification:
    """Classify one SQS body; raises NotificationError with a short reason for anything else."""
    if not isinstance(body, str):
        raise NotificationError("the body is not text")
    if len(body) > MAX_BODY:
        raise NotificationError(f"the body is {len(body)} characters, over SQS's {MAX_BODY}")
    return _classify(_loads(body))
