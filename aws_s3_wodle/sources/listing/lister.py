"""The listing, written once for every bucket type: which prefixes to read, then their objects day by day.

Accounts and regions are discovered from the bucket's folders (ListObjectsV2 with a delimiter), then
narrowed to the configured ones; an organization trail's `AWSLogs/<org-id>/<account>/` folders are found
the same way (and VPC flow logs' Hive-compatible `aws-account-id=<account>/` folders beside them). Objects
are listed one day prefix at a time, so a run reads the days it needs, not the bucket. A `<path>` with date
variables (config/datepath.py) is one prefix per day too; S3 server access logs with date-based
partitioning are found under `<path><account>/<region>/<source-bucket>/`, each read day by day.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.platform.aws_errors import describe_client_error, error_code
from aws_s3_wodle.config.buckets import BucketConfig
from aws_s3_wodle.config.datepath import DatePath, has_variables
from aws_s3_wodle.errors import AwsAccessError
from aws_s3_wodle.sources.listing.layouts import BucketType, Layout

log = logging.getLogger("aws-s3-wodle")

_ACCOUNT = re.compile(r"\d{12}")
_HIVE_ACCOUNT = re.compile(r"aws-account-id=(\d{12})")
_PARTITION_ACCOUNT = re.compile(r"(\d{12})/")
_ORGANIZATION = re.compile(r"o-[a-z0-9]{10,32}")

_HINTS = {
    "NoSuchBucket": "the bucket does not exist; check <name> and the S3 endpoint",
    "AccessDenied": "access denied; the identity (or role) needs s3:ListBucket and s3:GetObject on the bucket",
    "AllAccessDisabled": "all access to the bucket is disabled",
    "PermanentRedirect": "the bucket is in another region or partition; check the S3 endpoint",
}


@dataclass(frozen=True)
class Target:
    """One listing prefix down to the region (and WAF web ACL): the unit of state and of the day loop."""

    prefix: str
    layout: Layout
    account: str = ""
    region: str = ""

    def day_prefix(self, day: dt.date) -> str:
        assert self.layout.day is not None
        return self.prefix + self.layout.day(day)


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: Optional[str]
    last_modified: dt.datetime


class Lister:
    """ListObjectsV2 over one bucket; AWS errors become one clear AwsAccessError."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket
        self.calls = 0

    def _pages(self, **kwargs: Any) -> Iterator[dict]:
        token = None
        while True:
            args = {"Bucket": self.bucket, **kwargs, **({"ContinuationToken": token} if token else {})}
            try:
                self.calls += 1
                page = self.s3.list_objects_v2(**args)
            except ClientError as exc:
                code = error_code(exc)
                raise AwsAccessError(f"cannot list s3://{self.bucket}/{kwargs.get('Prefix', '')}: "
                                     f"{describe_client_error(exc)}; {_HINTS.get(code, 'see the AWS error')}") from None
            except BotoCoreError as exc:
                raise AwsAccessError(f"cannot list s3://{self.bucket}/{kwargs.get('Prefix', '')}: {exc}") from None
            yield page
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return

    def common_prefixes(self, prefix: str, delimiter: str = "/") -> list[str]:
        """The keys under prefix rolled up to their first `delimiter` after it (the prefix left out)."""
        found = []
        for page in self._pages(Prefix=prefix, Delimiter=delimiter):
            found += [p["Prefix"][len(prefix):] for p in page.get("CommonPrefixes", [])]
        return found

    def folders(self, prefix: str) -> list[str]:
        """Names of the 'folders' right under prefix (without the prefix and the trailing '/')."""
        return [name.rstrip("/") for name in self.common_prefixes(prefix)]

    def objects(self, prefix: str) -> Iterator[ListedObject]:
        for page in self._pages(Prefix=prefix):
            for item in page.get("Contents", []):
                etag = item.get("ETag")
                yield ListedObject(item["Key"], int(item.get("Size", 0)), etag.strip('"') if etag else None,
                                   item["LastModified"])


def _account_prefixes(block: BucketConfig, lister: Lister, base: str,
                      hive: bool = False) -> list[tuple[str, str, bool]]:
    """(prefix ending in '<account>/', account, whether Hive-style) for every account folder, organization
    folders included; with `hive`, the `aws-account-id=<account>/` folders too."""
    orgs = [block.aws_organization_id] if block.aws_organization_id else []
    found: list[tuple[str, str, bool]] = []
    if not orgs:
        for name in lister.folders(base):
            hive_account = _HIVE_ACCOUNT.fullmatch(name) if hive else None
            if _ACCOUNT.fullmatch(name):
                found.append((f"{base}{name}/", name, False))
            elif hive_account:
                found.append((f"{base}{name}/", hive_account.group(1), True))
            elif _ORGANIZATION.fullmatch(name):
                orgs.append(name)
    for org in orgs:
        found += [(f"{base}{org}/{name}/", name, False) for name in lister.folders(f"{base}{org}/")
                  if _ACCOUNT.fullmatch(name)]
    if block.aws_account_id:
        wanted = set(block.aws_account_id)
        missing = wanted - {a for _, a, _ in found}
        if missing:
            log.warning("%s: no folder for account(s) %s under s3://%s/%s%s", block.label, ", ".join(sorted(missing)),
                        block.name, base, f"{block.aws_organization_id}/" if block.aws_organization_id else "")
        found = [f for f in found if f[1] in wanted]
    return found


def _partitioned(block: BucketConfig, layout: Layout, lister: Lister, path: str) -> list[Target]:
    """S3 server access logs with date-based partitioning: `<path><account>/<region>/<source-bucket>/YYYY/MM/DD/`.

    The accounts are found with one listing whose delimiter is '-': the simple layout's keys under <path>
    (`YYYY-MM-DD-...`) roll up into one prefix per year, and a partitioned one into `<account>/<region
    up to its first '-'>`, so finding them does not page through the bucket."""
    accounts = sorted({m.group(1) for p in lister.common_prefixes(path, "-")
                       if (m := _PARTITION_ACCOUNT.match(p))})
    if block.aws_account_id:
        accounts = [a for a in accounts if a in block.aws_account_id]
    out = []
    for account in accounts:
        regions = lister.folders(f"{path}{account}/")
        if block.regions:
            regions = [r for r in regions if r in block.regions]
        for region in regions:
            region_prefix = f"{path}{account}/{region}/"
            out += [Target(f"{region_prefix}{source}/", layout, account, region)
                    for source in lister.folders(region_prefix)]
    return out


def _dated(path: str) -> Target:
    """A <path> with date variables: one prefix per day after its literal head, keys matching the whole path."""
    dated = DatePath.parse(path)
    return Target(dated.head, Layout(None, dated.day_prefix, key_filter=dated.pattern))


def targets(block: BucketConfig, btype: BucketType, lister: Lister) -> list[Target]:
    """The prefixes this block reads, discovered from the bucket and narrowed by the configuration."""
    path = block.path or ""
    if has_variables(path):
        return [_dated(path)]
    layout = btype.layout
    if not layout.aws_logs:
        if btype.partitioned is not None:
            return [Target(path, layout)] + _partitioned(block, btype.partitioned, lister, path)
        return [Target(path, layout)]
    base = f"{path}AWSLogs/{block.path_suffix or ''}"
    accounts = _account_prefixes(block, lister, base, hive=btype.hive is not None)
    if not accounts and btype.fallback is not None and not lister.folders(base):
        log.debug("%s: nothing under s3://%s/%s, reading the Firehose layout under '%s'", block.label, block.name,
                  base, path)
        return [Target(path, btype.fallback)]
    if not accounts:
        log.warning("%s: no account folders under s3://%s/%s; check <path>, <path_suffix>, <aws_organization_id> "
                    "and that the bucket holds %s logs", block.label, block.name, base, btype.name)
    out: list[Target] = []
    for account_prefix, account, hive in accounts:
        used = btype.hive if hive and btype.hive is not None else layout
        key = "aws-region=" if hive else ""
        service_prefix = f"{account_prefix}{'aws-service=' if hive else ''}{used.service}/"
        folders = {name[len(key):]: name for name in lister.folders(service_prefix) if name.startswith(key)}
        regions = [r for r in folders if not block.regions or r in block.regions]
        if not regions:
            log.debug("%s: no region folders to read under s3://%s/%s", block.label, block.name, service_prefix)
        for region in regions:
            region_prefix = f"{service_prefix}{folders[region]}/"
            if used.acl_folder:
                out += [Target(f"{region_prefix}{acl}/", used, account, region) for acl in lister.folders(region_prefix)]
            else:
                out.append(Target(region_prefix, used, account, region))
    return out


def days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)
