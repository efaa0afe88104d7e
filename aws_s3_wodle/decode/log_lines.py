"""Record parsers of the line-oriented AWS log formats; the JSON ones use formats.iter_records.

Each parser takes the downloaded object (a seekable binary spool, any compression) and its key and
yields one dict per log line, with Wazuh's field names, so Wazuh's AWS rules apply unchanged.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import BinaryIO, Callable, Iterator, Optional, Sequence

from aws_s3_wodle.decode.formats import DecodeError, iter_records
from aws_s3_wodle.decode.limits import DEFAULT, Limits

# --- VPC flow logs: space-separated, the first line names the fields (default or custom format)

VPC_DEFAULT_FIELDS = ("version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport",
                      "protocol", "packets", "bytes", "start", "end", "action", "log_status")
_VPC_HEADER = re.compile(r"[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)+")
_EPOCH_FIELDS = ("start", "end")


def _lines(spool: BinaryIO, key: str, limits: Limits = DEFAULT) -> Iterator[str]:
    for record in iter_records(spool, key=key, limits=limits, format="text"):
        yield record["full_log"]


def _iso_from_epoch(value: str) -> str:
    try:
        return dt.datetime.fromtimestamp(int(value), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return value  # '-' (no data) or anything unexpected stays as written


def parse_vpcflow(spool: BinaryIO, key: str, limits: Limits = DEFAULT) -> Iterator[dict]:
    """Field names from the header line (hyphens become underscores, as Wazuh names them: interface_id,
    log_status...); `start` and `end` become ISO 8601 UTC. A file without a header gets the default
    (version 2) fields."""
    names: Optional[Sequence[str]] = None
    for number, line in enumerate(_lines(spool, key, limits), 1):
        values = line.split()
        if names is None:
            if _VPC_HEADER.fullmatch(line.strip()):
                names = tuple(v.replace("-", "_") for v in values)
                continue
            names = VPC_DEFAULT_FIELDS
        if len(values) != len(names):
            raise DecodeError(f"line {number} has {len(values)} fields where the header names {len(names)}")
        record = dict(zip(names, values))
        for name in _EPOCH_FIELDS:
            if name in record:
                record[name] = _iso_from_epoch(record[name])
        yield record


# --- Load balancer and S3 server access logs: space-separated, "quoted" and [bracketed] fields

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"(?=\s|$)|\[([^\]]*)\](?=\s|$)|(\S+)')  # [::1]:443 is one field
_UNESCAPE = re.compile(r'\\(["\\])')


def split_fields(line: str) -> list[str]:
    """`a "b c" [d e]` -> ['a', 'b c', 'd e']: quotes and brackets removed, \\" unescaped."""
    out = []
    for m in _TOKEN.finditer(line):
        if m.group(1) is not None:
            out.append(_UNESCAPE.sub(r"\1", m.group(1)))
        elif m.group(2) is not None:
            out.append(m.group(2))
        else:
            out.append(m.group(3))
    return out


ALB_FIELDS = ("type", "time", "elb", "client_port", "target_port", "request_processing_time",
              "target_processing_time", "response_processing_time", "elb_status_code", "target_status_code",
              "received_bytes", "sent_bytes", "request", "user_agent", "ssl_cipher", "ssl_protocol",
              "target_group_arn", "trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
              "request_creation_time", "action_executed", "redirect_url", "error_reason", "target_port_list",
              "target_status_code_list", "classification", "classification_reason", "conn_trace_id")
CLB_FIELDS = ("time", "elb", "client_port", "backend_port", "request_processing_time", "backend_processing_time",
              "response_processing_time", "elb_status_code", "backend_status_code", "received_bytes", "sent_bytes",
              "request", "user_agent", "ssl_cipher", "ssl_protocol")
NLB_FIELDS = ("type", "version", "time", "elb", "listener", "client_port", "destination_port", "connection_time",
              "tls_handshake_time", "received_bytes", "sent_bytes", "incoming_tls_alert", "chosen_cert_arn",
              "chosen_cert_serial", "tls_cipher", "tls_protocol_version", "tls_named_group", "domain_name",
              "alpn_fe_protocol", "alpn_be_protocol", "alpn_client_preference_list", "tls_connection_creation_time")
# Wazuh's field names; the ones after Wazuh's list (AWS added them later) are our additions.
S3_ACCESS_FIELDS = ("bucket_owner", "bucket", "time", "remote_ip", "requester", "request_id", "operation", "key",
                    "request_uri", "http_status", "error_code", "bytes_sent", "object_sent", "total_time",
                    "turn_around_time", "referer", "user_agent", "version_id", "host_id", "signature_version",
                    "cipher_suite", "authentication_type", "host_header", "tls_version", "access_point_arn",
                    "acl_required")


def _host_port(item: str) -> Optional[tuple[str, str]]:
    """'10.0.0.1:80' -> ('10.0.0.1', '80'); '[2001:db8::1]:443' -> ('2001:db8::1', '443'); no port -> None."""
    host, sep, port = item.rpartition(":")
    if not sep:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def _split_alb(record: dict) -> None:
    """ALB: each "ip:port" of client_port, target_port, target_port_list -> the ports stay in the field,
    the addresses go to client_ip, target_ip, target_ip_list (Wazuh's split). A value with an item that
    is no "ip:port" ("-": no target) stays as it is, with no address field, as in Wazuh."""
    for port_field, ip_field in (("client_port", "client_ip"), ("target_port", "target_ip"),
                                 ("target_port_list", "target_ip_list")):
        value = record.get(port_field)
        if not isinstance(value, str):
            continue
        pairs = [_host_port(item) for item in value.split()]
        if all(pairs):
            record[port_field] = " ".join(port for _, port in pairs)
            record[ip_field] = " ".join(ip for ip, _ in pairs)


def _split_nlb(record: dict) -> None:
    """NLB: client_port and destination_port "ip:port" -> client_ip / destination_ip and the port (Wazuh's
    split); a value that is no "ip:port" stays, and the address field gets it whole, as in Wazuh."""
    for port_field, ip_field in (("client_port", "client_ip"), ("destination_port", "destination_ip")):
        value = record.get(port_field)
        if not isinstance(value, str):
            continue
        pair = _host_port(value)
        if pair:
            record[ip_field], record[port_field] = pair
        else:
            record[ip_field] = value


def _add_clb_addresses(record: dict) -> None:
    """CLB: Wazuh keeps client_port and backend_port as written ("203.0.113.30:60000"); the addresses
    alone are added beside them as client_ip and backend_ip (an "-" backend gets none)."""
    for port_field, ip_field in (("client_port", "client_ip"), ("backend_port", "backend_ip")):
        value = record.get(port_field)
        pair = _host_port(value) if isinstance(value, str) else None
        if pair and pair[0] and pair[1].isdigit():
            record[ip_field] = pair[0]


def _fields_parser(names: Sequence[str], fix: Optional[Callable[[dict], None]]):
    def parse(spool: BinaryIO, key: str, limits: Limits = DEFAULT) -> Iterator[dict]:
        for line in _lines(spool, key, limits):
            values = split_fields(line)
            record = dict(zip(names, values))
            if len(values) > len(names):
                record["extra_fields"] = values[len(names):]  # newer AWS fields: kept, never dropped
            if fix is not None:
                fix(record)
            yield record
    return parse


parse_alb = _fields_parser(ALB_FIELDS, _split_alb)
parse_clb = _fields_parser(CLB_FIELDS, _add_clb_addresses)
parse_nlb = _fields_parser(NLB_FIELDS, _split_nlb)
parse_server_access = _fields_parser(S3_ACCESS_FIELDS, None)


# --- Cisco Umbrella: CSV without a header; the folder (dnslogs, proxylogs, iplogs) names the fields

UMBRELLA_FIELDS = {
    "dnslogs": ("timestamp", "most_granular_identity", "identities", "internal_ip", "external_ip", "action",
                "query_type", "response_code", "domain", "categories", "most_granular_identity_type",
                "identity_types", "blocked_categories"),
    "proxylogs": ("timestamp", "identities", "internal_ip", "external_ip", "destination_ip", "content_type",
                  "verdict", "url", "referer", "user_agent", "status_code", "requested_size", "response_size",
                  "response_body_size", "sha", "categories", "av_detections", "puas", "amp_disposition",
                  "amp_malware_name", "amp_score", "identity_type", "blocked_categories"),
    "iplogs": ("timestamp", "identity", "source_ip", "source_port", "destination_ip", "destination_port",
               "categories"),
}


def parse_cisco_umbrella(spool: BinaryIO, key: str, limits: Limits = DEFAULT) -> Iterator[dict]:
    kind = next((k for k in UMBRELLA_FIELDS if f"{k}/" in key or key.startswith(k)), None)
    if kind is None:
        raise DecodeError("the key is under none of the Cisco Umbrella folders dnslogs/, proxylogs/, iplogs/, "
                          "so its fields cannot be named")
    yield from iter_records(spool, key=key, limits=limits, format="csv", delimiter=",", fieldnames=UMBRELLA_FIELDS[kind])


# --- JSON types

def parse_json(spool: BinaryIO, key: str, limits: Limits = DEFAULT) -> Iterator[dict]:
    """CloudTrail `Records`, JSON lines (WAF, GuardDuty), arrays, concatenated objects: formats decides."""
    return iter_records(spool, key=key, limits=limits, format="json")


def parse_config(spool: BinaryIO, key: str, limits: Limits = DEFAULT) -> Iterator[dict]:
    """AWS Config history and snapshot files: one record per item of `configurationItems`."""
    for document in iter_records(spool, key=key, limits=limits, format="json"):
        items = document.get("configurationItems")
        if items is None:
            if "configurationItem" in document:  # a single-item notification delivered to S3
                items = [document["configurationItem"]]
            else:
                continue  # e.g. the delivery's ConfigWritabilityCheckFile: no configuration items
        if not isinstance(items, list):
            raise DecodeError("'configurationItems' is not a list")
        for item in items:
            if isinstance(item, dict):
                yield item


def parse_any(spool: BinaryIO, key: str, limits: Limits = DEFAULT) -> Iterator[dict]:
    """custom: whatever formats detects (JSON in any shape, CSV with a header, text lines)."""
    return iter_records(spool, key=key, limits=limits)
