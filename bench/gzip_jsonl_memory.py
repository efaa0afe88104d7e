"""Memory bound of the buckets subscriber: a large gzip JSON-lines object through the lab into a socket.

    .venv/bin/python bench/gzip_jsonl_memory.py              # a 200 MB gzip object (its compressed size)
    .venv/bin/python bench/gzip_jsonl_memory.py --mb 20      # a quick run

Builds the lab (moto's server, a bucket whose S3 notifications go to an SQS queue), writes one gzip
JSON-lines object of CloudTrail-like records of about --mb MB compressed (generated on disk, streamed),
uploads it, runs `aws-s3-wodle --once` as its own process into a counting datagram socket and prints:
the object's compressed and uncompressed sizes, the events delivered (all of them must arrive), the
wodle's peak RSS (the kernel's VmHWM of its process), the same process's peak RSS on an empty queue
(its baseline) and events/s. Exits 1 when an event is missing or the peak RSS is 200 MB or more.
"""
from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import orjson

from aws_s3_wodle.lab.buckets import BucketsLab
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.lab.server import MotoServer

from peak_rss import run_watched  # bench/peak_rss.py, beside this script

LIMIT_MB = 200
HEADER = b"1:Wazuh-AWS:"


class CountingEngine(DatagramEngine):
    """Counts what arrives instead of keeping it (millions of datagrams would blow the bench's own memory)."""

    count = 0
    last = b""

    def received(self, data: bytes) -> None:
        self.count += 1
        self.last = data


_EVENTS = ("GetObject", "PutObject", "ListBuckets", "AssumeRole", "DescribeInstances", "ConsoleLogin")
_AGENTS = ("aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79", "Boto3/1.34.69 md/Botocore#1.34.69", "console.amazonaws.com")


def write_object(path: Path, target_mb: float, seed: int = 1) -> tuple[int, int, int]:
    """Gzip JSON lines until the compressed file reaches target_mb; returns (records, raw bytes, gz bytes)."""
    rng = random.Random(seed)
    bits = rng.getrandbits
    target = int(target_mb * 1_000_000)
    records = raw = 0
    with open(path, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
        while out.tell() < target:
            lines = []
            for _ in range(2000):
                account = "%012d" % (bits(36) % 10**12)
                lines.append(orjson.dumps({
                    "eventVersion": "1.08", "eventID": "%032x" % bits(128), "n": records,
                    "eventTime": "2024-05-01T%02d:%02d:%02dZ" % (bits(5) % 24, bits(6) % 60, bits(6) % 60),
                    "eventSource": "s3.amazonaws.com", "eventName": _EVENTS[bits(3) % 6], "awsRegion": "us-east-1",
                    "sourceIPAddress": "%d.%d.%d.%d" % (bits(8), bits(8), bits(8), bits(8)),
                    "userAgent": _AGENTS[bits(2) % 3], "recipientAccountId": account,
                    "userIdentity": {"type": "AssumedRole", "principalId": "AROA%016X" % bits(64),
                                     "arn": f"arn:aws:sts::{account}:assumed-role/Admin/user{bits(10)}",
                                     "accountId": account},
                    "requestParameters": {"bucketName": "data-%x" % bits(16), "key": "k/%x" % bits(40)},
                    "responseElements": None, "readOnly": bool(bits(1)),
                    "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::data/%x" % bits(40)}]}))
                records += 1
            chunk = b"\n".join(lines) + b"\n"
            raw += len(chunk)
            gz.write(chunk)
    return records, raw, path.stat().st_size


def run_wodle(conf: Path, sock: str, env: dict) -> tuple[int, float, str, float]:
    """The wodle as its own process; (exit code, peak RSS in MB of its own process, stderr, wall seconds)."""
    return run_watched([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket", sock,
                        "--sqs-wait", "1"], env)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=float, default=200, help="compressed size of the object in MB (default %(default)s)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MotoServer() as moto:
        work = Path(tmp)
        obj = work / "big.jsonl.gz"
        t = time.monotonic()
        records, raw, size = write_object(obj, args.mb)
        print(f"object: {size / 1e6:.1f} MB gzip, {raw / 1e6:.1f} MB of JSON lines, {records} records "
              f"(generated in {time.monotonic() - t:.1f} s)")
        lab = BucketsLab(moto.endpoint).create()
        env = {**os.environ, **lab_env(moto.endpoint, lab.region)}
        conf = work / "ossec.conf"
        conf.write_text(lab.ossec_conf())
        sock = str(work / "queue")
        with CountingEngine(sock) as engine:
            code, baseline, err, _ = run_wodle(conf, sock, env)  # drains the s3:TestEvent: an idle run
            if code != 0:
                print(err)
                return 1
            t = time.monotonic()
            with open(obj, "rb") as body:  # one PUT: a multipart upload makes moto announce the object twice
                lab.client("s3").put_object(Bucket=lab.bucket, Key=f"{lab.prefix}big/cloudtrail.jsonl.gz", Body=body)
            print(f"uploaded in {time.monotonic() - t:.1f} s; running the wodle")
            code, peak, err, wall = run_wodle(conf, sock, env)
            deadline = time.monotonic() + 10
            while engine.count < records and time.monotonic() < deadline:
                time.sleep(0.05)
            count, last = engine.count, engine.last
        summary = next((line for line in err.splitlines() if " done: " in line), err[-2000:])
        rate = re.search(r"\(([\d.]+) events/s\)", summary)
        print(summary)
        print(f"delivered {count} of {records} events; exit code {code}; queue depth {lab.queue_depth()}")
        print(f"peak RSS of the wodle: {peak:.0f} MB for a {size / 1e6:.0f} MB gzip object "
              f"({raw / 1e6:.0f} MB uncompressed); the same process on an empty queue: {baseline:.0f} MB; "
              f"ratio peak/object {peak / (size / 1e6):.2f}, peak/uncompressed {peak / (raw / 1e6):.3f}")
        print(f"throughput: {rate.group(1) if rate else '?'} events/s in the run "
              f"({raw / 1e6 / wall:.1f} MB/s of JSON lines over the process's {wall:.1f} s wall time)")
        ok = code == 0 and count == records and b'"n":%d' % (records - 1) in last and peak < LIMIT_MB
        print("bench: OK" if ok else f"bench: FAILED (peak RSS must stay under {LIMIT_MB} MB, every event must arrive)")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
