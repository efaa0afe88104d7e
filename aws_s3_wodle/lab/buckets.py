"""A log bucket whose object-created notifications reach an SQS queue, built in the local AWS (moto).

The bucket's own notification configuration does the announcing, as in AWS (moto delivers it): straight
to the queue (`delivery="sqs"`), through an SNS topic the queue subscribes to (`"sns"`, so bodies
arrive in the SNS envelope), or through EventBridge with a rule targeting the queue (`"eventbridge"`).
Only keys under `prefix` are announced; `notify()` sends one hand-made S3 notification naming several
objects, the one shape S3 itself never sends but the wodle must read.

Sample objects of every format are generated here (nothing is read from disk), each with the records
the wodle should deliver for it, so a test can check every event arrived exactly once.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import secrets
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import quote_plus

from aws_s3_wodle.lab.security_lake import ACCOUNT, lab_client, wodle_conf

DELIVERIES = ("sqs", "sns", "eventbridge")


@dataclass
class LogObject:
    key: str
    records: list  # what the wodle should deliver for it: the records inside `aws`, without source/log_info
    kind: str      # the sample's format and compression, e.g. "json-lines.gz"

    @property
    def rows(self) -> int:
        return len(self.records)


@dataclass
class BucketsLab:
    endpoint: str
    region: str = "us-east-1"
    delivery: str = "sqs"
    prefix: str = "logs/"
    suffix: str = field(default_factory=lambda: secrets.token_hex(5))
    bucket: str = ""
    queue_name: str = ""
    queue_url: str = ""
    queue_arn: str = ""
    topic_arn: str = ""
    objects: list[LogObject] = field(default_factory=list)
    subscriber: str = "buckets"  # the block ossec_conf() writes: "buckets" or "security_hub"

    def client(self, service: str) -> Any:
        return lab_client(service, self.endpoint, self.region)

    def create(self) -> "BucketsLab":
        """Bucket, queue and the notification path; drains the `s3:TestEvent` S3 sends on configuration."""
        if self.delivery not in DELIVERIES:
            raise ValueError(f"delivery must be one of {', '.join(DELIVERIES)}")
        self.bucket = self.bucket or f"lab-logs-{self.suffix}"
        self.queue_name = self.queue_name or f"lab-logs-{self.suffix}"
        s3, sqs = self.client("s3"), self.client("sqs")
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=self.bucket)
        else:
            s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        self.queue_url = sqs.create_queue(QueueName=self.queue_name, Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
        self.queue_arn = f"arn:aws:sqs:{self.region}:{ACCOUNT}:{self.queue_name}"
        sender = {"sqs": "s3.amazonaws.com", "sns": "sns.amazonaws.com", "eventbridge": "events.amazonaws.com"}
        sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": sender[self.delivery]}, "Action": "sqs:SendMessage",
                "Resource": self.queue_arn}]})})
        only_prefix = {"Key": {"FilterRules": [{"Name": "prefix", "Value": self.prefix}]}}
        if self.delivery == "sqs":
            config = {"QueueConfigurations": [{"QueueArn": self.queue_arn, "Events": ["s3:ObjectCreated:*"],
                                               "Filter": only_prefix}]}
        elif self.delivery == "sns":
            sns = self.client("sns")
            self.topic_arn = sns.create_topic(Name=f"lab-logs-{self.suffix}")["TopicArn"]
            sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self.queue_arn)
            config = {"TopicConfigurations": [{"TopicArn": self.topic_arn, "Events": ["s3:ObjectCreated:*"],
                                               "Filter": only_prefix}]}
        else:
            events = self.client("events")
            rule = f"lab-logs-{self.suffix}"
            events.put_rule(Name=rule, EventPattern=json.dumps({
                "source": ["aws.s3"], "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [self.bucket]}, "object": {"key": [{"prefix": self.prefix}]}}}))
            events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": self.queue_arn}])
            config = {"EventBridgeConfiguration": {}}
        s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration=config)
        return self

    # --- objects

    def put(self, key: str, body: bytes, records: list, kind: str = "") -> LogObject:
        """Upload; S3 announces it when the key is under `prefix`."""
        self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        obj = LogObject(key, records, kind)
        self.objects.append(obj)
        return obj

    def notify(self, keys: list[str]) -> None:
        """One S3 event notification naming every key (keys URL-encoded as S3 does), by the lab's path."""
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        body = {"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": self.region, "eventTime": now,
            "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "lab",
                   "bucket": {"name": self.bucket, "arn": f"arn:aws:s3:::{self.bucket}"},
                   "object": {"key": quote_plus(key), "size": 0, "eTag": uuid.uuid4().hex}}} for key in keys]}
        if self.delivery == "sns":
            self.client("sns").publish(TopicArn=self.topic_arn, Message=json.dumps(body))
        else:
            self.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def add_samples(self, compressions: tuple = ("plain", "gzip"), records: int = 20, *, quiet: bool = False,
                    seed: int = 0) -> list[LogObject]:
        """One object of every format in each compression; `quiet` puts them outside `prefix` (no notification)."""
        out = []
        for compression in compressions:
            for fmt in SAMPLE_FORMATS:
                name = f"{fmt}-{compression}-{seed}"
                body, recs = SAMPLE_FORMATS[fmt](name, records)
                ext = {"plain": "", "gzip": ".gz", "zip": ".zip"}[compression]
                folder = "quiet/" if quiet else self.prefix
                key = f"{folder}{fmt}/{dt.date.today():%Y/%m/%d}/{name} {uuid.uuid4().hex[:6]}+x{ext}"
                out.append(self.put(key, compress(body, compression, name), recs, f"{fmt}.{compression}"))
        return out

    def add_security_hub(self, events: int = 5, findings_per_event: int = 3, *, layout: str = "concatenated",
                         compression: str = "gzip", seed: int = 0) -> LogObject:
        """A Firehose-written object of Security Hub EventBridge events, as the security_hub subscriber reads it."""
        body, recs = security_hub_object(events, findings_per_event, layout=layout, seed=seed, region=self.region)
        key = (f"{self.prefix}securityhub/{dt.datetime.now(dt.timezone.utc):%Y/%m/%d/%H}/"
               f"securityhub-firehose-{seed}-{uuid.uuid4().hex[:8]}{'.gz' if compression == 'gzip' else ''}")
        return self.put(key, compress(body, compression, "findings"), recs, f"securityhub-{layout}.{compression}")

    # --- what the wodle sees

    def queue_depth(self) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def ossec_conf(self, subscriber: str = "", *, sqs_name: Optional[str] = None,
                   discard: Optional[tuple[str, str]] = None, interval: str = "5m") -> str:
        extra = ""
        if discard:
            extra = f'\n      <discard_regex field="{discard[0]}">{discard[1]}</discard_regex>'
        return wodle_conf(f"""    <subscriber type="{subscriber or self.subscriber}">
      <sqs_name>{sqs_name or self.queue_name}</sqs_name>{extra}
    </subscriber>""", interval)


def compress(body: bytes, compression: str, name: str = "log") -> bytes:
    if compression == "gzip":
        return gzip.compress(body, compresslevel=6)
    if compression == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name, body)
        return buf.getvalue()
    return body


# --- sample formats: each returns (object bytes, the records the wodle should make of them)

_USERS = ("alice", "bob", "carol", "dave")
_ACTIONS = ("login", "logout", "read", "write", "delete")


def _app_record(name: str, i: int) -> dict:
    return {"uid": f"{name}-{i}", "time": f"2024-05-01T12:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "user": {"name": _USERS[i % 4], "groups": ["staff"] + (["admin"] if i % 5 == 0 else [])},
            "action": _ACTIONS[i % 5], "bytes": i * 37, "ok": i % 7 != 0, "note": None if i % 3 else "caf\u00e9 \"q\""}


def _expected(record: dict) -> dict:
    return {k: v for k, v in record.items() if v is not None}  # nulls are dropped from events


def _records(name: str, n: int) -> list:
    return [_app_record(name, i) for i in range(n)]


def _json_object(name: str, n: int) -> tuple[bytes, list]:
    rec = _app_record(name, 0)
    return json.dumps(rec, indent=2).encode(), [_expected(rec)]


def _json_array(name: str, n: int) -> tuple[bytes, list]:
    recs = _records(name, n)
    return json.dumps(recs).encode(), [_expected(r) for r in recs]


def _json_lines(name: str, n: int) -> tuple[bytes, list]:
    recs = _records(name, n)
    return "".join(json.dumps(r) + "\n" for r in recs).encode(), [_expected(r) for r in recs]


def _concatenated(name: str, n: int) -> tuple[bytes, list]:
    recs = _records(name, n)  # Firehose writes records back to back, no separator
    return "".join(json.dumps(r, separators=(",", ":")) for r in recs).encode(), [_expected(r) for r in recs]


def _cloudtrail(name: str, n: int) -> tuple[bytes, list]:
    recs = [{"eventVersion": "1.08", "eventID": f"{name}-{i}", "eventTime": f"2024-05-01T12:00:{i % 60:02d}Z",
             "eventSource": "s3.amazonaws.com", "eventName": ("GetObject", "PutObject")[i % 2],
             "awsRegion": "us-east-1", "sourceIPAddress": f"203.0.113.{i % 250}",
             "userIdentity": {"type": "IAMUser", "userName": _USERS[i % 4], "accountId": ACCOUNT},
             "requestParameters": {"bucketName": "data", "key": f"k{i}"}, "responseElements": None,
             "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::data/k{i}"}]} for i in range(n)]
    return json.dumps({"Records": recs}).encode(), [_expected(r) for r in recs]


def _eventbridge(name: str, n: int) -> tuple[bytes, list]:
    """EventBridge events (e.g. GuardDuty) written by Firehose: the rules read their `detail`."""
    events = [{"version": "0", "id": f"{name}-{i}", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
               "account": ACCOUNT, "region": "us-east-1", "time": "2024-05-01T12:00:00Z", "resources": [],
               "detail": {"id": f"{name}-{i}", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": i % 9}}
              for i in range(n)]
    return "".join(json.dumps(e) + "\n" for e in events).encode(), [e["detail"] for e in events]


def _csv(name: str, n: int) -> tuple[bytes, list]:
    rows = [{"uid": f"{name}-{i}", "time": f"2024-05-01T12:00:{i % 60:02d}Z", "user": _USERS[i % 4],
             "action": _ACTIONS[i % 5], "message": f"did {_ACTIONS[i % 5]}, then \"waited\""} for i in range(n)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(), rows


def _text(name: str, n: int) -> tuple[bytes, list]:
    lines = [f"May  1 12:00:{i % 60:02d} host sshd[{100 + i}]: Accepted publickey for {_USERS[i % 4]} "
             f"from 198.51.100.{i % 250} port {40000 + i} ssh2 uid={name}-{i}" for i in range(n)]
    return "".join(line + "\n" for line in lines).encode(), [{"full_log": line} for line in lines]


SAMPLE_FORMATS: dict[str, Callable[[str, int], tuple[bytes, list]]] = {
    "json-object": _json_object, "json-array": _json_array, "json-lines": _json_lines,
    "concatenated": _concatenated, "cloudtrail": _cloudtrail, "eventbridge": _eventbridge, "csv": _csv,
    "text": _text,
}

_SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def _finding(seed: int, e: int, f: int, region: str) -> dict:
    n = e * 100 + f
    label = _SEVERITIES[n % 5]
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"arn:aws:securityhub:{region}:{ACCOUNT}:subscription/aws-foundational/v/1.0.0/S3.1/finding/{seed}-{n}",
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/securityhub",
        "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/S3.1", "AwsAccountId": ACCOUNT,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2024-05-01T12:00:00.000Z", "UpdatedAt": "2024-05-01T12:30:00.000Z",
        "Severity": {"Label": label, "Normalized": (0, 1, 40, 70, 90)[n % 5], "Original": label},
        "Title": "S3.1 S3 general purpose buckets should have block public access settings enabled",
        "Resources": [{"Type": "AwsAccount", "Id": f"AWS::::Account:{ACCOUNT}", "Partition": "aws", "Region": region}],
        "Compliance": {"Status": "FAILED" if n % 3 else "PASSED"},
        "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE" if n % 4 else "ARCHIVED",
        "ProductFields": {"aws/securityhub/FindingId": f"{seed}-{n}"},
    }


def security_hub_object(events: int, findings_per_event: int, *, layout: str = "concatenated", seed: int = 0,
                        region: str = "us-east-1") -> tuple[bytes, list]:
    """EventBridge "Security Hub Findings - Imported" events, back to back (Firehose) or as JSON lines;
    returns the bytes and the records the wodle should make: one per finding."""
    docs, expected = [], []
    for e in range(events):
        findings = [_finding(seed, e, f, region) for f in range(findings_per_event)]
        docs.append({"version": "0", "id": str(uuid.UUID(int=seed * 10_000 + e)), "detail-type":
                     "Security Hub Findings - Imported", "source": "aws.securityhub", "account": ACCOUNT,
                     "time": "2024-05-01T12:30:00Z", "region": region, "resources": [f["Id"] for f in findings],
                     "detail": {"findings": findings}})
        expected += [{"detail_type": "Security Hub Findings - Imported", "finding": f} for f in findings]
    sep = "" if layout == "concatenated" else "\n"
    return (sep.join(json.dumps(d, separators=(",", ":")) for d in docs) + sep).encode(), expected
