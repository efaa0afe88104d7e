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


def demo(work, events: int = 200) -> int:
    """`aws-s3-wodle lab services`: two log groups in two regions and Inspector findings; the wodle runs three
    times (everything once, then nothing, then only what was added); exit 0 only if each run got exactly that."""
    import collections
    import os
    import shutil
    import subprocess
    import sys
    import time
    from pathlib import Path

    from aws_s3_wodle.config.buckets import format_log_date
    from aws_s3_wodle.lab.engine import DatagramEngine
    from aws_s3_wodle.lab.security_lake import lab_env
    from aws_s3_wodle.lab.server import MotoServer

    work = Path(work)
    conf, sock, state = work / "services-ossec.conf", work / "queue" / "sockets" / "queue", work / "services-state"
    shutil.rmtree(state, ignore_errors=True)
    other = "eu-west-1"
    with MotoServer() as moto, DatagramEngine(str(sock)) as engine:
        lab = ServicesLab(moto.endpoint)
        app, audit, far = lab.group("app"), lab.group("audit"), lab.group("app", region=other)
        per = max(1, events // 4)
        expected = [lab.put(app, "i-0a1", per, same_time=3), lab.put(app, "i-0b2", per),
                    lab.put(audit, "trail", per), lab.put(far, "i-0c3", per, region=other)]
        findings = lab.findings(max(1, events // 10))
        lab.queue_findings(findings)
        since = format_log_date(dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))
        conf.write_text(lab.ossec_conf(
            lab.block("cloudwatchlogs", aws_log_groups=f"{app},{audit}", regions=f"us-east-1,{other}",
                      only_logs_after=since),
            lab.block("inspector", regions="us-east-1", only_logs_after=since)))
        print(f"lab: moto at {moto.endpoint}; log groups {app}, {audit} (us-east-1) and {app} ({other}); "
              f"{sum(len(e) for e in expected)} log events, {len(findings)} Inspector findings; ossec.conf: {conf}")
        cmd = [sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket", str(sock),
               "--state-dir", str(state)]
        env = {**os.environ, **lab_env(moto.endpoint, lab.region)}
        want = collections.Counter(l.id for lines in expected for l in lines) + \
            collections.Counter(event_id(f["findingArn"]) for f in findings)
        ok = True
        for run in ("first", "second", "third"):
            if run == "third":
                added = lab.put(app, "i-0a1", 5) + lab.put(far, "i-0d4", 5, region=other)
                new = lab.findings(3, updated=dt.datetime.now(dt.timezone.utc))
                lab.queue_findings(new)
                want = collections.Counter(l.id for l in added) + collections.Counter(event_id(f["findingArn"])
                                                                                      for f in new)
            elif run == "second":
                want = collections.Counter()
            before = len(engine.datagrams)
            code = subprocess.run(cmd, env=env).returncode
            time.sleep(0.3)
            got = collections.Counter(event_id(d[len(b"1:Wazuh-AWS:"):].decode("utf-8", "replace"))
                                      for d in engine.datagrams[before:])
            good = code == 0 and got == want
            ok = ok and good
            print(f"lab: {run} run: expected {sum(want.values())} events, received {sum(got.values())} "
                  f"({'OK' if good else 'MISMATCH'}), exit code {code}")
        if engine.datagrams:
            print(f"first event: {engine.datagrams[0][:300].decode('utf-8', 'replace')}")
    print("demo: OK, every event once, nothing on the second run, only the new ones on the third" if ok
          else "demo: FAILED")
    return 0 if ok else 1
