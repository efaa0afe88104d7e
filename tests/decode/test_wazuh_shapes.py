"""The events of every bucket type and of the buckets subscriber, field for field.

Each test feeds one object, as the AWS service writes it, through the type's parser and shaper and
compares the whole events with the ones Wazuh 4.14.7's aws-s3 module sends for the same object, written
out here by hand from its documented behaviour (nulls dropped only through objects, one-element lists
collapsed only while walking objects, aws_account_alias always in log_info, the type's own fixes).
Where an expected event differs from Wazuh's, a comment names the difference; each one is listed with
its reason in the README ("Differences from Wazuh's events"). The same objects were checked against
Wazuh's own script run side by side on moto (see the README).
"""
from __future__ import annotations

import gzip
import io
import json
import threading
from typing import Optional

from aws_s3_wodle.config.subscribers import BucketsSubscriber
from aws_s3_wodle.decode import shape
from aws_s3_wodle.run.wiring import Context, object_decoder
from aws_s3_wodle.seams import ObjectRef
from aws_s3_wodle.sources.listing.layouts import TYPES

ACCOUNT = "111111111111"
BUCKET = "logs-bucket"


def bucket_events(kind: str, key: str, body: bytes, *, account: Optional[str] = ACCOUNT, alias: str = "") -> list:
    """What a <bucket type=kind> block sends for the object: parse -> shape -> wrap, as JSON round trip."""
    btype = TYPES[kind]
    spool = io.BytesIO(gzip.compress(body) if key.endswith(".gz") else body)
    out = []
    for record in btype.parse(spool, key):
        for event in btype.shape(record, btype.source):
            wrapped = shape.wrap(event, key=key, bucket=BUCKET, account=account, alias=alias or None)
            out.append(json.loads(json.dumps(wrapped)))
    return out


def aws(key: str, fields: dict, *, alias: str = "") -> dict:
    return {"integration": "aws", "aws": {"log_info": {"aws_account_alias": alias, "log_file": key, "s3bucket": BUCKET},
                                          **fields}}


def lines(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


# --- CloudTrail

CT_KEY = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/01/{ACCOUNT}_CloudTrail_us-east-1_20260101T0000Z_a.json.gz"


def test_cloudtrail():
    records = [
        {"eventVersion": "1.09", "eventID": "e1", "eventName": "RunInstances", "sourceIPAddress": "198.51.100.7",
         "errorCode": None, "userIdentity": {"type": "IAMUser", "sessionContext": {"webIdFederationData": None}},
         "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-1"}]}, "disableApiTermination": False},
         "responseElements": {"instancesSet": {"items": [
             {"instanceId": "i-1", "groupSet": {"items": [{"groupId": "sg-1"}]}, "tagSet": None},
             {"instanceId": "i-2", "groupSet": {"items": [{"groupId": "sg-2"}, {"groupId": "sg-3"}]}}]}},
         "resources": [{"ARN": "arn:aws:ec2:us-east-1:111111111111:instance/i-1", "accountId": None}],
         "additionalEventData": ["a", True, None], "tags": ["t1"], "single_null": [None], "nested": [[1, 2]]},
        {"eventID": "e2", "sourceIPAddress": "ec2.amazonaws.com", "requestParameters": "only text",
         "responseElements": None, "additionalEventData": {"x": [{"y": None}]}},
    ]
    got = bucket_events("cloudtrail", CT_KEY, json.dumps({"Records": records}).encode(), alias="prod")
    assert got == [
        aws(CT_KEY, {
            "eventVersion": "1.09", "eventID": "e1", "eventName": "RunInstances", "sourceIPAddress": "198.51.100.7",
            "userIdentity": {"type": "IAMUser", "sessionContext": {}},  # nulls dropped through objects
            "requestParameters": {"instancesSet": {"items": {"imageId": "ami-1"}},
                                  "disableApiTermination": {"value": False}},
            # inside list items nothing is collapsed and nulls stay
            "responseElements": {"instancesSet": {"items": [
                {"instanceId": "i-1", "groupSet": {"items": [{"groupId": "sg-1"}]}, "tagSet": None},
                {"instanceId": "i-2", "groupSet": {"items": [{"groupId": "sg-2"}, {"groupId": "sg-3"}]}}]}},
            "resources": {"ARN": "arn:aws:ec2:us-east-1:111111111111:instance/i-1", "accountId": None},
            "additionalEventData": {"string": "['a', True, None]"},  # Python's text of the list, as Wazuh's
            "tags": {"value": "t1"}, "single_null": None, "nested": [1, 2],
            "source": "cloudtrail", "aws_account_id": ACCOUNT, "source_ip_address": "198.51.100.7"}, alias="prod"),
        aws(CT_KEY, {
            "eventID": "e2", "sourceIPAddress": "ec2.amazonaws.com", "requestParameters": {"string": "only text"},
            "additionalEventData": {"x": {"y": None}}, "source": "cloudtrail", "aws_account_id": ACCOUNT},
            alias="prod"),
    ]


# --- VPC flow logs

def test_vpcflow():
    key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2026/01/01/{ACCOUNT}_vpcflowlogs_us-east-1_fl-1_20260101T0000Z_a.log.gz"
    body = lines("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
                 "action log-status",
                 f"2 {ACCOUNT} eni-1 10.0.0.9 10.0.1.5 5555 443 6 3 120 1767225600 1767225660 ACCEPT OK")
    # Wazuh also sends the header line as an event (version: "version", ...): a difference, not a record
    assert bucket_events("vpcflow", key, body) == [aws(key, {
        "version": "2", "account_id": ACCOUNT, "interface_id": "eni-1", "srcaddr": "10.0.0.9", "dstaddr": "10.0.1.5",
        "srcport": "5555", "dstport": "443", "protocol": "6", "packets": "3", "bytes": "120",
        "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "action": "ACCEPT", "log_status": "OK",
        "source": "vpc", "aws_account_id": ACCOUNT})]


# --- Config

def test_config():
    key = (f"AWSLogs/{ACCOUNT}/Config/us-east-1/2026/1/1/ConfigHistory/"
           f"{ACCOUNT}_Config_us-east-1_ConfigHistory_X_20260101T000000Z_20260101T000000Z_1.json.gz")
    items = [
        {"resourceType": "AWS::ElasticLoadBalancingV2::LoadBalancer", "resourceId": "alb-1", "tags": {},
         "relatedEvents": [], "configuration": {"securityGroups": ["sg-0abc"], "createdTime": "2026-01-02T03:04:05.678Z",
                                                "availabilityZones": [{"zoneName": "us-east-1a", "subnetId": "subnet-1"},
                                                                      {"zoneName": "us-east-1b", "subnetId": "subnet-2"}]}},
        {"resourceType": "AWS::ElasticLoadBalancingV2::LoadBalancer", "resourceId": "alb-2",
         "configuration": {"securityGroups": ["sg-0abc", "sg-0def"], "createdTime": 1767323045}},
        {"resourceType": "AWS::EC2::Instance", "resourceId": "i-1",
         "relationships": [{"resourceId": "sg-1", "resourceType": "AWS::EC2::SecurityGroup"}],
         "configuration": {"securityGroups": [{"groupName": "web", "groupId": "sg-1"}], "state": {"code": 16},
                           "networkInterfaces": [{"groups": [{"groupId": "sg-1"}], "x": None}],
                           "createdTime": "2026-01-02T03:04:05Z"}},
        {"resourceType": "AWS::SSM::ManagedInstanceInventory", "resourceId": "i-2",
         "configuration": {"AWS:InstanceInformation": {"SchemaVersion": "1.0", "Content": {"i-2": {"AgentType": "a"}}},
                           "AWS:Application": {"Content": {"bash": {}, "curl": {}}}}},
        {"resourceType": "AWS::RDS::DBInstance", "resourceId": "db-1",
         "configuration": {"securityGroups": {"groupId": "sg-9", "status": "active"}, "availabilityZones": "us-east-1c",
                           "state": "available", "iamInstanceProfile": "prof", "dbName": None}},
    ]
    got = bucket_events("config", key, json.dumps({"fileVersion": "1.0", "configurationItems": items}).encode())
    common = {"source": "config", "aws_account_id": ACCOUNT}
    assert got == [
        aws(key, {"resourceType": "AWS::ElasticLoadBalancingV2::LoadBalancer", "resourceId": "alb-1", "tags": {},
                  "relatedEvents": [],
                  "configuration": {"securityGroups": {"groupId": ["sg-0abc"]},  # the security group kept
                                    "createdTime": 1767323045.0,
                                    "availabilityZones": {"zoneName": ["us-east-1a", "us-east-1b"],
                                                          "subnetId": ["subnet-1", "subnet-2"]}}, **common}),
        # Wazuh sends securityGroups {} here, losing both groups: kept (a deliberate difference)
        aws(key, {"resourceType": "AWS::ElasticLoadBalancingV2::LoadBalancer", "resourceId": "alb-2",
                  "configuration": {"securityGroups": {"groupId": ["sg-0abc", "sg-0def"]}, "createdTime": 1767323045.0},
                  **common}),
        aws(key, {"resourceType": "AWS::EC2::Instance", "resourceId": "i-1",
                  "relationships": {"resourceId": "sg-1", "resourceType": "AWS::EC2::SecurityGroup"},
                  "configuration": {"securityGroups": {"groupName": ["web"], "groupId": ["sg-1"]}, "state": {"code": 16},
                                    "networkInterfaces": {"groups": [{"groupId": "sg-1"}], "x": None},
                                    "createdTime": "2026-01-02T03:04:05Z"},  # not Wazuh's form: as written
                  **common}),
        aws(key, {"resourceType": "AWS::SSM::ManagedInstanceInventory", "resourceId": "i-2",
                  "configuration": {"AWS:InstanceInformation": {"SchemaVersion": "1.0", "Content": ["i-2"]},
                                    "AWS:Application": {"Content": ["bash", "curl"]}}, **common}),
        aws(key, {"resourceType": "AWS::RDS::DBInstance", "resourceId": "db-1",
                  "configuration": {"securityGroups": {"groupId": ["sg-9"], "status": ["active"]},
                                    "availabilityZones": {"zoneName": ["us-east-1c"]}, "state": {"name": "available"},
                                    "iamInstanceProfile": {"name": "prof"}}, **common}),
    ]


# --- GuardDuty

def _finding(fid: str, probes: int) -> dict:
    return {"schemaVersion": "2.0", "id": fid, "partition": None, "tags": ["x"],
            "resource": {"instanceDetails": {"networkInterfaces": [{"securityGroups": [{"groupId": "sg-1"}],
                                                                    "publicIp": None}]}},
            "service": {"serviceName": "guardduty", "count": probes, "additionalInfo": {"unusual": 7},
                        "action": {"portProbeAction": {"blocked": False, "portProbeDetails": [
                            {"localPortDetails": {"port": 22 + p}, "remoteIpDetails": {"city": {"cityName": None}}}
                            for p in range(probes)]}}}}


def test_guardduty():
    key = f"AWSLogs/{ACCOUNT}/GuardDuty/us-east-1/2026/01/01/f.jsonl.gz"
    got = bucket_events("guardduty", key, lines(_finding("one", 1), _finding("two", 2)))
    extra = {"source": "guardduty", "aws_account_id": ACCOUNT}  # aws_account_id: added (Wazuh has none here)
    one = aws(key, {"schemaVersion": "2.0", "id": "one", "tags": {"value": "x"},
                    "resource": {"instanceDetails": {"networkInterfaces": {"securityGroups": [{"groupId": "sg-1"}],
                                                                           "publicIp": None}}},
                    "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"unusual": 7},
                                "action": {"portProbeAction": {"blocked": False, "portProbeDetails": {
                                    "localPortDetails": {"port": 22}, "remoteIpDetails": {"city": {"cityName": None}}}}}},
                    **extra})

    def probe(port: int) -> dict:  # a split finding: nulls dropped, nothing else (its lists stay lists)
        return aws(key, {"schemaVersion": "2.0", "id": "two", "tags": ["x"],
                         "resource": {"instanceDetails": {"networkInterfaces": [{"securityGroups": [{"groupId": "sg-1"}],
                                                                                  "publicIp": None}]}},
                         "service": {"serviceName": "guardduty", "count": 2, "additionalInfo": {"unusual": 7},
                                     "action": {"portProbeAction": {"blocked": False, "portProbeDetails": {
                                         "localPortDetails": {"port": port},
                                         "remoteIpDetails": {"city": {"cityName": None}}}}}},
                         **extra})
    assert got == [one, probe(22), probe(23)]


# --- WAF

def test_waf():
    key = "waf/2026/01/01/00/stream-1-2026-01-01-00-00-00-a.gz"  # Firehose layout: no account in the key
    record = {"timestamp": 1767225600000, "action": "ALLOW", "terminatingRuleMatchDetails": [],
              "requestHeadersInserted": None,
              "ruleGroupList": [{"ruleGroupId": "AWS#Common", "terminatingRule": None, "excludedRules": None}],
              "rateBasedRuleList": [{"rateBasedRuleId": "r1", "limitValue": None}, {"rateBasedRuleId": "r2"}],
              "labels": [{"name": "awswaf:x"}],
              "httpRequest": {"clientIp": "192.0.2.1", "headers": [{"name": "Host", "value": "a"},
                                                                   {"name": "X-Custom", "value": "b"},
                                                                   {"name": "user-agent", "value": "ua"}],
                              "requestId": "r-1"}}
    assert bucket_events("waf", key, lines(record), account=None) == [aws(key, {
        "timestamp": 1767225600000, "action": "ALLOW", "terminatingRuleMatchDetails": [],
        "ruleGroupList": {"ruleGroupId": "AWS#Common", "terminatingRule": None, "excludedRules": None},  # nulls kept
        "rateBasedRuleList": [{"rateBasedRuleId": "r1", "limitValue": None}, {"rateBasedRuleId": "r2"}],
        "labels": {"name": "awswaf:x"},
        "httpRequest": {"clientIp": "192.0.2.1", "headers": {"Host": "a", "user-agent": "ua"}, "requestId": "r-1"},
        "source": "waf"})]


# --- load balancers

ELB = f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/01/01/{ACCOUNT}_elasticloadbalancing_us-east-1_"


def test_alb():
    key = ELB + "app.a.1_20260101T0000Z_10.0.0.9_x.log.gz"
    line = ('https 2026-01-01T00:00:02.000000Z app/a/1 192.0.2.11:2818 10.0.0.1:80 0.001 0.002 0.000 200 200 1 2 '
            '"GET https://e.com:443/ HTTP/1.1" "Mozilla/5.0 (X11)" ECDHE TLSv1.2 arn:tg "Root=1-b" "e.com" "arn:c" 1 '
            '2026-01-01T00:00:01.000000Z "waf,forward" "-" "-" "10.0.0.1:80 10.0.0.2:80" "200 200" "-" "-" TID_2')
    assert bucket_events("alb", key, lines(line)) == [aws(key, {
        "type": "https", "time": "2026-01-01T00:00:02.000000Z", "elb": "app/a/1", "client_port": "2818",
        "target_port": "80", "request_processing_time": "0.001", "target_processing_time": "0.002",
        "response_processing_time": "0.000", "elb_status_code": "200", "target_status_code": "200",
        "received_bytes": "1", "sent_bytes": "2", "request": "GET https://e.com:443/ HTTP/1.1",
        "user_agent": "Mozilla/5.0 (X11)", "ssl_cipher": "ECDHE", "ssl_protocol": "TLSv1.2", "target_group_arn": "arn:tg",
        "trace_id": "Root=1-b", "domain_name": "e.com", "chosen_cert_arn": "arn:c", "matched_rule_priority": "1",
        "request_creation_time": "2026-01-01T00:00:01.000000Z", "action_executed": "waf,forward", "redirect_url": "-",
        "error_reason": "-", "target_port_list": "80 80", "target_status_code_list": "200 200", "classification": "-",
        "classification_reason": "-",
        "conn_trace_id": "TID_2",  # Wazuh: under "null" (its field list ends before it)
        "source": "alb", "client_ip": "192.0.2.11", "target_ip": "10.0.0.1", "target_ip_list": "10.0.0.1 10.0.0.2",
        "aws_account_id": ACCOUNT})]  # added


def test_clb():
    key = ELB + "my-clb_20260101T0000Z_10.0.0.9_x.log"
    line = ('2026-01-01T00:00:04.945958Z my-clb 203.0.113.30:60000 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 '
            '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -')
    assert bucket_events("clb", key, lines(line)) == [aws(key, {
        "time": "2026-01-01T00:00:04.945958Z", "elb": "my-clb", "client_port": "203.0.113.30:60000",
        "backend_port": "10.0.0.1:80", "request_processing_time": "0.000073", "backend_processing_time": "0.001048",
        "response_processing_time": "0.000057", "elb_status_code": "200", "backend_status_code": "200",
        "received_bytes": "0", "sent_bytes": "29", "request": "GET http://www.example.com:80/ HTTP/1.1",
        "user_agent": "curl/7.38.0", "ssl_cipher": "-", "ssl_protocol": "-", "source": "clb",
        "client_ip": "203.0.113.30", "backend_ip": "10.0.0.1", "aws_account_id": ACCOUNT})]  # the last three added


def test_nlb():
    key = ELB + "net.n.1_20260101T0000Z_10.0.0.9_x.log.gz"
    line = ('tls 2.0 2026-01-01T00:00:03 net/n/1 g3d4 192.0.2.20:3000 10.0.2.7:443 5 2 98 246 - arn:c - '
            'ECDHE tlsv12 - n.elb.amazonaws.com h2 http/1.1 h2 2026-01-01T00:00:02')
    assert bucket_events("nlb", key, lines(line)) == [aws(key, {
        "type": "tls", "version": "2.0", "time": "2026-01-01T00:00:03", "elb": "net/n/1", "listener": "g3d4",
        "client_port": "3000", "destination_port": "443", "connection_time": "5", "tls_handshake_time": "2",
        "received_bytes": "98", "sent_bytes": "246", "incoming_tls_alert": "-", "chosen_cert_arn": "arn:c",
        "chosen_cert_serial": "-", "tls_cipher": "ECDHE", "tls_protocol_version": "tlsv12", "tls_named_group": "-",
        "domain_name": "n.elb.amazonaws.com", "alpn_fe_protocol": "h2",
        # Wazuh's list lacks alpn_be_protocol: it puts "http/1.1" in alpn_client_preference_list and the last two
        # values under "null"; here each is under its own name
        "alpn_be_protocol": "http/1.1", "alpn_client_preference_list": "h2",
        "tls_connection_creation_time": "2026-01-01T00:00:02",
        "source": "nlb", "client_ip": "192.0.2.20", "destination_ip": "10.0.2.7", "aws_account_id": ACCOUNT})]


# --- S3 server access, Cisco Umbrella

def test_server_access():
    key = "logs/2026-01-01-00-00-00-ABCDEF"
    owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
    line = (f'{owner} b [06/Feb/2026:00:00:38 +0000] 192.0.2.3 arn:aws:iam::{ACCOUNT}:user/x EDGE1 REST.PUT.OBJECT '
            f'docs/a%20b.txt "PUT /b/docs/a%20b.txt HTTP/1.1" 200 - - 42 70 10 "https://ref.example.com/" '
            f'"aws-cli/2.0 Python/3.11" - Ab3=/xyz SigV4 TLS_AES_128_GCM_SHA256 AuthHeader b.s3.amazonaws.com TLSv1.3 '
            f'arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/ap Yes')
    assert bucket_events("server_access", key, lines(line), account=None) == [aws(key, {
        "bucket_owner": owner, "bucket": "b", "time": "06/Feb/2026:00:00:38 +0000", "remote_ip": "192.0.2.3",
        "requester": f"arn:aws:iam::{ACCOUNT}:user/x", "request_id": "EDGE1", "operation": "REST.PUT.OBJECT",
        "key": "docs/a%20b.txt", "request_uri": "PUT /b/docs/a%20b.txt HTTP/1.1", "http_status": "200",
        "error_code": "-", "bytes_sent": "-", "object_sent": "42", "total_time": "70", "turn_around_time": "10",
        "referer": "https://ref.example.com/", "user_agent": "aws-cli/2.0 Python/3.11", "version_id": "-",
        "host_id": "Ab3=/xyz", "signature_version": "SigV4", "cipher_suite": "TLS_AES_128_GCM_SHA256",
        "authentication_type": "AuthHeader", "host_header": "b.s3.amazonaws.com", "tls_version": "TLSv1.3",
        "access_point_arn": f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/ap", "acl_required": "Yes",  # added
        "source": "s3_server_access"})]


def test_cisco_umbrella():
    key = "umbrella/dnslogs/2026-01-01/2026-01-01-00-00-a.csv.gz"
    row = ('"2026-01-01 00:00:00","laptop","laptop,Net","10.0.0.1","24.0.0.1","Allowed","1 (A)","NOERROR",'
           '"host.example.","Chat,Social","Roaming Computers","Roaming Computers,Networks",""')
    assert bucket_events("cisco_umbrella", key, lines(row), account=None) == [aws(key, {
        "timestamp": "2026-01-01 00:00:00", "most_granular_identity": "laptop", "identities": "laptop,Net",
        "internal_ip": "10.0.0.1", "external_ip": "24.0.0.1", "action": "Allowed", "query_type": "1 (A)",
        "response_code": "NOERROR", "domain": "host.example.", "categories": "Chat,Social",
        "most_granular_identity_type": "Roaming Computers", "identity_types": "Roaming Computers,Networks",
        "blocked_categories": "", "source": "cisco_umbrella"})]


# --- custom

def test_custom():
    key = "logs/2026/01/01/stream-1-2026-01-01-00-00-00-a.gz"
    finding = _finding("c1", 2)
    body = "".join(json.dumps(e, separators=(",", ":")) for e in (  # Firehose: back to back
        {"version": "0", "detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": finding},
        {"detail-type": "Inspector2 Finding", "source": "aws.inspector2", "detail": {"id": "i1", "tags": "plain"}},
        {"id": "app-1", "source": "billing", "list": ["one"]})).encode()
    got = bucket_events("custom", key, body, account=None)
    assert got == [
        # not split in two (Wazuh's custom type splits no port probes); unusual always an object
        aws(key, {"schemaVersion": "2.0", "id": "c1", "tags": {"value": "x"},
                  "resource": {"instanceDetails": {"networkInterfaces": {"securityGroups": [{"groupId": "sg-1"}],
                                                                         "publicIp": None}}},
                  "service": {"serviceName": "guardduty", "count": 2, "additionalInfo": {"unusual": {"value": 7}},
                              "action": {"portProbeAction": {"blocked": False, "portProbeDetails": [
                                  {"localPortDetails": {"port": 22}, "remoteIpDetails": {"city": {"cityName": None}}},
                                  {"localPortDetails": {"port": 23}, "remoteIpDetails": {"city": {"cityName": None}}}]}}},
                  "source": "guardduty"}),
        aws(key, {"id": "i1", "tags": {"value": "plain"}, "source": "inspector2"}),
        # a record that is no EventBridge event: Wazuh's custom type drops it; sent here
        aws(key, {"id": "app-1", "list": "one", "original_source": "billing", "source": "custom"}),
    ]


def test_macie_classic_alerts_in_a_custom_bucket():
    (event,) = shape.eventbridge_or_custom({"detail-type": "Macie Alert", "source": "aws.macie", "detail": {
        "trigger": {"rule": "x"}, "summary": {"IP": {"1.2.3.4": 5}, "Events": {"GetObject": {"count": 3,
                                                                                             "ISP": {"Amazon": 3}}}}}},
        "custom")
    assert event == {"summary": {"IP": ["1.2.3.4"], "Events": {"GetObject": {"count": ["3"], "ISP": ["Amazon"]}}},
                     "source": "macie"}  # Wazuh's count comes out [""] (it keeps no level of it): kept here


def test_alias_when_set_and_account_only_where_the_key_names_one():
    [event] = bucket_events("cloudtrail", CT_KEY, json.dumps({"Records": [{"eventID": "x"}]}).encode(), alias="prod")
    assert event["aws"]["log_info"] == {"aws_account_alias": "prod", "log_file": CT_KEY, "s3bucket": BUCKET}
    [event] = bucket_events("custom", "logs/x.json", b'{"a": 1}', account=None)
    assert event["aws"]["log_info"]["aws_account_alias"] == "" and "aws_account_id" not in event["aws"]


# --- the buckets subscriber

def subscriber_events(key: str, body: bytes) -> list:
    ctx = Context(sink=None, options=None, stop=threading.Event())
    decode = object_decoder(BucketsSubscriber(sqs_name="q"), ctx)
    spool = io.BytesIO(gzip.compress(body) if key.endswith(".gz") else body)
    return [json.loads(e) for batch in decode(spool, ObjectRef(BUCKET, key)) for e in batch]


def sub(key: str, fields: dict) -> dict:
    return {"integration": "aws", "aws": {"log_info": {"log_file": key, "s3bucket": BUCKET}, **fields}}


def test_buckets_subscriber():
    rec = {"uid": "u1", "user": {"name": "a", "gone": None}, "list": [{"x": None}], "single": ["one"],
           "source": "my-app", "sourceIPAddress": "10.0.0.1", "tags": ["a"]}
    # nulls dropped through objects only; no list collapsed; `source` is 'custom', whatever the record says
    expected = {"uid": "u1", "user": {"name": "a"}, "list": [{"x": None}], "single": ["one"], "source": "custom",
                "sourceIPAddress": "10.0.0.1", "tags": ["a"]}
    assert subscriber_events("logs/one.json", json.dumps(rec, indent=2).encode()) == [sub("logs/one.json", expected)]
    # a record with a `detail` object stands for it
    eb = {"detail-type": "X", "source": "aws.x", "detail": {"uid": "u2", "n": None}}
    assert subscriber_events("logs/eb.json", json.dumps(eb).encode()) == [sub("logs/eb.json", {"uid": "u2",
                                                                                                "source": "custom"})]
    # .jsonl.gz: every line whole, its own `source` kept (Wazuh adds none; 'custom' is added when it has none)
    key = "logs/lines.jsonl.gz"
    assert subscriber_events(key, lines(rec, eb)) == [
        sub(key, {**expected, "source": "my-app"}),
        sub(key, {"detail-type": "X", "source": "aws.x", "detail": {"uid": "u2"}})]
    assert subscriber_events(key, lines({"n": 1})) == [sub(key, {"n": 1, "source": "custom"})]
    # CSV with a header, text lines
    assert subscriber_events("logs/t.csv", b"name,action,note\nalice,login,\n") == [
        sub("logs/t.csv", {"name": "alice", "action": "login", "note": "", "source": "custom"})]
    assert subscriber_events("logs/s.log", b"Jan  1 00:00:00 host sshd[1]: Accepted\n") == [
        sub("logs/s.log", {"full_log": "Jan  1 00:00:00 host sshd[1]: Accepted", "source": "custom"})]
