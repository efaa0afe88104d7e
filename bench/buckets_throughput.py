"""Bucket blocks: throughput of one pass, the cost of a pass with nothing new, and memory on a big object.

    .venv/bin/python bench/buckets_throughput.py [--objects 40] [--records 2000] [--big-lines 1000000]

Builds CloudTrail and VPC flow buckets in moto's server (the lab), runs `aws-s3-wodle --once` as its own
process (over HTTP, into a JSON-lines file), then again (nothing new), and decodes the same objects
in-process with the record parsers alone. Figures are ratios within this run: the full pass against
decoding alone (what S3, state, shaping and the sink add) and the second pass against the first. Then one
VPC flow object of --big-lines lines is read, and the wodle's peak RSS (the kernel's VmHWM of its own
process, polled until it exits) is printed next to its peak on a pass with nothing to read.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from aws_s3_wodle.config.buckets import format_log_date
from aws_s3_wodle.lab.buckets_prefix import VPC_DEFAULT_HEADER, BucketLab
from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.lab.server import MotoServer
from aws_s3_wodle.sources.listing.layouts import TYPES

from peak_rss import run_watched  # bench/peak_rss.py, beside this script


def run_once(conf: Path, out: str, state: Path, env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the wodle's own process, stderr)."""
    code, peak, text, wall = run_watched([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once",
                                          "--output", out, "--state-dir", str(state)], env)
    if code != 0:
        raise SystemExit(text)
    return wall, peak, text


def throughput(moto: MotoServer, work: Path, env: dict, args: argparse.Namespace, today: dt.date) -> None:
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
        first, _, _ = run_once(conf, str(out), state, env)
        lines = sum(1 for _ in out.open("rb"))
        if lines != events:
            raise SystemExit(f"{kind}: {lines} events delivered, {events} expected")
        second, _, _ = run_once(conf, str(out), state, env)
        s3 = lab.client()
        bodies = [s3.get_object(Bucket=lab.bucket, Key=o.key)["Body"].read() for o in lab.objects]
        started = time.perf_counter()
        decoded = sum(1 for body, o in zip(bodies, lab.objects) for _ in TYPES[kind].parse(io.BytesIO(body), o.key))
        decode = time.perf_counter() - started
        if decoded != events:
            raise SystemExit(f"{kind}: decoded {decoded} records, {events} expected")
        mb = sum(map(len, bodies)) / 1e6
        print(f"{kind:10} {events:8d} {mb:7.1f} {first:7.2f} {events / first:9.0f} {decode:8.2f} "
              f"{first / decode:11.2f} {second:10.2f} {second / first:8.3f}")


def big_object(moto: MotoServer, work: Path, env: dict, lines: int, today: dt.date) -> None:
    lab = BucketLab(moto.endpoint).create()
    path = work / "big.log.gz"
    rnd = random.Random(1)
    raw = 0
    with gzip.open(path, "wb", compresslevel=6) as gz:
        gz.write((VPC_DEFAULT_HEADER + "\n").encode())
        for i in range(lines):
            line = (f"2 123456789012 eni-{rnd.getrandbits(40):010x} 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255} "
                    f"10.0.1.5 {1024 + i % 60000} 443 6 {rnd.randrange(1, 99)} {rnd.randrange(40, 99999)} "
                    f"1700000000 1700000060 {'ACCEPT' if i % 7 else 'REJECT'} OK\n").encode()
            raw += len(line)
            gz.write(line)
    key = f"AWSLogs/123456789012/vpcflowlogs/us-east-1/{today:%Y/%m/%d}/big.log.gz"
    lab.client().upload_file(str(path), lab.bucket, key)
    conf = work / "big.conf"
    conf.write_text(lab.ossec_conf([{"type": "vpcflow", "only_logs_after": format_log_date(today)}]))
    seconds, peak, err = run_once(conf, os.devnull, work / "big-state", env)
    if f"{lines} events" not in err:
        raise SystemExit(f"big object: not every line delivered:\n{err}")
    _, idle, _ = run_once(conf, os.devnull, work / "big-state", env)  # nothing new: the baseline
    print(f"\nbig VPC flow object: {path.stat().st_size / 1e6:.0f} MB gzip, {raw / 1e6:.0f} MB of lines, {lines} events "
          f"in {seconds:.1f} s ({lines / seconds:.0f} events/s); wodle peak RSS {peak:.0f} MB, {idle:.0f} MB on a pass "
          f"with nothing new: the object adds {peak - idle:.0f} MB, {(peak - idle) / (raw / 1e6):.2f} MB per MB of log")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=40)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--big-lines", type=int, default=1_000_000)
    args = ap.parse_args()
    today = dt.datetime.now(dt.timezone.utc).date()
    with MotoServer() as moto, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **lab_env(moto.endpoint, "us-east-1")}
        throughput(moto, Path(tmp), env, args, today)
        if args.big_lines:
            big_object(moto, Path(tmp), env, args.big_lines, today)
    return 0


if __name__ == "__main__":
    sys.exit(main())
