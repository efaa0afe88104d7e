#!/usr/bin/env python3
"""Where a run's time goes, from a py-spy profile of the wodle (`bench/scenarios.py --profile DIR`).

py-spy samples every thread, idle ones included (`--idle --threads --format raw`: one line per distinct
stack, `frame;frame;... count`). Each stack is put in one role (the thread it ran on: the main loop, an
object's worker, the receive poll, the lease keeper, a read-ahead thread) and one activity (the innermost
frame that names one: an SQS call, the S3 download, decoding, sending, a checkpoint, a wait...). Samples
divided by the rate are seconds of that thread's life; divided by the objects, seconds per object.

The main loop is serial (receive -> submit -> settle -> delete -> receive), so its activities add up to the
run's wall time: they are the critical path. The workers' time overlaps it (two objects in flight).

Usage: python bench/profile_summary.py PROFILE.txt --rate 200 --objects 200
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from typing import Optional

ROLES = [  # (role, regex on the whole stack), first match
    ("main loop", re.compile(r"_run_module_as_main")),
    ("object workers", re.compile(r"ObjectPipeline\._start\.<locals>\.work")),
    ("receive poll", re.compile(r"_Poll\._run")),
    ("lease keeper", re.compile(r"LeaseKeeper\._loop")),
    ("read-ahead / conversion", re.compile(r"prefetched\.<locals>\.produce|concurrent/futures/thread\.py")),
]

ACTIVITIES = [  # (activity, regex on one frame), the innermost frame that matches wins
    ("interpreter exit", r"finalize\._exitfunc|_shutdown \(threading"),
    ("imports", r"_find_and_load|<module> \("),
    ("thread start", r"Thread\.start \(|_Poll\.__init__"),
    ("SQS receive", r"SqsQueue\._receive|receive_message"),
    ("waiting for the receive", r"_Poll\.wait"),
    ("SQS delete", r"SqsQueue\.delete"),
    ("SQS visibility", r"change_visibility|_renew"),
    ("S3 get (download)", r"delivery/fetch\.py"),
    ("checkpoints", r"delivery/checkpoints\.py"),
    ("send (sendmmsg)", r"aws_s3_wodle/sinks/"),
    ("decode + convert", r"aws_s3_wodle/decode/|parquet_decoder|object_decoder"),
    ("AWS session / client set-up", r"aws_s3_wodle/platform/aws\.py|botocore/session\.py"),
    ("parse notification", r"notifications\.py"),
    ("waiting for the last objects in flight", r"ObjectPipeline\.finish"),
    ("settling finished objects", r"ObjectPipeline\.(reap|_complete)"),
    ("waiting for the decode gate", r"one_at_a_time"),
    ("waiting for read-ahead batches", r"abortable|prefetched\.<locals>\.(?!produce)"),
    ("waiting for the sink's turn", r"OneBatchAtATime"),
]
IDLE = ("idle (waiting for work)", re.compile(r"LeaseKeeper\._loop|_worker \(|prefetched|Condition\.wait|Event\.wait"))
_ACT = [(name, re.compile(rx)) for name, rx in ACTIVITIES]


def role_of(stack: str) -> str:
    return next((name for name, rx in ROLES if rx.search(stack)), "other threads")


def activity_of(frames: list[str]) -> str:
    """The innermost frame naming an activity; a bare wait (Event.wait, ...) only when none does."""
    for frame in reversed(frames):
        for name, rx in _ACT:
            if rx.search(frame):
                return name
    return IDLE[0] if any(IDLE[1].search(f) for f in frames) else "other"


def summarise(path: str) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = stack.split(";")
            out[role_of(stack)][activity_of(frames[1:])] += int(count)
    return out


def table(summary: dict[str, Counter], rate: float, objects: int, roles: Optional[list[str]] = None) -> str:
    lines = ["| thread | activity | seconds | ms per object | share of the thread |", "|---|---|---:|---:|---:|"]
    for role in roles or [r for r, _ in ROLES] + ["other threads"]:
        acts = summary.get(role)
        if not acts:
            continue
        total = sum(acts.values())
        for act, n in acts.most_common():
            lines.append(f"| {role} | {act} | {n / rate:.2f} | {n / rate / objects * 1000:.1f} | {n / total:.0%} |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profile", help="py-spy raw output (collapsed stacks, --threads --idle)")
    p.add_argument("--rate", type=float, default=200, help="py-spy's sampling rate (default %(default)s)")
    p.add_argument("--objects", type=int, required=True, help="objects the run delivered")
    p.add_argument("--role", action="append", help="only these threads (repeatable)")
    args = p.parse_args(argv)
    print(table(summarise(args.profile), args.rate, args.objects, args.role))
    return 0


if __name__ == "__main__":
    sys.exit(main())
