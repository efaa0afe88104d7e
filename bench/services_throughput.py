"""CloudWatch Logs and Inspector v2 through the service blocks: lab (moto) -> wodle -> Unix datagram socket.

    .venv/bin/python bench/services_throughput.py [--events 50000] [--streams 5] [--findings 5000]

Writes `--events` log events over `--streams` streams of one group and queues `--findings` Inspector findings,
runs `aws-s3-wodle --once` (its own process) into a real datagram socket, checks every event arrived exactly
once, and prints events/s of the whole run (process start to exit) and the API calls it made (counted by the
lab's proxy). moto answers every call in Python on the same 2 cores: the figures bound the wodle's overhead,
not AWS's speed.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aws_s3_wodle.config.buckets import format_log_date
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.faults import FaultProxy
from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.lab.server import MotoServer
from aws_s3_wodle.lab.services import ServicesLab, event_id


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=50000)
    p.add_argument("--streams", type=int, default=5)
    p.add_argument("--findings", type=int, default=5000)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aws-s3-wodle-services-bench-"))
    ok = True
    with MotoServer() as moto, FaultProxy(moto.endpoint) as proxy, \
            DatagramEngine(str(work / "queue"), rcvbuf=8 << 20) as engine:
        lab = ServicesLab(moto.endpoint)
        group = lab.group("bench")
        lines = []
        for s in range(args.streams):
            lines += lab.put(group, f"stream-{s}", args.events // args.streams, same_time=4)
        findings = lab.findings(args.findings)
        lab.queue_findings(findings)
        since = format_log_date(dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))
        for kind, block, expected in (
                ("cloudwatchlogs", lab.block("cloudwatchlogs", aws_log_groups=group, only_logs_after=since),
                 collections.Counter(l.id for l in lines)),
                ("inspector", lab.block("inspector", only_logs_after=since),
                 collections.Counter(event_id(f["findingArn"]) for f in findings))):
            conf = work / f"{kind}.conf"
            conf.write_text(lab.ossec_conf(block))
            engine.datagrams.clear()
            calls = len(proxy.seen)
            env = {**os.environ, **lab_env(proxy.endpoint, lab.region)}
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket",
                                   engine.path, "--state-dir", str(work / "state")], env=env, capture_output=True,
                                  text=True)
            seconds = time.monotonic() - started
            engine.wait_for(sum(expected.values()), 30)
            got = collections.Counter(event_id(d[len(b"1:Wazuh-AWS:"):].decode("utf-8", "replace"))
                                      for d in engine.datagrams)
            good = proc.returncode == 0 and got == expected
            ok = ok and good
            n = sum(expected.values())
            print(f"{kind:15} {n:7d} events in {seconds:6.2f} s = {n / seconds:8.0f} events/s (whole process), "
                  f"{len(proxy.seen) - calls} AWS calls, {'exactly once' if good else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
