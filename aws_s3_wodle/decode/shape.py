"""Records -> the events Wazuh's AWS rules (ruleset 0350-amazon_rules.xml) and index expect.

Every event is `{"integration": "aws", "aws": {<record>, "source": ..., "log_info": {"log_file": key,
"s3bucket": bucket[, "aws_account_alias": alias]}[, "aws_account_id": ...]}}`. The field fixes below
are the ones Wazuh's own module applies, so rules and dashboards built for it work unchanged:
null fields dropped; one-element lists replaced by their element (rules address
`aws.resources.ARN`, not `aws.resources[0].ARN`); CloudTrail's free-form `requestParameters`,
`responseElements` and `additionalEventData` always objects; a GuardDuty port probe finding with
several probes split into one event per probe; Config's free-form configuration fields made stable.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator, Optional

import orjson

from aws_s3_wodle.decode import events

Shaper = Callable[[dict, str], Iterator[dict]]

_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\Z")


def _clean(value: Any) -> Any:
    """Null fields dropped (in objects at any depth) and one-element lists unwrapped, in place
    (events.drop_nulls: iterative, too deep a record is a DecodeError of its object)."""
    return events.drop_nulls(value, unwrap_singletons=True)


def _as_object(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value
    return {name: value if isinstance(value, str) else orjson.dumps(value).decode()}


def generic(record: dict, source: str) -> Iterator[dict]:
    event = _clean(dict(record))  # a new top level: the fields set below are the event's, not the record's
    event["source"] = source
    ip = event.get("sourceIPAddress")
    if isinstance(ip, str) and _IPV4.match(ip):
        event["source_ip_address"] = ip  # typed as an IP in Wazuh's index; sourceIPAddress may be a DNS name
    if "tags" in event and not isinstance(event["tags"], dict):
        event["tags"] = {"value": event["tags"]}
    yield event


def cloudtrail(record: dict, source: str) -> Iterator[dict]:
    for event in generic(record, source):
        for name in ("additionalEventData", "responseElements", "requestParameters"):
            if name in event:
                event[name] = _as_object(event[name], "string")
        params = event.get("requestParameters")
        if isinstance(params, dict) and isinstance(params.get("disableApiTermination"), bool):
            params["disableApiTermination"] = {"value": params["disableApiTermination"]}
        yield event


def _eventbridge(record: dict) -> Optional[tuple[dict, str]]:
    """(detail, source without 'aws.') of an EventBridge event, as Firehose deliveries hold them."""
    if isinstance(record.get("detail"), dict) and isinstance(record.get("source"), str) and "detail-type" in record:
        return record["detail"], record["source"].removeprefix("aws.")
    return None


def guardduty(record: dict, source: str) -> Iterator[dict]:
    """Source from the finding (`service.serviceName`, 'guardduty'); several port probes -> one event each.
    A finding wrapped in an EventBridge event (the Firehose delivery) is unwrapped first."""
    wrapped = _eventbridge(record)
    if wrapped:
        record, source = wrapped
    service = record.get("service") if isinstance(record.get("service"), dict) else {}
    source = service.get("serviceName") if isinstance(service.get("serviceName"), str) else source
    probe = ((service.get("action") or {}).get("portProbeAction") or {}) if isinstance(service.get("action"), dict) \
        else {}
    details = probe.get("portProbeDetails") if isinstance(probe, dict) else None
    if isinstance(details, list) and len(details) > 1:
        action = service["action"]
        for detail in details:  # a copy along the path to the probe: the events share no changed part
            yield from generic({**record, "service": {**service, "action": {
                **action, "portProbeAction": {**probe, "portProbeDetails": detail}}}}, source)
    else:
        yield from generic(record, source)


def _keys_or_lists(value: Any, fields: tuple[str, ...]) -> Any:
    """Config's securityGroups / availabilityZones: a list of objects -> an object of lists."""
    if isinstance(value, str):
        return {fields[0]: [value]}
    if isinstance(value, list):
        out = {f: [v[f] for v in value if isinstance(v, dict) and f in v] for f in fields}
        return {f: v for f, v in out.items() if v}
    if isinstance(value, dict):
        return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
    return value


def config(record: dict, source: str) -> Iterator[dict]:
    conf = record.get("configuration")
    if isinstance(conf, dict):
        conf = dict(conf)
        for name, value in conf.items():
            if isinstance(value, dict) and isinstance(value.get("Content"), dict):
                conf[name] = {**value, "Content": list(value["Content"])}  # document bodies: their names only
        if "securityGroups" in conf:
            conf["securityGroups"] = _keys_or_lists(conf["securityGroups"], ("groupId", "groupName"))
        if "availabilityZones" in conf:
            conf["availabilityZones"] = _keys_or_lists(conf["availabilityZones"], ("zoneName", "subnetId"))
        for name in ("state", "iamInstanceProfile"):
            if isinstance(conf.get(name), str):
                conf[name] = {"name": conf[name]}
        record = {**record, "configuration": conf}
    yield from generic(record, source)


# WAF request headers: a list of {name, value} -> an object of the standard headers (the index maps a
# bounded set of fields; arbitrary header names would not fit it).
STANDARD_HEADERS = frozenset((
    "a-im", "accept", "accept-charset", "accept-encoding", "accept-language", "access-control-request-method",
    "access-control-request-headers", "authorization", "cache-control", "connection", "content-encoding",
    "content-length", "content-type", "cookie", "date", "expect", "forwarded", "from", "host", "http2-settings",
    "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "max-forwards", "origin",
    "pragma", "prefer", "proxy-authorization", "range", "referer", "te", "trailer", "transfer-encoding",
    "user-agent", "upgrade", "via", "warning", "x-requested-with", "x-forwarded-for", "x-forwarded-host",
    "x-forwarded-proto"))


def waf(record: dict, source: str) -> Iterator[dict]:
    request = record.get("httpRequest")
    if isinstance(request, dict) and isinstance(request.get("headers"), list):
        headers = {h["name"]: h.get("value") for h in request["headers"]
                   if isinstance(h, dict) and isinstance(h.get("name"), str) and h["name"].lower() in STANDARD_HEADERS}
        record = {**record, "httpRequest": {**request, "headers": headers}}
    yield from generic(record, source)


def eventbridge_or_custom(record: dict, source: str) -> Iterator[dict]:
    """An EventBridge event (GuardDuty, Macie, Inspector... via Firehose) becomes its `detail`, with the
    event's source without 'aws.' ('aws.macie' -> 'macie'); any other record is sent as it is, with
    source 'custom' (a `source` field of its own is kept as `original_source`)."""
    wrapped = _eventbridge(record)
    if wrapped:
        detail, name = wrapped
        yield from (guardduty if name == "guardduty" else generic)(detail, name)
        return
    if "source" in record:
        record = {**record, "original_source": record["source"]}
        del record["source"]
    yield from generic(record, source)


def wrap(event: dict, *, key: str, bucket: str, account: Optional[str], alias: Optional[str]) -> dict:
    """The subscribers' wrapper (events.wrap), plus the account the key names and the configured alias."""
    out = events.wrap(event, source=event["source"], bucket=bucket, key=key)
    if alias:
        out["aws"]["log_info"]["aws_account_alias"] = alias
    if account:
        out["aws"]["aws_account_id"] = account
    return out
