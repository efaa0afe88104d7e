#!/usr/bin/env python3
"""Where one scenario's wall time goes: the wodle's debug log, each line timed from the process's start.

Runs one scenario of scenarios.py (same lab, latency proxy and reader) with `--debug 1`, the wodle's log
lines stamped in milliseconds since its spawn and named by thread (through a `sitecustomize` module on
the wodle's PYTHONPATH, written to a temporary directory: the wodle itself is unchanged), then prints
them with the reader's first and last datagram and the process's exit on the same clock.

Usage: python bench/timeline.py [--scenario 10x20k] [--latency-ms 20] [--wodle-arg=--convert-threads=3]
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

_STAMPS = '''
import logging, os
_T0 = float(os.environ["WODLE_TIMELINE_T0"])


class _Stamped(logging.Formatter):
    def format(self, record):
        return f"{(record.created - _T0) * 1000:8.0f} ms  {record.threadName[:24]:24}  {record.getMessage()[:150]}"


_set = logging.Handler.setFormatter
logging.Handler.setFormatter = lambda self, fmt: _set(self, _Stamped())
'''


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="10x20k", help="OBJECTSxROWS (default %(default)s)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added delay per AWS call (default %(default)s)")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "aws-s3-wodle-bench"))
    p.add_argument("--wodle-arg", action="append", default=[], help="extra argument for the wodle (repeatable)")
    args = p.parse_args(argv)
    scenario, paths = sc.one_scenario(args.scenario, args.workdir)
    stamps = Path(tempfile.mkdtemp(prefix="wodle-timeline-"))
    (stamps / "sitecustomize.py").write_text(_STAMPS)
    spawned = {}
    plain_popen = subprocess.Popen

    def popen(cmd, env=None, **kw):  # run_once's spawn of the wodle: stamp its start
        spawned["t0"] = time.time()
        spawned["mono"] = time.monotonic()
        env = dict(env or os.environ, PYTHONPATH=str(stamps), WODLE_TIMELINE_T0=repr(spawned["t0"]))
        return plain_popen(cmd, env=env, **kw)

    run_args = argparse.Namespace(sqs_wait=0, wodle_arg=["--debug", "1", *args.wodle_arg], profile="")
    work = Path(tempfile.mkdtemp(prefix="wodle-timeline-run-"))
    from aws_s3_wodle.lab.server import MotoServer
    sc.subprocess.Popen = popen
    try:
        with MotoServer() as moto:
            r = sc.run_once(moto, scenario, paths, args.latency_ms, run_args, work)
    finally:
        sc.subprocess.Popen = plain_popen
        shutil.rmtree(stamps, ignore_errors=True)
    for log in work.glob("wodle-*.log"):
        print(log.read_text(errors="replace").rstrip())
    shutil.rmtree(work, ignore_errors=True)
    print(f"{r.to_first_event * 1000:8.0f} ms  {'(reader)':24}  first event received")
    print(f"{r.to_last_event * 1000:8.0f} ms  {'(reader)':24}  last event received")
    print(f"{r.wall * 1000:8.0f} ms  {'(bench)':24}  process ended, exit {r.exit_code}; CPU {r.cpu:.2f} s; "
          f"{r.rate:,.0f} events/s start to exit, {r.stream_rate:,.0f} first to last event; {'ok' if r.ok else 'NOT CLEAN'}")
    return 0 if r.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
