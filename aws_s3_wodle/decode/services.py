"""The events of the service blocks, shaped as Wazuh's aws-s3 module sends them (wodles/aws/services, 4.14).

CloudWatch Logs: each log event's `message` is sent as it is, not wrapped (Wazuh sends the message text
itself: a JSON message is read by analysisd's JSON decoder, any other line by the decoders that match it).

Inspector v2: each finding as `{"integration": "aws", "aws": {<finding>, "source": "inspector2"}}`, with
`createdAt` and `updatedAt` as `YYYY-MM-DDTHH:MM:SSZ` (Wazuh's format for those two). Every other
timestamp of the finding becomes RFC 3339 UTC (`2026-01-31T10:00:00.123Z`) where Wazuh's script writes
Python's `str()` of it (`2026-01-31 10:00:00.123000+00:00`): one format for every time field, documented
in the README. Null members are dropped unless asked to keep them.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import orjson

from aws_s3_wodle.config.discard import DiscardRule
from aws_s3_wodle.decode.events import drop_nulls
from aws_s3_wodle.decode.formats import dumps

INSPECTOR_SOURCE = "inspector2"
_WAZUH_SECONDS = ("createdAt", "updatedAt")  # the two fields Wazuh's script formats itself


# --- CloudWatch Logs

def log_message_discarded(rule: Optional[DiscardRule], message: str) -> bool:
    """Wazuh's rule for a log event: a JSON message by its field, any other message matched whole."""
    if rule is None:
        return False
    try:
        record = orjson.loads(message)
    except orjson.JSONDecodeError:
        record = None
    if isinstance(record, (dict, list)):
        return rule.matches(record)
    return rule.regex.match(message) is not None


def log_event(message: str) -> bytes:
    """The datagram body of one CloudWatch Logs event: its message, as Wazuh sends it."""
    return message.encode("utf-8", "surrogateescape")


# --- Inspector v2

def rfc3339(value: dt.datetime) -> str:
    """UTC, `Z`, milliseconds only when there are any."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{value.microsecond // 1000:03d}Z" if value.microsecond else "Z")


def _times_as_text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {k: _times_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_times_as_text(v) for v in value]
    return value


def inspector_record(finding: dict, *, keep_nulls: bool = False) -> dict:
    """A finding as the `aws` object of its event (the discard rule reads this)."""
    record = {}
    for key, value in finding.items():
        if key in _WAZUH_SECONDS and isinstance(value, dt.datetime):
            utc = value.astimezone(dt.timezone.utc) if value.tzinfo else value
            record[key] = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            record[key] = _times_as_text(value)
    if "service" in record:  # Wazuh's rule: a `service` field names the source
        record["source"] = str(record.pop("service")).lower()
    else:
        record["source"] = INSPECTOR_SOURCE
    return record if keep_nulls else drop_nulls(record)


def inspector_event(record: dict) -> bytes:
    return dumps({"integration": "aws", "aws": record})
