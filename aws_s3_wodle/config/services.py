"""`<service type="cloudwatchlogs">` and `<service type="inspector">`: AWS services read through their own APIs
(CloudWatch Logs' GetLogEvents, Inspector v2's ListFindings), not through a bucket.

The elements are Wazuh's (src/config/wmodules-aws.c): `aws_log_groups`, `remove_log_streams`,
`only_logs_after`, `regions`, `discard_regex field=`, `aws_account_id`, `aws_account_alias`, and the
credential and endpoint options every block shares; `service_endpoint` here is the service's own endpoint.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import ClassVar, Optional

from aws_s3_wodle.config.access import AwsAccess
from aws_s3_wodle.config.buckets import parse_account_ids, parse_log_date, parse_regions
from aws_s3_wodle.config.discard import DiscardRule, parse_discard_regex
from aws_s3_wodle.config.options import Location, option, parse_endpoint, parse_yes_no

SERVICE_TYPES = ("cloudwatchlogs", "inspector")

# CloudWatch Logs' own rule for a log group name: 1 to 512 of these characters.
_LOG_GROUP = re.compile(r"[\w./#-]{1,512}")


def parse_log_groups(text: str) -> tuple[str, ...]:
    """Comma-separated log group names, as Wazuh takes them (empty items ignored, duplicates once)."""
    groups = tuple(dict.fromkeys(g.strip() for g in text.split(",") if g.strip()))
    bad = [g for g in groups if not _LOG_GROUP.fullmatch(g)]
    if not groups or bad:
        raise ValueError("use log group names separated by commas, e.g. '/aws/lambda/app,vpc-flow'; a name has "
                         "1 to 512 letters, digits or '_', '-', '/', '.', '#'"
                         + (f" (not: {', '.join(b[:80] for b in bad)})" if bad else ""))
    return groups


@dataclass
class ServiceBlock(AwsAccess):
    """What both service types share: the service's endpoint, where to start, regions, discard rule, account."""

    TAG: ClassVar[str] = "service"
    TYPE: ClassVar[str] = ""

    service_endpoint: Optional[str] = option(parse_endpoint, help="Endpoint of the service itself (CloudWatch "
                                                                  "Logs or Inspector), e.g. a VPC endpoint.")
    only_logs_after: Optional[dt.date] = option(
        parse_log_date, help="Read events of this day (YYYY-MMM-DD, UTC) and later. Default: the day of the first "
                             "run; later runs go on from where the last one ended.")
    regions: Optional[tuple] = option(parse_regions, help="Comma-separated regions to read; the session's region "
                                                          "(AWS_DEFAULT_REGION, the profile's, else us-east-1) when "
                                                          "absent.")
    aws_account_id: Optional[tuple] = option(parse_account_ids, help="Account id(s) the block reads, for the log "
                                                                     "lines (the account read is the credentials' own).")
    aws_account_alias: Optional[str] = option(help="A name for the account, shown in the run's log lines.")
    discard_regex: Optional[DiscardRule] = option(
        parse_discard_regex, attributes=("field",),
        help="Events whose `field` (a dotted path) matches this regular expression from its start are dropped and "
             "counted; a CloudWatch Logs message that is not JSON is matched whole, whatever the field.")
    location: Optional[Location] = None

    @property
    def label(self) -> str:
        return f"{self.TYPE} service{self.account_note}"

    @property
    def account_note(self) -> str:
        """` (account 123456789012 'prod')` when the block names its account or alias, as Wazuh's log titles do."""
        parts = ([f"account {','.join(self.aws_account_id)}"] if self.aws_account_id else []) + \
                ([f"'{self.aws_account_alias}'"] if self.aws_account_alias else [])
        return f" ({' '.join(parts)})" if parts else ""


@dataclass
class CloudWatchLogsService(ServiceBlock):
    """`<service type="cloudwatchlogs">`: every event of every stream of the given log groups, once."""

    TYPE: ClassVar[str] = "cloudwatchlogs"

    aws_log_groups: tuple = option(parse_log_groups, required=True, default=(),
                                   help="Comma-separated names of the log groups to read (every stream of each).")
    remove_log_streams: bool = option(parse_yes_no, default=False,
                                      help="'yes' deletes each log stream once all its events were delivered.")

    @property
    def label(self) -> str:
        return f"cloudwatchlogs service '{','.join(self.aws_log_groups)}'{self.account_note}"


@dataclass
class InspectorService(ServiceBlock):
    """`<service type="inspector">`: Amazon Inspector v2 findings, each time one is created or updated."""

    TYPE: ClassVar[str] = "inspector"

    @property
    def label(self) -> str:
        return f"inspector service{self.account_note}"
