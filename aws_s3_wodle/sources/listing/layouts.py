"""What each bucket type is, as data: where AWS puts its objects, how to read them, what to call them.

The listing (listing.py) and the run (run.py) are written once and read these tables; adding a type
is adding a row. Layouts, as AWS documents them (`<path>` is the block's <path>, `<suffix>` its
<path_suffix>, `[<org-id>/]` the organization folder of an organization trail):

  <path>AWSLogs/<suffix>[<org-id>/]<account>/<service>/<region>/[<acl>/]<day>/<file>
  <path>AWSLogs/<suffix>aws-account-id=<account>/aws-service=vpcflowlogs/aws-region=<region>/<hive-day>/[hour=HH/]<file>
                             (vpcflow with Hive-compatible prefixes: <hive-day> = year=YYYY/month=MM/day=DD)
  <path><day><file>          (server_access: <day> = YYYY-MM-DD, part of the file name)
  <path><account>/<region>/<source-bucket>/<day>/<file>
                             (server_access, date-based partitioning: <day> = YYYY/MM/DD)
  <path><day>/<file>         (cisco_umbrella: <day> = YYYY-MM-DD)
  <path>...                  (custom: no date in the key; the object's LastModified day is used)
  <head><day-part>...        (custom, guardduty, waf with date variables in <path>: config/datepath.py)

Per-hour folders (Firehose's YYYY/MM/DD/HH/, VPC flow logs' per-hour partitions) sit under the day
folder: listing the day lists them, so ListObjectsV2 calls grow with the days read, not with hours.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, Optional

from aws_s3_wodle.decode import log_lines as parsers
from aws_s3_wodle.decode import shape

Parser = Callable[[BinaryIO, str], Iterator[dict]]
DayPrefix = Callable[[dt.date], str]


def day_slashes(day: dt.date) -> str:
    return f"{day:%Y/%m/%d}/"


def day_slashes_unpadded(day: dt.date) -> str:  # AWS Config writes 2026/1/5/
    return f"{day.year}/{day.month}/{day.day}/"


def day_hive(day: dt.date) -> str:  # VPC flow logs with Hive-compatible prefixes
    return f"year={day:%Y}/month={day:%m}/day={day:%d}/"


def day_dashes_folder(day: dt.date) -> str:
    return f"{day:%Y-%m-%d}/"


def day_dashes_name(day: dt.date) -> str:  # S3 server access logs: the file name starts with the date
    return f"{day:%Y-%m-%d}"


@dataclass(frozen=True)
class Layout:
    """How keys are laid out. service=None: no AWSLogs tree, the day (if any) follows <path> directly."""

    service: Optional[str]
    day: Optional[DayPrefix]
    acl_folder: bool = False                     # WAF: one web ACL folder between region and day
    file_filter: Optional[re.Pattern] = None     # on the file name: ALB, NLB and CLB share one folder
    key_filter: Optional[re.Pattern] = None      # on the whole key, from its start: a <path> with date variables
    hive: bool = False                           # folders named aws-account-id=, aws-service=, aws-region=

    @property
    def aws_logs(self) -> bool:
        return self.service is not None

    def accepts(self, key: str) -> bool:
        return (not key.endswith("/") and
                (self.file_filter is None or self.file_filter.search(key.rsplit("/", 1)[-1]) is not None) and
                (self.key_filter is None or self.key_filter.match(key) is not None))


@dataclass(frozen=True)
class BucketType:
    name: str
    layout: Layout
    parse: Parser
    source: str                              # aws.source, unless the shaper takes it from the record
    shape: shape.Shaper = shape.generic
    fallback: Optional[Layout] = None        # when <path>AWSLogs/ is empty: the Firehose layout
    hive: Optional[Layout] = None            # read where AWSLogs/ holds aws-account-id=<account> folders
    partitioned: Optional[Layout] = None     # read under <path><account>/<region>/<source-bucket>/


def _elb(kind: str, pattern: str, parse: Parser) -> BucketType:
    return BucketType(kind, Layout("elasticloadbalancing", day_slashes, file_filter=re.compile(pattern)), parse, kind,
                      shape.custom_type)


_FIREHOSE = Layout(None, day_slashes)  # Kinesis Data Firehose: <path>YYYY/MM/DD/HH/<stream>-...

TYPES: dict[str, BucketType] = {t.name: t for t in (
    BucketType("cloudtrail", Layout("CloudTrail", day_slashes), parsers.parse_json, "cloudtrail", shape.cloudtrail),
    BucketType("vpcflow", Layout("vpcflowlogs", day_slashes), parsers.parse_vpcflow, "vpc",
               hive=Layout("vpcflowlogs", day_hive, hive=True)),
    BucketType("config", Layout("Config", day_slashes_unpadded), parsers.parse_config, "config", shape.config),
    BucketType("guardduty", Layout("GuardDuty", day_slashes), parsers.parse_json, "guardduty",
               shape.guardduty, fallback=_FIREHOSE),
    BucketType("waf", Layout("WAFLogs", day_slashes, acl_folder=True), parsers.parse_json, "waf", shape.waf,
               fallback=_FIREHOSE),
    _elb("alb", r"_app\.", parsers.parse_alb),
    _elb("nlb", r"_net\.", parsers.parse_nlb),
    _elb("clb", r"^(?!.*_(app|net)\.)", parsers.parse_clb),
    BucketType("server_access", Layout(None, day_dashes_name), parsers.parse_server_access, "s3_server_access",
               shape.custom_type, partitioned=Layout(None, day_slashes)),
    BucketType("cisco_umbrella", Layout(None, day_dashes_folder), parsers.parse_cisco_umbrella, "cisco_umbrella",
               shape.custom_type),
    BucketType("custom", Layout(None, None), parsers.parse_any, "custom", shape.eventbridge_or_custom),
)}
