"""`<bucket type="...">`: one dataclass for every bucket type; what differs per type is data in
`sources/buckets/types.py` (key layout, record parser, event source), not a subclass.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import ClassVar, Optional

from aws_s3_wodle.config.access import AwsAccess
from aws_s3_wodle.config.datepath import DatePath, has_variables
from aws_s3_wodle.config.options import AWS_REGION, Location, matching, option, parse_yes_no
from aws_s3_wodle.config.discard import DiscardRule, parse_discard_regex

# Wazuh's bucket types, all read by BucketConfig (sources/buckets/types.py holds what each one means).
BUCKET_TYPES = ("cloudtrail", "vpcflow", "config", "guardduty", "waf", "alb", "clb", "nlb", "server_access",
                "custom", "cisco_umbrella")

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def parse_bucket_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", text) or ".." in text:
        raise ValueError("an S3 bucket name has 3 to 63 lowercase letters, digits, '.' or '-', e.g. 'my-trail-logs'")
    return text


parse_organization_id = matching(r"o-[a-z0-9]{10,32}", "use an AWS Organizations id like 'o-a1b2c3d4e5'")


def parse_regions(text: str) -> tuple[str, ...]:
    regions = tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))
    bad = [r for r in regions if not re.fullmatch(rf"{AWS_REGION}|cloudfront", r)]
    if not regions or bad:
        raise ValueError(f"use AWS region names separated by commas, e.g. 'us-east-1,eu-west-1'"
                         f"{' (not: ' + ', '.join(bad) + ')' if bad else ''}")
    return regions


def parse_key_prefix(text: str) -> str:
    """A key prefix as Wazuh takes it: 'logs', 'logs/' and '/logs/' all mean the folder 'logs/'."""
    value = text.replace("\\", "/").strip("/")
    if not value or re.search(r"[{}^%`\[\]'\"<>~#|\s]", value):
        raise ValueError("use an S3 key prefix without spaces, quotes or any of {}^%`[]<>~#|, e.g. 'trails/main'")
    return value + "/"


def parse_path(text: str) -> str:
    """<path>: a key prefix, or one with date variables (config/datepath.py), kept in its normal form."""
    if has_variables(text):
        DatePath.parse(text)  # its errors say what to write
        return text.replace("\\", "/")
    if "*" in text.replace("\\", "/").strip("/").split("/"):
        raise ValueError("'*' is not a folder name: every account folder is read when <aws_account_id> is absent "
                         "or '*'; put the folder before AWSLogs/ (e.g. a Control Tower 'o-a1b2c3d4e5') in <path>")
    return parse_key_prefix(text)


# bucket types whose <path> may hold date variables: keys not dated by AWS under AWSLogs/
DATED_PATH_TYPES = ("custom", "guardduty", "waf")


def parse_account_ids(text: str) -> tuple[str, ...]:
    """12-digit ids separated by commas, or '*' (Control Tower's way to say every account): ()."""
    if text.strip() == "*":
        return ()
    ids = tuple(a.strip() for a in text.split(",") if a.strip())
    if not ids or not all(re.fullmatch(r"\d{12}", a) for a in ids):
        raise ValueError("use 12-digit AWS account ids separated by commas, e.g. '123456789012,210987654321', "
                         "or '*' for every account")
    return ids


def parse_log_date(text: str) -> dt.date:
    """YYYY-MMM-DD as in Wazuh (2026-JAN-31, month name in any case)."""
    m = re.fullmatch(r"(\d{4})-([A-Za-z]{3})-(\d{1,2})", text)
    if m and m.group(2).upper() in _MONTHS:
        try:
            return dt.date(int(m.group(1)), _MONTHS.index(m.group(2).upper()) + 1, int(m.group(3)))
        except ValueError:
            pass
    raise ValueError("use a date as YYYY-MMM-DD, e.g. '2026-JAN-31'")


def format_log_date(day: dt.date) -> str:
    return f"{day.year:04d}-{_MONTHS[day.month - 1]}-{day.day:02d}"


@dataclass
class BucketConfig(AwsAccess):
    """`<bucket type="cloudtrail|vpcflow|...">`: logs AWS writes under standard prefixes, read by listing."""

    TAG: ClassVar[str] = "bucket"

    name: str = option(parse_bucket_name, required=True, default="", help="Name of the S3 bucket holding the logs.")
    aws_account_id: Optional[tuple] = option(
        parse_account_ids, help="Comma-separated account ids to read under AWSLogs/ (and, for server_access, "
                                "in date-partitioned keys); all accounts found there when absent or `*` "
                                "(not for custom and cisco_umbrella).")
    aws_organization_id: Optional[str] = option(
        parse_organization_id, help="Organization id of an organization trail (AWSLogs/<org-id>/<account>/...); "
                                    "without it, organization folders found under AWSLogs/ are read too.")
    aws_account_alias: Optional[str] = option(help="A name for the account, added to every event as "
                                                   "aws.log_info.aws_account_alias.")
    regions: Optional[tuple] = option(parse_regions, help="Comma-separated regions to read; all regions found "
                                                          "in the bucket when absent.")
    path: Optional[str] = option(
        parse_path, help="Key prefix before AWSLogs/ (the trail's or the log delivery's prefix); for custom, "
                         "server_access and cisco_umbrella the folder holding the logs. For custom, guardduty and "
                         "waf it may hold date variables between double slashes, read one day at a time: "
                         "`//YYYY//` year, `//mm//` `//m//` month with and without leading zero, `//dd//` `//d//` "
                         "day, `//HH//` `//H//` hour, `//MM//` `//M//` minute (`mm` is the month, `MM` the "
                         "minute), e.g. `logs///YYYY///mm///dd//` for logs/2026/01/05/; `year=///YYYY//` is "
                         "the Hive folder year=2026.")
    path_suffix: Optional[str] = option(parse_key_prefix, help="Key prefix after AWSLogs/ (some deliveries add "
                                                                 "one before the account folders).")
    only_logs_after: Optional[dt.date] = option(
        parse_log_date, help="Read logs of this day (YYYY-MMM-DD, e.g. 2026-JAN-31) and later. Default: the "
                             "day of the first run; later runs go on from where the last one ended.")
    remove_from_bucket: bool = option(parse_yes_no, default=False, help="'yes' deletes each object from the "
                                                                        "bucket once all its events were delivered.")
    discard_regex: Optional[DiscardRule] = option(
        parse_discard_regex, attributes=("field",),
        help="Events whose field matches the regex (anchored at the start) are dropped and counted; the field is "
             "a dotted path in the event's `aws` object, e.g. `<discard_regex field=\"eventName\">^Describe</discard_regex>`. "
             "Lines of plain-text objects (custom) are matched whole.")
    kind: str = "cloudtrail"
    location: Optional[Location] = None

    @property
    def label(self) -> str:
        where = f"/{self.path}" if self.path else ""
        return f"{self.kind} bucket '{self.name}{where}'"

    def validate(self) -> None:
        super().validate()
        if self.path and has_variables(self.path) and self.kind not in DATED_PATH_TYPES:
            raise ValueError(f"<path> has date variables, which are for {', '.join(DATED_PATH_TYPES)} only: "
                             f"{self.kind} keys are dated by AWS, give the prefix before them (e.g. 'trails')")
        if self.kind == "cisco_umbrella" and not re.search(r"(^|/)(dnslogs|proxylogs|iplogs)/$", self.path or ""):
            raise ValueError("needs <path> ending in the Cisco Umbrella log folder, dnslogs, proxylogs or iplogs "
                             "(e.g. 'dnslogs'), so its records get the right field names")
