"""Buckets as AWS services fill them, in the local AWS (moto): every <bucket type="..."> layout.

Objects are what the services write (keys, compression, record formats), generated: gzip CloudTrail
`Records` files, VPC flow logs in the default and in a custom format (header line first), WAF and
GuardDuty JSON lines, Config history files, ALB/NLB/CLB access logs, S3 server access logs, Cisco
Umbrella DNS CSV and custom JSON lines, over several days, accounts and regions, and an organization
trail. Each object keeps the ids of its records, and `event_id` finds that id in a delivered event, so
a test or the demo can count every record that arrived. Keys are built here from AWS's documentation,
independently of the wodle's own layout table, so the two check each other. Besides each type's default
layout: VPC flow logs with Hive-compatible prefixes and per-hour partitions (`hive=`, `per_hour=`), S3
server access logs with date-based partitioning (`partitioned=`), custom logs under a dated folder given
as a strftime format (`dated="app/year=%Y/month=%m/day=%d/hour=%H/"`), and any object encrypted with
SSE-KMS (`kms_key=` from `BucketLab.kms_key()`).
"""
from __future__ import annotations

import datetime as dt
import functools
import gzip
import io
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from aws_s3_wodle.lab.security_lake import lab_client, wodle_conf

ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("us-east-1", "eu-west-1")
ORGANIZATION = "o-a1b2c3d4e5"
KINDS = ("cloudtrail", "vpcflow", "config", "guardduty", "waf", "alb", "clb", "nlb", "server_access",
         "cisco_umbrella", "custom")

VPC_DEFAULT_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
                      "start end action log-status")
VPC_CUSTOM_HEADER = ("version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport "
                     "dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status")


@dataclass
class LabObject:
    key: str
    kind: str
    ids: list[str]        # one entry per event the wodle should deliver (a finding with 2 probes: 2 entries)
    day: dt.date
    account: str = ""
    region: str = ""


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _text(lines: list[str]) -> bytes:
    """Text records as the services write them: one a line, the last one ended too."""
    return ("\n".join(lines) + "\n").encode()


def _stamp(day: dt.date, seq: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=(seq * 37) % 86000)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ip(seq: int, first: int = 10) -> str:
    return f"{first}.{(seq >> 16) & 255}.{(seq >> 8) & 255}.{seq & 255}"


def event_id(kind: str, event: dict) -> str:
    """The generated id of the record a delivered event came from."""
    aws = event["aws"]
    if kind == "cloudtrail":
        return aws["eventID"]
    if kind == "vpcflow":
        return f"{aws['srcaddr']}:{aws['srcport']}"
    if kind == "waf":
        return aws["httpRequest"]["requestId"]
    if kind == "config":
        return aws["resourceId"]
    if kind in ("guardduty", "custom"):
        return aws["id"]
    if kind == "clb":
        return aws["client_port"]  # Wazuh's CLB events keep "ip:port" in client_port
    if kind in ("alb", "nlb"):
        return f"{aws['client_ip']}:{aws['client_port']}"
    if kind == "server_access":
        return aws["request_id"]
    if kind == "cisco_umbrella":
        return aws["domain"]
    raise ValueError(kind)


@dataclass
class BucketLab:
    endpoint: str
    region: str = "us-east-1"
    bucket: str = ""
    objects: list[LabObject] = field(default_factory=list)
    seq: int = 0

    def client(self, service: str = "s3") -> Any:
        return lab_client(service, self.endpoint, self.region)

    def create(self) -> "BucketLab":
        if not self.bucket:
            self.bucket = f"lab-logs-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    # --- one object of a kind

    def add(self, kind: str, *, day: dt.date, account: str = ACCOUNTS[0], region: str = REGIONS[0], records: int = 5,
            path: str = "", organization: Optional[str] = None, custom_format: bool = False,
            acl: str = "lab-web-acl", umbrella: str = "dnslogs", kms_key: Optional[str] = None,
            **layout: Any) -> LabObject:
        """Generate and upload one object as the service would write it; returns what it holds. `layout`:
        the maker's layout options (hive=, per_hour=, partitioned=, dated=; see the module's docstring)."""
        seqs = [self._next() for _ in range(records)]
        key, body, ids = _MAKERS[kind](self, day=day, account=account, region=region, seqs=seqs, path=path,
                                       organization=organization, custom_format=custom_format, acl=acl,
                                       umbrella=umbrella, **layout)
        sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
        self.client().put_object(Bucket=self.bucket, Key=key, Body=body, **sse)
        keeps_account = kind not in ("server_access", "cisco_umbrella", "custom") or layout.get("partitioned")
        obj = LabObject(key, kind, ids, day, account if keeps_account else "", region)
        self.objects.append(obj)
        return obj

    def populate(self, kind: str, *, days: int = 3, accounts=ACCOUNTS, regions=REGIONS, records: int = 5,
                 today: Optional[dt.date] = None, **kwargs: Any) -> list[LabObject]:
        """One object per day (today and the days before), account and region."""
        today = today or dt.datetime.now(dt.timezone.utc).date()
        out = []
        for back in range(days):
            day = today - dt.timedelta(days=back)
            for account in accounts:
                for region in regions:
                    out.append(self.add(kind, day=day, account=account, region=region, records=records, **kwargs))
        return out

    def kms_key(self) -> str:
        """A customer managed KMS key (its id) for SSE-KMS objects: the reader's GetObject is the same."""
        return self.client("kms").create_key(Description="lab logs")["KeyMetadata"]["KeyId"]

    def keys(self) -> set[str]:
        s3 = self.client()
        return {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                for o in page.get("Contents", [])}

    def ossec_conf(self, blocks: list[dict], interval: str = "5m") -> str:
        """ossec.conf with one <bucket> per dict: {"type": ..., element: value, ...}; name defaults to ours."""
        parts = []
        for spec in blocks:
            spec = dict(spec)
            kind = spec.pop("type")
            spec.setdefault("name", self.bucket)
            inner = []
            for element, value in spec.items():
                if element == "discard_regex":
                    fld, regex = value
                    inner.append(f'      <discard_regex field="{fld}">{regex}</discard_regex>')
                else:
                    inner.append(f"      <{element}>{value}</{element}>")
            parts.append(f'    <bucket type="{kind}">\n' + "\n".join(inner) + "\n    </bucket>")
        return wodle_conf("\n".join(parts), interval)


def _aws_logs(path: str, organization: Optional[str], account: str, service: str, region: str) -> str:
    return f"{path}AWSLogs/{organization + '/' if organization else ''}{account}/{service}/{region}/"


def _cloudtrail(lab: BucketLab, *, day, account, region, seqs, path, organization, **_: Any):
    records, ids = [], []
    for n, seq in enumerate(seqs):
        event_id = str(uuid.UUID(int=seq))
        ids.append(event_id)
        login = n % 4 == 3
        records.append({
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{account}:user/alice",
                             "accountId": account, "userName": "alice"},
            "eventTime": _iso(_stamp(day, seq)),
            "eventSource": "signin.amazonaws.com" if login else "ec2.amazonaws.com",
            "eventName": "ConsoleLogin" if login else ("DescribeInstances" if n % 2 else "RunInstances"),
            "awsRegion": region, "sourceIPAddress": _ip(seq, 198),
            "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0",
            "requestParameters": None if login else {"instancesSet": {"items": [{"instanceId": f"i-{seq:017x}"}]}},
            "responseElements": {"ConsoleLogin": "Failure"} if login else None,
            "additionalEventData": {"MFAUsed": "No"} if login else None,
            "requestID": str(uuid.UUID(int=seq + (1 << 64))), "eventID": event_id, "readOnly": bool(n % 2),
            "eventType": "AwsConsoleSignIn" if login else "AwsApiCall", "managementEvent": True,
            "recipientAccountId": account, "eventCategory": "Management",
            "resources": [{"ARN": f"arn:aws:ec2:{region}:{account}:instance/i-{seq:017x}", "type": "AWS::EC2::Instance"}],
        })
    t = _stamp(day, seqs[0])
    key = (f"{_aws_logs(path, organization, account, 'CloudTrail', region)}{day:%Y/%m/%d}/"
           f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%M}Z_{secrets.token_hex(8)}.json.gz")
    return key, _gz(json.dumps({"Records": records}).encode()), ids


def _vpcflow(lab: BucketLab, *, day, account, region, seqs, path, organization, custom_format, hive: bool = False,
             per_hour: bool = False, **_: Any):
    lines, ids = [VPC_CUSTOM_HEADER if custom_format else VPC_DEFAULT_HEADER], []
    for seq in seqs:
        src, port = _ip(seq), 1024 + seq % 60000
        ids.append(f"{src}:{port}")
        start = int(_stamp(day, seq).timestamp())
        action = "REJECT" if seq % 5 == 0 else "ACCEPT"
        eni = f"eni-{seq % 4096:017x}"
        if custom_format:
            lines.append(f"3 vpc-0a1b2c3d subnet-0a1b2c3d i-{seq:017x} {eni} {account} IPv4 {src} 10.0.1.5 {port} 443 "
                         f"{src} 10.0.1.5 6 {seq * 40} {seq % 9 + 1} {start} {start + 60} {action} 19 OK")
        else:
            lines.append(f"2 {account} {eni} {src} 10.0.1.5 {port} 443 6 {seq % 9 + 1} {seq * 40} {start} "
                         f"{start + 60} {action} OK")
    t = _stamp(day, seqs[0])
    if hive:  # AWS's "Hive-compatible S3 prefix" option (and "per-hour partitions")
        folder = (f"{path}AWSLogs/aws-account-id={account}/aws-service=vpcflowlogs/aws-region={region}/"
                  f"year={day:%Y}/month={day:%m}/day={day:%d}/{f'hour={t:%H}/' if per_hour else ''}")
    else:
        folder = (f"{_aws_logs(path, organization, account, 'vpcflowlogs', region)}{day:%Y/%m/%d}/"
                  f"{f'{t:%H}/' if per_hour else ''}")
    key = f"{folder}{account}_vpcflowlogs_{region}_fl-{secrets.token_hex(8)}_{t:%Y%m%dT%H%M}Z_{secrets.token_hex(4)}.log.gz"
    return key, _gz(_text(lines)), ids


def _config(lab: BucketLab, *, day, account, region, seqs, path, organization, **_: Any):
    items, ids = [], []
    for n, seq in enumerate(seqs):
        rid = f"sg-{seq:017x}"
        ids.append(rid)
        items.append({
            "configurationItemVersion": "1.3", "configurationItemCaptureTime": _iso(_stamp(day, seq)),
            "configurationStateId": 1700000000000 + seq, "awsAccountId": account,
            "configurationItemStatus": "ResourceDiscovered" if n == 0 else "OK",
            "resourceType": "AWS::EC2::SecurityGroup", "resourceId": rid, "resourceName": f"web-{seq}",
            "ARN": f"arn:aws:ec2:{region}:{account}:security-group/{rid}", "awsRegion": region,
            "availabilityZone": "Not Applicable", "tags": {"env": "lab"}, "relatedEvents": [],
            "relationships": [{"resourceId": "vpc-0a1b2c3d", "resourceType": "AWS::EC2::VPC", "name": "Is contained in Vpc"}],
            "configuration": {"groupName": f"web-{seq}", "groupId": rid, "vpcId": "vpc-0a1b2c3d",
                              "ipPermissions": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                                                 "ipRanges": ["0.0.0.0/0"]}]},
        })
    t = _stamp(day, seqs[0])
    key = (f"{_aws_logs(path, organization, account, 'Config', region)}{day.year}/{day.month}/{day.day}/ConfigHistory/"
           f"{account}_Config_{region}_ConfigHistory_AWS::EC2::SecurityGroup_{t:%Y%m%dT%H%M%SZ}_"
           f"{t:%Y%m%dT%H%M%SZ}_1.json.gz")
    return key, _gz(json.dumps({"fileVersion": "1.0", "configurationItems": items}).encode()), ids


def _guardduty(lab: BucketLab, *, day, account, region, seqs, path, organization, **_: Any):
    lines, ids = [], []
    for n, seq in enumerate(seqs):
        fid = f"{seq:032x}"
        probes = 2 if n % 3 == 0 else 1
        ids += [fid] * probes  # several port probes: one event each
        lines.append(json.dumps({
            "schemaVersion": "2.0", "accountId": account, "region": region, "partition": "aws", "id": fid,
            "arn": f"arn:aws:guardduty:{region}:{account}:detector/lab/finding/{fid}",
            "type": "Recon:EC2/PortProbeUnprotectedPort",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": f"i-{seq:017x}"}},
            "service": {"serviceName": "guardduty", "detectorId": "lab", "count": probes, "archived": False,
                        "action": {"actionType": "PORT_PROBE", "portProbeAction": {"blocked": False, "portProbeDetails": [
                            {"localPortDetails": {"port": 22 + p, "portName": "SSH"},
                             "remoteIpDetails": {"ipAddressV4": _ip(seq * 2 + p, 203)}} for p in range(probes)]}}},
            "severity": (2, 5, 8)[n % 3], "createdAt": _iso(_stamp(day, seq)), "updatedAt": _iso(_stamp(day, seq)),
            "title": "Unprotected port on EC2 instance is being probed.",
            "description": "EC2 instance has an unprotected port which is being probed by a known malicious host."}))
    key = (f"{_aws_logs(path, organization, account, 'GuardDuty', region)}{day:%Y/%m/%d}/{uuid.uuid4()}.jsonl.gz")
    return key, _gz(_text(lines)), ids


def _waf(lab: BucketLab, *, day, account, region, seqs, path, organization, acl, **_: Any):
    lines, ids = [], []
    for n, seq in enumerate(seqs):
        rid = f"waf-{seq}-{secrets.token_hex(4)}"
        ids.append(rid)
        blocked = n % 3 == 0
        lines.append(json.dumps({
            "timestamp": int(_stamp(day, seq).timestamp() * 1000), "formatVersion": 1,
            "webaclId": f"arn:aws:wafv2:{region}:{account}:regional/webacl/{acl}/a1b2c3d4",
            "terminatingRuleId": "AWS-AWSManagedRulesCommonRuleSet" if blocked else "Default_Action",
            "terminatingRuleType": "MANAGED_RULE_GROUP" if blocked else "REGULAR", "action": "BLOCK" if blocked else "ALLOW",
            "terminatingRuleMatchDetails": [], "httpSourceName": "ALB", "httpSourceId": f"{account}-app/lab-alb/1a2b3c",
            "ruleGroupList": [], "rateBasedRuleList": [], "nonTerminatingMatchingRules": [],
            "requestHeadersInserted": None, "responseCodeSent": None,
            "httpRequest": {"clientIp": _ip(seq, 192), "country": "US",
                            "headers": [{"name": "Host", "value": "shop.example.com"},
                                        {"name": "User-Agent", "value": "Mozilla/5.0"},
                                        {"name": "X-Lab-Trace", "value": rid}],
                            "uri": "/login", "args": "next=%2Fcart" if blocked else "", "httpVersion": "HTTP/1.1",
                            "httpMethod": "POST" if blocked else "GET", "requestId": rid}}))
    t = _stamp(day, seqs[0])
    key = (f"{_aws_logs(path, organization, account, 'WAFLogs', region)}{acl}/{day:%Y/%m/%d}/{t:%H}/{t:%M}/"
           f"{account}_waflogs_{region}_{acl}_{t:%Y%m%dT%H%M}Z_{secrets.token_hex(4)}.log.gz")
    return key, _gz(_text(lines)), ids


def _elb(lab: BucketLab, *, day, account, region, seqs, path, organization, first: int, name: str, compressed: bool,
         line: Callable[..., str], **_: Any):
    """An Elastic Load Balancing access log: one `line(time, client, port, seq, account=, region=)` a request,
    each request known by its client's address and port; ALB and NLB logs are gzipped, CLB logs are not."""
    lines, ids = [], []
    for seq in seqs:
        client, port = _ip(seq, first), 1024 + seq % 60000
        ids.append(f"{client}:{port}")
        lines.append(line(_stamp(day, seq), client, port, seq, account=account, region=region))
    t = _stamp(day, seqs[0])
    key = (f"{_aws_logs(path, organization, account, 'elasticloadbalancing', region)}{day:%Y/%m/%d}/"
           f"{account}_elasticloadbalancing_{region}_{name}_{t:%Y%m%dT%H%M}Z_10.0.0.9_{secrets.token_hex(4)}"
           f"{'.log.gz' if compressed else '.log'}")
    return key, _gz(_text(lines)) if compressed else _text(lines), ids


def _alb_line(t: dt.datetime, client: str, port: int, seq: int, *, account: str, region: str) -> str:
    return (f'https {t:%Y-%m-%dT%H:%M:%S}.123456Z app/lab-alb/50dc6c495c0c9188 {client}:{port} 10.0.0.1:80 0.001 0.048 '
            f'0.000 200 200 34 366 "GET https://shop.example.com:443/item/{seq}?q=\\"x\\" HTTP/1.1" '
            f'"curl/8.4.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
            f'arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/lab-tg/73e2d6bc24d8a067 '
            f'"Root=1-{seq:08x}-{secrets.token_hex(12)}" "shop.example.com" '
            f'"arn:aws:acm:{region}:{account}:certificate/12345678" 1 {t:%Y-%m-%dT%H:%M:%S}.000000Z "forward" "-" "-" '
            f'"10.0.0.1:80" "200" "-" "-" TID_{secrets.token_hex(8)}')


def _nlb_line(t: dt.datetime, client: str, port: int, seq: int, *, account: str, region: str) -> str:
    return (f"tls 2.0 {t:%Y-%m-%dT%H:%M:%S} net/lab-nlb/c6e77e28c25b2234 g3d4b5e8bb8464cd {client}:{port} "
            f"10.0.2.7:443 5 2 98 246 - arn:aws:acm:{region}:{account}:certificate/abc - "
            f"ECDHE-RSA-AES128-SHA tlsv12 - lab-nlb-c6e77e28c25b2234.elb.{region}.amazonaws.com - - - "
            f"{t:%Y-%m-%dT%H:%M:%S}")


def _clb_line(t: dt.datetime, client: str, port: int, seq: int, **_: str) -> str:
    return (f'{t:%Y-%m-%dT%H:%M:%S}.945958Z lab-clb {client}:{port} 10.0.0.1:80 0.000073 0.001048 0.000057 '
            f'200 200 0 29 "GET http://www.example.com:80/{seq} HTTP/1.1" "curl/7.38.0" - -')


def _server_access(lab: BucketLab, *, day, seqs, path, account, region, partitioned: Optional[str] = None,
                   **_: Any):
    """`partitioned`: the source bucket's name, for AWS's date-based partitioning of the log keys."""
    lines, ids = [], []
    owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
    for seq in seqs:
        rid = f"{seq:08X}{secrets.token_hex(4).upper()}"
        ids.append(rid)
        t = _stamp(day, seq)
        lines.append(f'{owner} lab-website [{t:%d/%b/%Y:%H:%M:%S} +0000] {_ip(seq, 192)} {owner} {rid} '
                     f'REST.GET.OBJECT img/{seq}.png "GET /lab-website/img/{seq}.png HTTP/1.1" 200 - 2662992 3462992 '
                     f'70 10 "-" "Mozilla/5.0 (X11; Linux x86_64)" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkF= '
                     f'SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader lab-website.s3.us-east-1.amazonaws.com TLSv1.2 - -')
    t = _stamp(day, seqs[0])
    folder = f"{path}{account}/{region}/{partitioned}/{day:%Y/%m/%d}/" if partitioned else path
    return f"{folder}{t:%Y-%m-%d-%H-%M-%S}-{secrets.token_hex(8).upper()}", _text(lines), ids


def _cisco_umbrella(lab: BucketLab, *, day, seqs, path, umbrella, **_: Any):
    out = io.StringIO()
    ids = []
    for n, seq in enumerate(seqs):
        domain = f"host-{seq}.example.net."
        ids.append(domain)
        t = _stamp(day, seq)
        out.write(f'"{t:%Y-%m-%d %H:%M:%S}","laptop-{seq % 7}","laptop-{seq % 7},Lab Network","10.10.1.{seq % 250}",'
                  f'"24.123.132.{seq % 250}","{"Blocked" if n % 4 == 0 else "Allowed"}","1 (A)","NOERROR","{domain}",'
                  f'"Chat,Social Networking","Roaming Computers","Roaming Computers,Networks",""\n')
    t = _stamp(day, seqs[0])
    key = f"{path}{umbrella}/{day:%Y-%m-%d}/{day:%Y-%m-%d}-{t:%H-%M}-{secrets.token_hex(2)}.csv.gz"
    return key, _gz(out.getvalue().encode()), ids


def _custom(lab: BucketLab, *, day, seqs, path, dated: Optional[str] = None, **_: Any):
    """`dated`: the folder after `path` as a strftime format of the object's first record time."""
    lines, ids = [], []
    for seq in seqs:
        rid = f"app-{seq}"
        ids.append(rid)
        lines.append(json.dumps({"id": rid, "time": _iso(_stamp(day, seq)), "app": "billing", "level": "warning",
                                 "source": "billing-api", "message": f"payment {seq} retried", "tags": ["pci"]}))
    folder = _stamp(day, seqs[0]).strftime(dated) if dated else f"{day:%Y/%m/%d}/"
    return f"{path}{folder}billing-{uuid.uuid4()}.json.gz", _gz(_text(lines)), ids


_MAKERS: dict[str, Callable[..., tuple[str, bytes, list[str]]]] = {
    "cloudtrail": _cloudtrail, "vpcflow": _vpcflow, "config": _config, "guardduty": _guardduty, "waf": _waf,
    "alb": functools.partial(_elb, first=172, name="app.lab-alb.50dc6c495c0c9188", compressed=True, line=_alb_line),
    "nlb": functools.partial(_elb, first=100, name="net.lab-nlb.c6e77e28c25b2234", compressed=True, line=_nlb_line),
    "clb": functools.partial(_elb, first=150, name="lab-clb", compressed=False, line=_clb_line),
    "server_access": _server_access, "cisco_umbrella": _cisco_umbrella, "custom": _custom,
}


def demo_blocks(lab_by_kind: dict[str, "BucketLab"], since: dt.date) -> str:
    """ossec.conf reading every lab bucket, one <bucket> block per type."""
    from aws_s3_wodle.config.buckets import format_log_date
    blocks = []
    for kind, lab in lab_by_kind.items():
        spec = {"type": kind, "name": lab.bucket, "only_logs_after": format_log_date(since)}
        if kind == "server_access":
            spec["path"] = "logs"
        elif kind == "custom":
            spec["path"] = "logs///YYYY///mm///dd//"  # date variables: read one day at a time
        elif kind == "cisco_umbrella":
            spec["path"] = "umbrella/dnslogs"
        blocks.append(spec)
    return next(iter(lab_by_kind.values())).ossec_conf(blocks)


def build_all(endpoint: str, *, days: int = 3, records: int = 5) -> dict[str, "BucketLab"]:
    """One bucket per type, filled over `days` days, both lab accounts and regions (and an organization trail);
    VPC flow logs also in Hive-compatible hourly folders, server access logs also date-partitioned, and
    the custom logs encrypted with SSE-KMS."""
    labs = {}
    for kind in KINDS:
        lab = BucketLab(endpoint).create()
        if kind == "custom":
            lab.populate(kind, days=days, accounts=[""], regions=[""], records=records, path="logs/",
                         kms_key=lab.kms_key())
        elif kind == "server_access":
            lab.populate(kind, days=days, accounts=[""], regions=[""], records=records, path="logs/")
            lab.populate(kind, days=days, regions=REGIONS[:1], records=records, path="logs/", partitioned="lab-website")
        elif kind == "cisco_umbrella":
            lab.populate(kind, days=days, accounts=[""], regions=[""], records=records, path="umbrella/")
        else:
            lab.populate(kind, days=days, records=records)
        if kind == "cloudtrail":
            lab.populate(kind, days=days, records=records, organization=ORGANIZATION, accounts=("333333333333",))
        if kind == "vpcflow":
            lab.populate(kind, days=days, records=records, custom_format=True, accounts=ACCOUNTS[:1])
            lab.populate(kind, days=days, records=records, accounts=("444444444444",), hive=True, per_hour=True)
        labs[kind] = lab
    return labs
