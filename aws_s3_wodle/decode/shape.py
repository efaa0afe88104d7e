"""Records of the bucket types -> the events Wazuh's own aws-s3 module sends for them, field for field.

Operators' rules, decoders and dashboards are written against Wazuh's events, so every bucket type
sends what Wazuh 4.14.7 sends, in the same order of fixes:

  1. null members dropped from objects reached through objects (inside arrays they stay);
  2. a one-element array member of such an object replaced by its element, which is not walked
     further (`resources: [{...}]` -> `resources: {...}`, but `items[].groupSet.items` keeps its list);
  3. `source_ip_address` beside an IPv4 `sourceIPAddress`; a `tags` that is no object -> `{"value": tags}`;
  4. the type's own fixes (CloudTrail's free-form fields, Config's configuration fields, GuardDuty's
     port probes, ...).

Every event is `{"integration": "aws", "aws": {"log_info": {"aws_account_alias": alias or "",
"log_file": key, "s3bucket": bucket}, <record>, "source": ...[, "aws_account_id": ...]}}`.
Where we differ from Wazuh on purpose (only by adding a field, or where Wazuh loses or misplaces data)
the README's "Differences from Wazuh's events" says so and why.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any, Callable, Iterator, Optional

from aws_s3_wodle.decode import events

Shaper = Callable[[dict, str], Iterator[dict]]

# Wazuh's own test (a prefix match, the last two dots unescaped); the field is typed as an IP in its index
_IPV4 = re.compile(r"\d+\.\d+.\d+.\d+")


def _nulls(record: dict, source: str, *, collapse: bool = True) -> dict:
    """Steps 1-2 on a new top level carrying `source` (the record's own `source` is replaced, as Wazuh does)."""
    return events.wazuh_nulls({**record, "source": source}, collapse=collapse)


def _common(event: dict) -> dict:
    """Step 3."""
    ip = event.get("sourceIPAddress")
    if isinstance(ip, str) and _IPV4.match(ip):
        event["source_ip_address"] = ip
    if "tags" in event and not isinstance(event["tags"], dict):
        event["tags"] = {"value": event["tags"]}
    return event


def generic(record: dict, source: str) -> Iterator[dict]:
    """Steps 1-3: VPC flow logs."""
    yield _common(_nulls(record, source))


# --- CloudTrail

_FREE_FORM = ("additionalEventData", "responseElements", "requestParameters")


def cloudtrail(record: dict, source: str) -> Iterator[dict]:
    """Free-form members that are not objects become `{"string": <their Python text>}` (what Wazuh's
    index maps; the text is Python's, `['a', 'b']`, as Wazuh writes it); a boolean
    `requestParameters.disableApiTermination` becomes `{"value": ...}`."""
    event = _common(_nulls(record, source))
    for name in _FREE_FORM:
        if name in event and not isinstance(event[name], dict):
            event[name] = {"string": str(event[name])}
    params = event.get("requestParameters")
    if isinstance(params, dict) and isinstance(params.get("disableApiTermination"), bool):
        params["disableApiTermination"] = {"value": params["disableApiTermination"]}
    yield event


# --- Config

def _by_member(value: Any, first: str, second: str) -> Any:
    """Config's securityGroups / availabilityZones -> an object of lists, as Wazuh indexes them.

    A text is one `first` (a group id, a zone name); a list of objects gives the lists of their `first`
    and `second` members. A list of texts (an ALB's `securityGroups: ["sg-1", "sg-2"]`) gives `first`
    too, where Wazuh sends `{}` and loses them."""
    if isinstance(value, str):
        return {first: [value]}
    if isinstance(value, list):
        out: dict = {}
        for name in (first, second):
            found = [v[name] for v in value if isinstance(v, dict) and name in v]
            if name == first:
                found += [v for v in value if isinstance(v, str)]
            if found:
                out[name] = found
        return out
    if isinstance(value, dict):
        return {k: [v] for k, v in value.items()}
    return value


def _epoch(value: Any) -> Any:
    """`createdTime` as Wazuh sends it: seconds since the epoch, a float (the ISO text's fraction dropped).

    Wazuh reads the text as the host's local time; here it is read as what it says, UTC (the same on a
    UTC host, the right instant on any other). A text of another form stays as it is, as in Wazuh."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        parsed = dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return value
    return float(calendar.timegm(parsed.timetuple()))


def config(record: dict, source: str) -> Iterator[dict]:
    """Configuration members fixed after steps 1-3, as Wazuh does: document bodies (`Content`) keep only
    their names; securityGroups / availabilityZones objects of lists; `state` and `iamInstanceProfile`
    texts -> `{"name": ...}`; `createdTime` epoch seconds."""
    event = _common(_nulls(record, source))
    conf = event.get("configuration")
    if isinstance(conf, dict):
        for value in conf.values():
            if isinstance(value, dict) and isinstance(value.get("Content"), dict):
                value["Content"] = list(value["Content"])
        if "securityGroups" in conf:
            conf["securityGroups"] = _by_member(conf["securityGroups"], "groupId", "groupName")
        if "availabilityZones" in conf:
            conf["availabilityZones"] = _by_member(conf["availabilityZones"], "zoneName", "subnetId")
        for name in ("state", "iamInstanceProfile"):
            if isinstance(conf.get(name), str):
                conf[name] = {"name": conf[name]}
        if "createdTime" in conf:
            conf["createdTime"] = _epoch(conf["createdTime"])
    yield event


# --- GuardDuty

def _eventbridge(record: dict) -> Optional[tuple[dict, str]]:
    """(detail, source) of an EventBridge event as Firehose writes them: Wazuh reads any record with a
    `detail` and names it after the event's `source`, 'aws.' removed ('aws.macie' -> 'macie')."""
    if isinstance(record.get("detail"), dict) and isinstance(record.get("source"), str):
        return record["detail"], record["source"].replace("aws.", "")
    return None


def _probes(event: dict) -> Optional[list]:
    service = event.get("service")
    action = service.get("action") if isinstance(service, dict) else None
    probe = action.get("portProbeAction") if isinstance(action, dict) else None
    details = probe.get("portProbeDetails") if isinstance(probe, dict) else None
    return details if isinstance(details, list) and len(details) > 1 else None


def guardduty(record: dict, source: str) -> Iterator[dict]:
    """Source from the finding (`service.serviceName`; a Firehose delivery: its EventBridge source). A
    finding with several port probes is one event per probe, each sent as Wazuh sends them: nulls
    dropped, nothing else (its lists stay lists); any other finding gets steps 1-3."""
    wrapped = _eventbridge(record)
    if wrapped:
        record, source = wrapped
    else:
        service = record.get("service")
        name = service.get("serviceName") if isinstance(service, dict) else None
        source = name if isinstance(name, str) else source
    if source == "guardduty":
        event = _nulls(record, source, collapse=False)
        details = _probes(event)
        if details is not None:
            probe = event["service"]["action"]["portProbeAction"]
            for detail in details:
                yield {**event, "service": {**event["service"], "action": {
                    **event["service"]["action"], "portProbeAction": {**probe, "portProbeDetails": detail}}}}
            return
        yield _common(events.wazuh_nulls(event, collapse=True))
        return
    yield _common(_nulls(record, source))


# --- the types Wazuh reads as custom buckets (WAF, load balancers, server access, Umbrella, custom)

_MACIE_SUMMARY = ("Bucket", "DLP risk", "IP", "Location", "Object", "Owner", "Themes", "Timestamps",
                  "recipientAccountId")


def _paths(value: Any, discard: int, path: tuple = ()) -> list[str]:
    """Macie Classic's summary maps -> their paths, 'a.b.c', the last `discard` levels left out."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, discard, path + (str(k),))]
    full = path + tuple(str(v) for v in value) if isinstance(value, list) else path + (str(value),)
    return [".".join(full[:len(full) - discard])]


def _custom_fixes(event: dict) -> dict:
    """Wazuh's custom-bucket fixes: GuardDuty's `service.additionalInfo.unusual` always an object;
    Macie Classic's alerts without `trigger`, their summary maps flattened to paths."""
    info = event.get("service", {}).get("additionalInfo") if isinstance(event.get("service"), dict) else None
    if isinstance(info, dict) and "unusual" in info and not isinstance(info["unusual"], dict):
        info["unusual"] = {"value": info["unusual"]}
    if event.get("source") == "macie":
        event.pop("trigger", None)
        summary = event.get("summary")
        if isinstance(summary, dict):
            for name in _MACIE_SUMMARY:
                if isinstance(summary.get(name), dict):
                    summary[name] = _paths(summary[name], 1)
            found = summary.get("Events")
            if isinstance(found, dict):
                for fields in found.values():
                    if isinstance(fields, dict):
                        for name, value in fields.items():
                            # Wazuh's counts come out as "" (it keeps no level of them): the whole path here
                            fields[name] = _paths(value, 0 if name == "count" else 1)
    return event


def custom_type(record: dict, source: str) -> Iterator[dict]:
    """Load balancers, S3 server access, Cisco Umbrella: steps 1-3 and the custom-bucket fixes."""
    yield _custom_fixes(_common(_nulls(record, source)))


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
    """Headers first (before the nulls, as Wazuh reads them), then as any custom-bucket record."""
    request = record.get("httpRequest")
    if isinstance(request, dict) and isinstance(request.get("headers"), list):
        headers = {h["name"]: h.get("value") for h in request["headers"]
                   if isinstance(h, dict) and isinstance(h.get("name"), str) and h["name"].lower() in STANDARD_HEADERS}
        record = {**record, "httpRequest": {**request, "headers": headers}}
    yield from custom_type(record, source)


def eventbridge_or_custom(record: dict, source: str) -> Iterator[dict]:
    """An EventBridge event (GuardDuty, Macie, Inspector... via Firehose) becomes its `detail`, named after
    the event's source without 'aws.'; GuardDuty port probes are not split here (Wazuh's custom type
    does not). Any other record, which Wazuh's custom type drops, is sent as it is with source 'custom'
    (a `source` of its own kept as `original_source`)."""
    wrapped = _eventbridge(record)
    if wrapped:
        detail, name = wrapped
        yield from custom_type(detail, name)
        return
    if "source" in record:
        record = {**record, "original_source": record["source"]}
        del record["source"]
    yield from custom_type(record, source)


def wrap(event: dict, *, key: str, bucket: str, account: Optional[str], alias: Optional[str]) -> dict:
    """Wazuh's bucket wrapper: log_info always names the alias ("" when none is set); `aws_account_id`
    when the key names an account (Wazuh: CloudTrail, VPC flow and Config only; an added field elsewhere)."""
    log_info = {"aws_account_alias": alias or "", "log_file": key, "s3bucket": bucket}
    aws = {"log_info": log_info, **event}
    aws["log_info"] = log_info
    if account:
        aws["aws_account_id"] = account
    return {"integration": "aws", "aws": aws}
