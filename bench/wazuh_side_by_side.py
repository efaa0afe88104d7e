#!/usr/bin/env python3
"""The same Security Lake objects through Wazuh's own aws-s3 script and through aws-s3-wodle, side by side.

Wazuh's script is not part of this project (GPLv2): fetch a Wazuh source tree yourself, e.g.
`git clone --depth 1 -b v4.14.7 https://github.com/wazuh/wazuh`, and pass it with --wazuh. At run time its
`wodles/` folder is copied into a temporary Wazuh root (the script finds its root from its own path, and
sends to <root>/queue/sockets/queue), beside a stub `bin/wazuh-control` that answers its version.

For each tool, a fresh Security Lake lab (moto's server) holds the scenario's objects, one notification
each; every AWS call goes through the lab's proxy with the same added delay (scenarios.py); the events go
to a real Unix datagram socket read by a separate process that checks every event arrived exactly once.
Wazuh's script is run as a manager runs it (`--subscriber security_lake --queue ... --iam_role_arn ...
--external_id ...`), ours with its defaults and --sqs-wait 0. Measured: launch to the last event received
(Wazuh's script then waits out a final 20 s long poll before it exits; that wait is not counted).

Usage: python bench/wazuh_side_by_side.py --wazuh /path/to/wazuh [--scenario 200x1k] [--latency-ms 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenarios as sc  # noqa: E402
from throughput import Reader  # noqa: E402

_CONTROL = "#!/bin/sh\nprintf 'WAZUH_VERSION=\"{version}\"\\nWAZUH_REVISION=\"bench\"\\nWAZUH_TYPE=\"server\"\\n'\n"


def wazuh_root(source: Path, version: str) -> Path:
    """A temporary Wazuh root holding a copy of `source`'s wodles/ and a stub bin/wazuh-control."""
    wodles = source / "wodles" if (source / "wodles").is_dir() else source
    if not (wodles / "aws" / "aws_s3.py").is_file():
        raise SystemExit(f"{source}: no wodles/aws/aws_s3.py there; pass the root of a Wazuh source tree")
    root = Path(tempfile.mkdtemp(prefix="wazuh-root-"))
    shutil.copytree(wodles, root / "wodles", ignore=shutil.ignore_patterns("tests", "*.db", "__pycache__"))
    (root / "bin").mkdir()
    control = root / "bin" / "wazuh-control"
    control.write_text(_CONTROL.format(version=version))
    control.chmod(0o755)
    (root / "queue" / "sockets").mkdir(parents=True)
    return root


def run_wazuh(moto, root: Path, paths: list, latency_ms: float, debug: int) -> dict:
    from aws_s3_wodle.lab.faults import FaultProxy
    from aws_s3_wodle.lab.security_lake import lab_env
    lab = sc.stage(moto.endpoint, paths)
    sock = root / "queue" / "sockets" / "queue"
    sock.unlink(missing_ok=True)  # the previous round's reader left its socket file
    reader = Reader(str(sock))
    cmd = [sys.executable, str(root / "wodles" / "aws" / "aws_s3.py"), "--subscriber", "security_lake",
           "--queue", lab.queue_name, "--iam_role_arn", lab.role_arn, "--external_id", lab.external_id,
           "--iam_role_duration", "3600", "-d", str(debug)]
    with FaultProxy(moto.endpoint, latency=latency_ms / 1000) as proxy, \
            tempfile.TemporaryFile() as log:
        env = {**os.environ, **lab_env(proxy.endpoint, lab.region)}
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        log.seek(0)
        tail = log.read().decode(errors="replace")[-2000:]
    got = reader.stop()
    return {"tool": "Wazuh aws-s3 script", "exit": code, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "delivered": got.get("count", 0), "unique": got.get("unique_uids", 0),
            "to_last": got["last"] - started if got.get("last") else 0.0, "depth": lab.queue_depth(), "log": tail}


def run_ours(moto, scenario, paths: list, latency_ms: float) -> dict:
    args = argparse.Namespace(sqs_wait=0, wodle_arg=[], profile="")
    work = Path(tempfile.mkdtemp(prefix="wodle-side-"))
    try:
        r = sc.run_once(moto, scenario, paths, latency_ms, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"tool": "aws-s3-wodle", "exit": r.exit_code, "wall": r.wall, "cpu": r.cpu, "delivered": r.delivered,
            "unique": r.unique, "to_last": r.to_last_event, "depth": r.queue_depth, "log": ""}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wazuh", required=True, help="root of a Wazuh source tree (its wodles/aws/aws_s3.py is run)")
    p.add_argument("--wazuh-version", default="v4.14.7", help="what the stub wazuh-control answers (default %(default)s)")
    p.add_argument("--scenario", default="200x1k", help="OBJECTSxROWS (default %(default)s)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added delay per AWS call (default %(default)s)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each tool; the fastest kept (default %(default)s)")
    p.add_argument("--debug", type=int, default=1, help="Wazuh script's -d level (default %(default)s)")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "aws-s3-wodle-bench"))
    args = p.parse_args(argv)
    scenario, paths = sc.one_scenario(args.scenario, args.workdir)
    root = wazuh_root(Path(args.wazuh), args.wazuh_version)
    from aws_s3_wodle.lab.server import MotoServer
    best: dict = {}
    try:
        with MotoServer() as moto:
            for attempt in range(args.repeat):
                for run in (lambda: run_wazuh(moto, root, paths, args.latency_ms, args.debug),
                            lambda: run_ours(moto, scenario, paths, args.latency_ms)):
                    r = run()
                    r["ok"] = r["delivered"] == r["unique"] == scenario.total and r["depth"] == 0
                    print(f"{r['tool']}, run {attempt + 1}: last event {r['to_last']:.2f} s after launch, exit "
                          f"{r['exit']} after {r['wall']:.1f} s, {r['delivered']}/{scenario.total} events "
                          f"({r['unique']} unique), queue depth {r['depth']}", flush=True)
                    if not r["ok"]:
                        print(r["log"], flush=True)
                    old = best.get(r["tool"])
                    if old is None or (r["ok"] and (not old["ok"] or r["to_last"] < old["to_last"])):
                        best[r["tool"]] = r
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{scenario.name} rows at {args.latency_ms:g} ms per AWS call, launch to the last event "
          f"(best of {args.repeat}):\n")
    print("| tool | launch to last event s | events/s | objects/s | CPU s | exact |")
    print("|---|---:|---:|---:|---:|---|")
    for r in best.values():
        t = r["to_last"] or float("inf")
        print(f"| {r['tool']} | {r['to_last']:.2f} | {scenario.total / t:,.0f} | {scenario.objects / t:.1f} | "
              f"{r['cpu']:.1f} | {'yes' if r['ok'] else 'NO'} |")
    ours, theirs = best.get("aws-s3-wodle"), best.get("Wazuh aws-s3 script")
    if ours and theirs and ours["to_last"] and theirs["to_last"]:
        print(f"\naws-s3-wodle / Wazuh: {theirs['to_last'] / ours['to_last']:.1f}x as fast")
    return 0 if all(r["ok"] for r in best.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
