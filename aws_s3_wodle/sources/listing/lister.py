"""The listing, written once for every bucket type: which prefixes to read, then their objects day by day.

Accounts and regions are discovered from the bucket's folders (ListObjectsV2 with a delimiter), then
narrowed to the configured ones; an organization trail's `AWSLogs/<org-id>/<account>/` folders are found
the same way. Objects are listed one day prefix at a time, so a run reads the days it needs, not the bucket.
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
from aws_s3_wodle.errors import AwsAccessError
from aws_s3_wodle.sources.listing.layouts import BucketType, Layout

log = logging.getLogger("aws-s3-wodle")

_ACCOUNT = re.compile(r"\d{12}")
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

    def folders(self, prefix: str) -> list[str]:
        """Names of the 'folders' right under prefix (without the prefix and the trailing '/')."""
        names = []
        for page in self._pages(Prefix=prefix, Delimiter="/"):
            names += [p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return names

    def objects(self, prefix: str) -> Iterator[ListedObject]:
        for page in self._pages(Prefix=prefix):
            for item in page.get("Contents", []):
                etag = item.get("ETag")
                yield ListedObject(item["Key"], int(item.get("Size", 0)), etag.strip('"') if etag else None,
                                   item["LastModified"])


def _account_prefixes(block: BucketConfig, lister: Lister, base: str) -> list[tuple[str, str]]:
    """(prefix ending in '<account>/', account) for every account folder, organization folders included."""
    orgs = [block.aws_organization_id] if block.aws_organization_id else []
    found: list[tuple[str, str]] = []
    if not orgs:
        for name in lister.folders(base):
            if _ACCOUNT.fullmatch(name):
                found.append((f"{base}{name}/", name))
            elif _ORGANIZATION.fullmatch(name):
                orgs.append(name)
    for org in orgs:
        found += [(f"{base}{org}/{name}/", name) for name in lister.folders(f"{base}{org}/")
                  if _ACCOUNT.fullmatch(name)]
    if block.aws_account_id:
        wanted = set(block.aws_account_id)
        missing = wanted - {a for _, a in found}
        if missing:
            log.warning("%s: no folder for account(s) %s under s3://%s/%s%s", block.label, ", ".join(sorted(missing)),
                        block.name, base, f"{block.aws_organization_id}/" if block.aws_organization_id else "")
        found = [(p, a) for p, a in found if a in wanted]
    return found


def targets(block: BucketConfig, btype: BucketType, lister: Lister) -> list[Target]:
    """The prefixes this block reads, discovered from the bucket and narrowed by the configuration."""
    path = block.path or ""
    layout = btype.layout
    if not layout.aws_logs:
        return [Target(path, layout)]
    base = f"{path}AWSLogs/{block.path_suffix or ''}"
    accounts = _account_prefixes(block, lister, base)
    if not accounts and btype.fallback is not None and not lister.folders(base):
        log.debug("%s: nothing under s3://%s/%s, reading the Firehose layout under '%s'", block.label, block.name,
                  base, path)
        return [Target(path, btype.fallback)]
    if not accounts:
        log.warning("%s: no account folders under s3://%s/%s; check <path>, <path_suffix>, <aws_organization_id> "
                    "and that the bucket holds %s logs", block.label, block.name, base, btype.name)
    out: list[Target] = []
    for account_prefix, account in accounts:
        service_prefix = f"{account_prefix}{layout.service}/"
        regions = lister.folders(service_prefix)
        if block.regions:
            regions = [r for r in regions if r in block.regions]
        if not regions:
            log.debug("%s: no region folders to read under s3://%s/%s", block.label, block.name, service_prefix)
        for region in regions:
            region_prefix = f"{service_prefix}{region}/"
            if layout.acl_folder:
                out += [Target(f"{region_prefix}{acl}/", layout, account, region) for acl in lister.folders(region_prefix)]
            else:
                out.append(Target(region_prefix, layout, account, region))
    return out


def days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)
