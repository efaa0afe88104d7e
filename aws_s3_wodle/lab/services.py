"""CloudWatch Logs groups and Inspector v2 findings in the local AWS (moto), for the service blocks.

Log events are written with PutLogEvents into streams of real log groups; each message carries a unique id
(`lab-<run>-<n>`), half of them JSON objects, half plain text lines, as applications write them.
moto answers ListFindings from a queue of canned pages (`/moto-api/static/inspector2/findings-results`),
one page per distinct request: `queue_findings` puts findings there, shaped as Inspector v2 returns them.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from aws_s3_wodle.lab.security_lake import ACCOUNT, lab_client, wodle_conf

ID = re.compile(r"lab-[0-9a-f]{8}-\d+")


@dataclass
class LogLine:
    id: str
    timestamp: int  # ms
    message: str


def event_id(text: str) -> Optional[str]:
    """The lab id a received event (its message, or a finding's JSON) carries."""
    m = ID.search(text)
    return m.group(0) if m else None


def now_ms() -> int:
    return int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)


@dataclass
class ServicesLab:
    endpoint: str
    region: str = "us-east-1"
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    counter: int = 0

    def client(self, service: str, region: Optional[str] = None) -> Any:
        return lab_client(service, self.endpoint, region or self.region)

    def _next_id(self) -> str:
        self.counter += 1
        return f"lab-{self.run}-{self.counter}"

    # --- CloudWatch Logs

    def group(self, name: str, region: Optional[str] = None) -> str:
        """A log group of this lab (its name made unique to the lab run)."""
        full = f"/lab/{self.run}/{name}"
        logs = self.client("logs", region)
        try:
            logs.create_log_group(logGroupName=full)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        return full

    def put(self, group: str, stream: str, count: int, *, start: Optional[int] = None, step: int = 1,
            same_time: int = 1, region: Optional[str] = None) -> list[LogLine]:
        """`count` events in `stream` (created if needed), from `start` ms (default: a little before now),
        `same_time` events sharing each timestamp, timestamps `step` ms apart; half JSON, half text."""
        logs = self.client("logs", region)
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        base = start if start is not None else now_ms() - count * step - 1000
        lines = []
        for i in range(count):
            eid = self._next_id()
            ts = base + (i // same_time) * step
            if i % 2:
                message = f"{dt.datetime.fromtimestamp(ts / 1000, dt.timezone.utc):%b %d %H:%M:%S} app[42]: " \
                          f"user login failed id={eid}"
            else:
                message = json.dumps({"id": eid, "level": "INFO" if i % 4 else "DEBUG", "msg": "request served",
                                      "ms": ts})
            lines.append(LogLine(eid, ts, message))
        for chunk in range(0, len(lines), 5000):
            part = lines[chunk:chunk + 5000]
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": l.timestamp, "message": l.message} for l in part])
        return lines

    def streams(self, group: str, region: Optional[str] = None) -> list[str]:
        out = self.client("logs", region).describe_log_streams(logGroupName=group)["logStreams"]
        return [s["logStreamName"] for s in out]

    # --- Inspector v2

    def finding(self, updated: dt.datetime, *, severity: str = "HIGH", region: Optional[str] = None) -> dict:
        """One finding as Inspector v2 returns it (a package vulnerability on an EC2 instance)."""
        fid = self._next_id()
        region = region or self.region
        seconds = updated.timestamp()
        return {
            "findingArn": f"arn:aws:inspector2:{region}:{ACCOUNT}:finding/{fid}",
            "awsAccountId": ACCOUNT, "type": "PACKAGE_VULNERABILITY", "status": "ACTIVE", "severity": severity,
            "title": f"CVE-2026-0001 - openssl ({fid})", "description": f"A flaw in openssl ({fid}).",
            "firstObservedAt": seconds - 3600, "lastObservedAt": seconds, "updatedAt": seconds,
            "inspectorScore": 7.5, "fixAvailable": "YES",
            "remediation": {"recommendation": {"text": "Upgrade openssl."}},
            "resources": [{"type": "AWS_EC2_INSTANCE", "id": "i-0123456789abcdef0", "region": region,
                           "details": {"awsEc2Instance": {"platform": "AMAZON_LINUX_2",
                                                          "launchedAt": seconds - 86400}}}],
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2026-0001", "source": "NVD",
                                            "vulnerablePackages": [{"name": "openssl", "version": "1.0.2k"}]},
        }

    def findings(self, count: int, updated: Optional[dt.datetime] = None, region: Optional[str] = None) -> list[dict]:
        updated = updated or dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
        return [self.finding(updated, severity=("HIGH", "MEDIUM", "LOW", "CRITICAL")[i % 4], region=region)
                for i in range(count)]

    def queue_findings(self, findings: Iterable[dict], region: Optional[str] = None) -> None:
        """The page moto answers the next new ListFindings request of `region` with."""
        body = json.dumps({"results": [list(findings)], "account_id": ACCOUNT,
                           "region": region or self.region}).encode()
        request = urllib.request.Request(f"{self.endpoint}/moto-api/static/inspector2/findings-results", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    # --- ossec.conf

    @staticmethod
    def block(kind: str, **options: str) -> str:
        """`<service type="kind">` with the given elements (`discard_regex=(field, regex)` as the attribute form)."""
        lines = []
        for name, value in options.items():
            if name == "discard_regex":
                lines.append(f'      <discard_regex field="{value[0]}">{value[1]}</discard_regex>')
            else:
                lines.append(f"      <{name}>{value}</{name}>")
        inner = "\n".join(lines)
        return f'    <service type="{kind}">\n{inner}\n    </service>'

    def ossec_conf(self, *blocks: str, interval: str = "5m") -> str:
        return wodle_conf("\n".join(blocks), interval)
