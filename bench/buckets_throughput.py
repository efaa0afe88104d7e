"""Bucket blocks: throughput of one pass, and what a pass with nothing new costs, measured in one run.

    .venv/bin/python bench/buckets_throughput.py [--objects 40] [--records 2000]

Builds CloudTrail and VPC flow buckets in moto's server (the lab), runs `aws-s3-wodle --once` into a
JSON-lines file (its own process, over HTTP), then again (nothing new), and decodes the same objects
in-process with the record parsers alone. Figures are ratios within this run: the full pass against
decoding alone (what S3, state, shaping and the sink add), and the second pass against the first.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aws_s3_wodle.bucket_config import format_log_date
from aws_s3_wodle.lab.buckets_prefix import BucketLab
from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.lab.server import MotoServer
from aws_s3_wodle.sources.buckets.types import TYPES


def run_once(conf: Path, out: Path, state: Path, env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--output",
                           str(out), "--state-dir", str(state)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=40)
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()
    today = dt.datetime.now(dt.timezone.utc).date()
    with MotoServer() as moto, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, **lab_env(moto.endpoint, "us-east-1")}
        print(f"{'type':10} {'events':>8} {'MB gz':>7} {'pass s':>7} {'events/s':>9} {'decode s':>8} "
              f"{'pass/decode':>11} {'2nd pass s':>10} {'2nd/1st':>8}")
        for kind in ("cloudtrail", "vpcflow"):
            lab = BucketLab(moto.endpoint).create()
            for i in range(args.objects):
                lab.add(kind, day=today - dt.timedelta(days=i % 3), records=args.records,
                        region=("us-east-1", "eu-west-1")[i % 2])
            events = sum(len(o.ids) for o in lab.objects)
            conf = work / f"{kind}.conf"
            conf.write_text(lab.ossec_conf([{"type": kind, "only_logs_after": format_log_date(today - dt.timedelta(days=3))}]))
            out, state = work / f"{kind}.jsonl", work / f"{kind}-state"
            first = run_once(conf, out, state, env)
            lines = sum(1 for _ in out.open("rb"))
            assert lines == events, (lines, events)
            second = run_once(conf, out, state, env)
            s3 = lab.client()
            bodies = [s3.get_object(Bucket=lab.bucket, Key=o.key)["Body"].read() for o in lab.objects]
            started = time.perf_counter()
            decoded = sum(1 for body, o in zip(bodies, lab.objects) for _ in TYPES[kind].parse(io.BytesIO(body), o.key))
            decode = time.perf_counter() - started
            assert decoded == sum(1 for o in lab.objects for _ in set(o.ids)) or decoded <= events
            mb = sum(map(len, bodies)) / 1e6
            print(f"{kind:10} {events:8d} {mb:7.1f} {first:7.2f} {events / first:9.0f} {decode:8.2f} "
                  f"{first / decode:11.2f} {second:10.2f} {second / first:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
