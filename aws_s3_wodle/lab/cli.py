"""`aws-s3-wodle lab demo` and `aws-s3-wodle lab up`: the local lab from one command.

demo: start moto, build a Security Lake subscriber, fill it, run the wodle once (as its own process,
over HTTP and a real datagram socket) and show what the engine received; exit 0 only when every event
arrived exactly once and the queue is empty.
up:   the same lab, left running, with the environment and ossec.conf to point the wodle at it.
bucket-types: one bucket per <bucket type> layout, read twice (everything once, then nothing new).
services: CloudWatch Logs groups and Inspector v2 findings, read three times (all, nothing, only the new).
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from aws_s3_wodle.lab.buckets import DELIVERIES, BucketsLab
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.security_lake import SecurityLakeLab, find_samples, lab_env
from aws_s3_wodle.lab.server import MotoServer

HEADER = b"1:Wazuh-AWS:"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aws-s3-wodle lab", description="Local AWS lab (moto) for aws-s3-wodle.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("demo", "build the lab, run the wodle once against it, show what was delivered"),
                       ("up", "build the lab and keep it running until Ctrl-C")):
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument("--dir", default=".lab", help="working folder for ossec.conf and the socket (default %(default)s)")
        s.add_argument("--rows", type=int, default=5000, help="generated OCSF rows in all (default %(default)s)")
        s.add_argument("--objects", type=int, default=2, help="generated objects to split the rows into (default %(default)s)")
        s.add_argument("--no-samples", action="store_true", help="do not load the real AWS samples from ../shared")
        s.add_argument("--region", default="us-east-1")
        s.add_argument("--source", choices=("security_lake", "buckets", "security_hub"), default="security_lake",
                       help="which subscriber to demonstrate (default %(default)s); buckets: one object of every "
                            "format, plain, gzip and zip; security_hub: Firehose objects of findings")
        s.add_argument("--delivery", choices=DELIVERIES, default="sqs",
                       help="buckets/security_hub: how the bucket notifies the queue (default %(default)s)")
    b = sub.add_parser("bucket-types", help="buckets in every <bucket type> layout: run the wodle twice, show what arrived",
                       description="One bucket per type (CloudTrail, VPC flow, Config, GuardDuty, WAF, ALB, CLB, "
                                   "NLB, S3 server access, Cisco Umbrella, custom) over several days, accounts and "
                                   "regions; the wodle reads them all, then again (nothing new).")
    b.add_argument("--dir", default=".lab", help="working folder (default %(default)s)")
    b.add_argument("--days", type=int, default=3, help="days of logs per bucket (default %(default)s)")
    b.add_argument("--records", type=int, default=5, help="records per object (default %(default)s)")
    v = sub.add_parser("services", help="CloudWatch Logs and Inspector v2 in the lab: run the wodle three times",
                       description="Two log groups in two regions (JSON and text messages) and Inspector v2 "
                                   "findings; the wodle reads all, then nothing, then only what was added.")
    v.add_argument("--dir", default=".lab", help="working folder (default %(default)s)")
    v.add_argument("--events", type=int, default=200, help="log events in all (default %(default)s)")
    return p


def build_buckets(args: argparse.Namespace, endpoint: str) -> BucketsLab:
    lab = BucketsLab(endpoint=endpoint, region=args.region, delivery=args.delivery).create()
    if args.source == "security_hub":
        for i in range(max(1, args.objects)):
            lab.add_security_hub(max(1, args.rows // 3 // max(1, args.objects)), 3, seed=i,
                                 layout=("concatenated", "lines")[i % 2])
    else:
        lab.add_samples(("plain", "gzip", "zip"), records=max(1, args.rows // 24))
    lab.subscriber = args.source
    print(f"lab: moto at {endpoint}; bucket {lab.bucket} notifying queue {lab.queue_name} ({args.delivery})")
    print(f"lab: {len(lab.objects)} objects ({', '.join(sorted({o.kind for o in lab.objects}))}), "
          f"{sum(o.rows for o in lab.objects)} records")
    return lab


def _workdir(args: argparse.Namespace) -> Path:
    """--dir, made if need be: where the lab writes its ossec.conf, socket and state."""
    work = Path(args.dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    return work


def _events(datagrams: list[bytes]) -> list[dict]:
    """The events among what the engine received (the datagrams with the `1:Wazuh-AWS:` header)."""
    return [json.loads(d[len(HEADER):]) for d in datagrams if d.startswith(HEADER)]


def _show_first(events: list[dict], width: int) -> None:
    if events:
        sample = json.dumps(events[0])
        print(f"first event: {HEADER.decode()}{sample[:width]}{'...' if len(sample) > width else ''}")


def buckets_demo(args: argparse.Namespace) -> int:
    from aws_s3_wodle.lab.buckets_prefix import build_all, demo_blocks, event_id
    work = _workdir(args)
    conf, sock, state = work / "buckets-ossec.conf", work / "queue" / "sockets" / "queue", work / "buckets-state"
    shutil.rmtree(state, ignore_errors=True)  # a fresh lab: what an earlier demo read is no state of this one
    with MotoServer() as moto, DatagramEngine(str(sock)) as engine:
        labs = build_all(moto.endpoint, days=args.days, records=args.records)
        since = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=args.days - 1)
        conf.write_text(demo_blocks(labs, since))
        print(f"lab: moto at {moto.endpoint}; {len(labs)} buckets, {sum(len(l.objects) for l in labs.values())} "
              f"objects; ossec.conf: {conf}")
        cmd = [sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket", str(sock),
               "--state-dir", str(state)]
        env = {**os.environ, **lab_env(moto.endpoint, "us-east-1")}
        codes = []
        for run in ("first", "second"):
            before = len(engine.datagrams)
            print(f"lab: {run} run: aws-s3-wodle --config {conf} --once --state-dir {state}")
            codes.append(subprocess.run(cmd, env=env).returncode)
            time.sleep(0.3)
            print(f"lab: the {run} run delivered {len(engine.datagrams) - before} events")
        events = _events(engine.datagrams)
    ok = all(c == 0 for c in codes)
    print(f"\n{'type':16} {'expected':>8} {'received':>8}  aws.source")
    for kind, lab in labs.items():
        expected = collections.Counter(i for o in lab.objects for i in o.ids)
        mine = [e for e in events if e["aws"]["log_info"]["s3bucket"] == lab.bucket]
        got = collections.Counter(event_id(kind, e) for e in mine)
        ok = ok and got == expected
        print(f"{kind:16} {sum(expected.values()):8d} {sum(got.values()):8d}  "
              f"{', '.join(sorted({e['aws']['source'] for e in mine}))}")
    _show_first(events, 500)
    print("demo: OK, every record delivered once, nothing on the second run" if ok else "demo: FAILED")
    return 0 if ok else 1


def build(args: argparse.Namespace, endpoint: str) -> SecurityLakeLab:
    if args.source != "security_lake":
        return build_buckets(args, endpoint)  # type: ignore[return-value]
    lab = SecurityLakeLab(endpoint=endpoint, region=args.region).create()
    samples = [] if args.no_samples else find_samples()
    for path in samples:
        lab.add_sample(path)
    per_object = max(1, args.rows // max(1, args.objects)) if args.rows else 0
    for i in range(args.objects if args.rows else 0):
        lab.add_generated(per_object, version="1.1.0" if i % 2 == 0 else "1.0.0-rc.2", seed=i)
    rows = sum(o.rows for o in lab.objects)
    print(f"lab: moto at {endpoint}; bucket {lab.bucket}; queue {lab.queue_name}; role {lab.role_arn}")
    print(f"lab: {len(lab.objects)} objects ({len(samples)} real AWS samples, {len(lab.objects) - len(samples)} "
          f"generated), {rows} OCSF rows, one notification each")
    return lab


def demo(args: argparse.Namespace) -> int:
    work = _workdir(args)
    conf = work / "ossec.conf"
    sock = work / "queue" / "sockets" / "queue"
    with MotoServer() as moto, DatagramEngine(str(sock)) as engine:
        lab = build(args, moto.endpoint)
        conf.write_text(lab.ossec_conf())
        cmd = [sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--run-on-start",
               "--socket", str(sock), "--sqs-wait", "1", "--state-dir", str(work / "state")]
        print(f"lab: running: aws-s3-wodle --config {conf} --once --run-on-start --socket {sock}")
        started = time.monotonic()
        proc = subprocess.run(cmd, env={**os.environ, **lab_env(moto.endpoint, lab.region)})
        elapsed = time.monotonic() - started
        time.sleep(0.2)  # let the engine thread drain its socket
        expected = sum(o.rows for o in lab.objects)
        got = engine.datagrams
        events = _events(got)
        depth = lab.queue_depth()
    print(f"\nengine: received {len(got)} datagrams ({len(events)} '1:Wazuh-AWS:' events) of {expected} expected "
          f"in {elapsed:.1f} s; queue depth now {depth}; wodle exit code {proc.returncode}")
    by_class = collections.Counter(_kind(e) for e in events)
    for name, count in by_class.most_common():
        print(f"  {count:6d}  {name}")
    _show_first(events, 600)
    ok = proc.returncode == 0 and len(events) == expected and depth == 0
    print("demo: OK, every event delivered once and the queue is empty" if ok else "demo: FAILED")
    return 0 if ok else 1


def _kind(event: dict) -> str:
    if event.get("integration") == "aws":  # a wrapped event: its source and the folder of its object
        aws = event.get("aws", {})
        return f"aws.source={aws.get('source')} from {aws.get('log_info', {}).get('log_file', '?').split('/')[1]}"
    return f"{event.get('class_name')} (OCSF {event.get('metadata', {}).get('version')})"


def up(args: argparse.Namespace) -> int:
    work = _workdir(args)
    with MotoServer() as moto:
        lab = build(args, moto.endpoint)
        conf = work / "ossec.conf"
        conf.write_text(lab.ossec_conf())
        print(f"\nossec.conf written to {conf}. In another shell:")
        for k, v in lab_env(moto.endpoint, lab.region).items():
            print(f"  export {k}={v}")
        print(f"  aws-s3-wodle --config {conf} --once --run-on-start --output -\nCtrl-C stops the lab.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bucket-types":
        return buckets_demo(args)
    if args.command == "services":
        from aws_s3_wodle.lab.services import demo as services_demo
        return services_demo(_workdir(args), args.events)
    return demo(args) if args.command == "demo" else up(args)
