"""`<subscriber type="buckets">` and `<subscriber type="security_hub">`: S3 objects announced on an SQS
queue by the bucket's own event notifications, read whatever their format.

Both take the queue by name, URL or ARN (a URL or ARN also gives the queue's region and account), the
credential options every block shares, and Wazuh's `<discard_regex field="...">`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Optional
from urllib.parse import urlsplit

from aws_s3_wodle.config.access import AwsAccess, SqsDelivery
from aws_s3_wodle.config.options import AWS_REGION, SQS_NAME, Location, option, parse_sqs_name
from aws_s3_wodle.config.discard import DiscardRule, parse_discard_regex

_REGION = re.compile(AWS_REGION)
_ARN = re.compile(rf"arn:aws[a-z-]*:sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):(?P<name>{SQS_NAME})")
_URL_PATH = re.compile(rf"/(?P<account>\d{{12}})/(?P<name>{SQS_NAME})/?")


@dataclass(frozen=True)
class QueueRef:
    """Where a queue is: its name, and the region and owner account when a URL or ARN said so."""

    name: str
    region: Optional[str] = None
    account: Optional[str] = None


def queue_ref(text: str) -> QueueRef:
    """A queue name, URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`) or ARN
    (`arn:aws:sqs:<region>:<account>:<name>`); ValueError saying what is accepted otherwise."""
    if re.fullmatch(SQS_NAME, text):
        return QueueRef(text)
    arn = _ARN.fullmatch(text)
    if arn:
        if not _REGION.fullmatch(arn["region"]):
            raise ValueError(f"'{arn['region']}' in the queue ARN is not an AWS region name")
        return QueueRef(arn["name"], arn["region"], arn["account"])
    if "://" in text:
        parts = urlsplit(text)
        path = _URL_PATH.fullmatch(parts.path)
        if parts.scheme in ("http", "https") and parts.hostname and path:
            # sqs.<region>.amazonaws.com, <region>.queue.amazonaws.com, vpce-....sqs.<region>.vpce.amazonaws.com
            region = next((label for label in parts.hostname.split(".") if _REGION.fullmatch(label)), None)
            return QueueRef(path["name"], region, path["account"])
    raise ValueError("use the queue's name (1 to 80 letters, digits, '-' or '_'), its URL "
                     "('https://sqs.us-east-1.amazonaws.com/123456789012/my-queue') or its ARN "
                     "('arn:aws:sqs:us-east-1:123456789012:my-queue')")


def parse_queue(text: str) -> str:
    queue_ref(text)
    return text


@dataclass
class SecurityLakeSubscriber(SqsDelivery, AwsAccess):
    """`<subscriber type="security_lake">`: Security Lake's SQS notifications of new OCSF Parquet objects."""

    TAG: ClassVar[str] = "subscriber"
    TYPE: ClassVar[str] = "security_lake"

    sqs_name: str = option(parse_sqs_name, required=True, default="",
                           help="Name of the SQS queue Security Lake created for the subscriber.")
    location: Optional[Location] = None

    @property
    def label(self) -> str:
        return f"security_lake subscriber '{self.sqs_name}'"


@dataclass
class BucketsSubscriber(SqsDelivery, AwsAccess):
    """`<subscriber type="buckets">`: any bucket whose object-created notifications go to an SQS queue
    (directly or through SNS); objects in any format the formats package reads."""

    TAG: ClassVar[str] = "subscriber"
    TYPE: ClassVar[str] = "buckets"
    SOURCE: ClassVar[str] = "custom"  # `aws.source` of the events, as in Wazuh's rules

    sqs_name: str = option(parse_queue, required=True, default="",
                           help="The SQS queue the bucket's notifications go to: its name, URL or ARN (a URL "
                                "or ARN also gives the region and the owner account).")
    discard_regex: Optional[DiscardRule] = option(
        parse_discard_regex, attributes=("field",),
        help="Events whose `field` (a dotted path into the record, e.g. `detail.severity`; lists match if any "
             "item does) matches this regular expression from its start are dropped and counted. Lines of "
             "plain-text objects are matched whole, whatever the field.")
    location: Optional[Location] = None

    @property
    def queue(self) -> QueueRef:
        return queue_ref(self.sqs_name)

    @property
    def label(self) -> str:
        return f"{self.TYPE} subscriber '{self.queue.name}'"


@dataclass
class SecurityHubSubscriber(BucketsSubscriber):
    """`<subscriber type="security_hub">`: Security Hub findings that EventBridge (through Firehose)
    writes to a bucket whose notifications go to an SQS queue; one event per finding."""

    TYPE: ClassVar[str] = "security_hub"
    SOURCE: ClassVar[str] = "securityhub"

    discard_regex: Optional[DiscardRule] = option(
        parse_discard_regex, attributes=("field",),
        help="Findings whose `field` (a dotted path into the event, e.g. `finding.Severity.Label` or "
             "`finding.RecordState`) matches this regular expression from its start are dropped and counted.")
