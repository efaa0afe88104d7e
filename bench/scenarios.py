#!/usr/bin/env python3
"""Many small objects or one large one, at loopback's latency and at a real region's: every scenario in one run.

Security Lake writes an object per source, account, region and few minutes, so a real queue carries many
small objects, and each pays its AWS calls (receive, get, delete, visibility) at a region's latency. This
runs each scenario (N objects of R rows of generated OCSF, one notification each, on a Security Lake lab in
moto's server) through the wodle CLI as its own process (`--once`), its AWS calls through the lab's fault
proxy adding a fixed delay to every call (0 and 20 ms by default: aws_s3_wodle.lab.faults.Latency), into a
real Unix datagram socket read by a separate process that checks each event arrived exactly once. It
reports events/s and objects/s of the whole process (start to exit), AWS calls per object (counted at the
proxy, by service and operation), peak RSS (VmHWM), the ratios to the naive path and the polars ceiling
measured on the same files in the same run (bench/throughput.py), and, for N objects, the ratio to the
same rows as one object at the same latency. A markdown table on stdout, a PNG chart (--chart).

Usage: python bench/scenarios.py [--quick] [--scenarios 1x1m,1x200k,10x20k,200x1k,2000x100] [--latency-ms 0,20]
       [--repeat 1] [--chart bench/scenarios.png] [--profile DIR] [--wodle-arg=--parallel-objects=4]
Needs the lab and bench extras: pip install -e '.[lab,bench]'
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import (PeakRss, Reader, ceiling_rate, compile_package, make_object, naive_rate,  # noqa: E402
                        parse_rows, reference_arguments)

DEFAULT_SCENARIOS = "1x1m,1x200k,10x20k,200x1k,2000x100"
QUICK_SCENARIOS = "1x20k,10x2k,50x400"
ROW_GROUP_ROWS = 1_000_000  # one row group per object, as throughput.py's default


@dataclass
class Scenario:
    objects: int
    rows: int  # per object

    @property
    def name(self) -> str:
        return f"{self.objects} x {_short(self.rows)}"

    @property
    def total(self) -> int:
        return self.objects * self.rows


def _short(rows: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1000)):
        if rows >= scale and rows % scale == 0:
            return f"{rows // scale}{unit}"
    return str(rows)


def parse_scenarios(text: str) -> list[Scenario]:
    out = []
    for part in text.split(","):
        n, _, rows = part.strip().lower().partition("x")
        if not rows:
            raise SystemExit(f"scenario '{part}': write it OBJECTSxROWS, e.g. 200x1k")
        out.append(Scenario(int(n), parse_rows(rows)))
    return out


@dataclass
class Result:
    scenario: str
    objects: int
    rows: int          # in all
    latency_ms: float
    wall: float = 0.0          # process start to exit
    to_last_event: float = 0.0  # process start to the reader's last datagram
    to_first_event: float = 0.0  # process start to the reader's first datagram
    cpu: float = 0.0
    rss_mb: float = 0.0        # -1: not measured (profiled run)
    calls: dict = field(default_factory=dict)  # "service:operation" -> count
    upstream: dict = field(default_factory=dict)  # "service:operation" -> seconds moto took, in all
    exit_code: int = 0
    delivered: int = 0
    unique: int = 0
    queue_depth: int = -1
    naive: float = 0.0
    ceiling: float = 0.0
    one_object_rate: float = 0.0  # the same rows as one object, same latency (0: not in this run)
    # CPU seconds each process of the run spent while the wodle ran, and the host's busy share of its 2 cores:
    # the lab (moto, the proxy in the bench's own process, the reader) shares the host with the wodle
    lab_cpu: dict = field(default_factory=dict)
    host_busy: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.wall if self.wall else 0.0

    @property
    def stream_rate(self) -> float:
        """Events/s from the first datagram to the last: the rows' pace, start-up and the first object's
        download and the exit left out (what throughput.py calls 'stream ev/s')."""
        span = self.to_last_event - self.to_first_event
        return (self.rows - 1) / span if span > 0 and self.to_first_event > 0 else 0.0

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.wall if self.wall else 0.0

    @property
    def calls_per_object(self) -> float:
        return sum(self.calls.values()) / self.objects if self.objects else 0.0

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and self.delivered == self.rows and self.unique == self.rows
                and self.queue_depth == 0)


# --- data ---------------------------------------------------------------------------------

def objects_for(scenario: Scenario, workdir: Path, version: str) -> list[Path]:
    """Cached GZIP Parquet objects for a scenario, each with its own uids (throughput.make_object's tags)."""
    group = min(ROW_GROUP_ROWS, scenario.rows)
    missing = sum(1 for tag in range(scenario.objects)
                  if not (workdir / f"ocsf-{version}-{scenario.rows}-rg{group}{f'-o{tag}' if tag else ''}.parquet").exists())
    if missing:
        print(f"  preparing {scenario.name}: {missing} object(s) to write (cached in {workdir}) ...", flush=True)
    return [make_object(workdir, scenario.rows, version, ROW_GROUP_ROWS, tag) for tag in range(scenario.objects)]


def one_scenario(text: str, workdir: str, version: str = "1.1.0") -> tuple[Scenario, list[Path]]:
    """One scenario ("10x20k") ready to run: its cached objects, and the package byte-compiled (the bench tools
    that run a single scenario: timeline.py, wazuh_side_by_side.py)."""
    scenario = parse_scenarios(text)[0]
    Path(workdir).mkdir(parents=True, exist_ok=True)
    paths = objects_for(scenario, Path(workdir), version)
    compile_package()
    return scenario, paths


def stage(moto_endpoint: str, paths: list[Path]):
    """A fresh Security Lake lab holding the objects, one notification each (put straight into moto)."""
    from aws_s3_wodle.lab.security_lake import SecurityLakeLab
    suffix = uuid.uuid4().hex[:10]
    lab = SecurityLakeLab(endpoint=moto_endpoint, queue_name=f"AmazonSecurityLake-scn{suffix}-Main-Queue",
                          role_name=f"lake-scn-{suffix}").create()
    s3, sqs = lab.client("s3"), lab.client("sqs")
    keys = [lab.key_for("CLOUD_TRAIL_MGMT", "2.0") for _ in paths]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda kp: s3.upload_file(str(kp[1]), lab.bucket, kp[0]), zip(keys, paths)))
    bodies = [json.dumps(lab.notification(k, p.stat().st_size)) for k, p in zip(keys, paths)]
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=lab.queue_url, Entries=[
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])])
    return lab


# --- one run ------------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (proc(5): fields 14 and 15 of /proc/PID/stat, in clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _host_idle() -> tuple[float, float]:
    """(idle, total) clock ticks of all CPUs since boot (proc(5): the "cpu" line of /proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)  # idle + iowait


class LabCpu:
    """What the lab's processes spent while the wodle ran: moto's server, the reader, the bench (the proxy's threads)."""

    def __init__(self, moto_pid: int, reader_pid: int) -> None:
        self.pids = {"moto": moto_pid, "reader": reader_pid}
        self.start = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        self.bench = sum(os.times()[:2])
        self.idle = _host_idle()

    def stop(self) -> tuple[dict, float]:
        spent = {name: _cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        spent["bench (proxy)"] = sum(os.times()[:2]) - self.bench
        idle, total = _host_idle()
        busy = 1 - (idle - self.idle[0]) / max(1, total - self.idle[1])
        return spent, busy


def run_once(moto, scenario: Scenario, paths: list[Path], latency_ms: float, args, work: Path) -> Result:
    from aws_s3_wodle.lab.faults import FaultProxy
    from aws_s3_wodle.lab.security_lake import lab_env

    lab = stage(moto.endpoint, paths)
    result = Result(scenario.name, scenario.objects, scenario.total, latency_ms)
    conf = work / f"ossec-{lab.queue_name}.conf"
    conf.write_text(lab.ossec_conf())
    sock = str(work / f"queue-{uuid.uuid4().hex[:8]}")
    reader = Reader(sock)
    cmd = [sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--run-on-start",
           "--socket", sock, "--sqs-wait", str(args.sqs_wait), "--state-dir", str(work / "state"),
           *args.wodle_arg]
    if args.profile:
        out = Path(args.profile) / f"{scenario.name.replace(' ', '')}-{latency_ms:g}ms"
        cmd = [args.py_spy, "record", "--idle", "--threads", "--nonblocking", "--rate", os.environ.get("PYSPY_RATE", "200"), "--format", "raw",
               "-o", f"{out}.txt", "--", *cmd]
    log_path = work / f"wodle-{lab.queue_name}.log"
    with FaultProxy(moto.endpoint, latency=latency_ms / 1000) as proxy, open(log_path, "wb") as log:
        env = {**os.environ, **lab_env(proxy.endpoint, lab.region)}
        lab_cpu = LabCpu(moto.proc.pid, reader.proc.pid)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = None if args.profile else PeakRss(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        result.wall = time.monotonic() - started
        result.lab_cpu, result.host_busy = lab_cpu.stop()
        result.exit_code = proc.returncode = os.waitstatus_to_exitcode(status)
        result.cpu = usage.ru_utime + usage.ru_stime
        result.rss_mb = peak.stop() / 1024 if peak else -1
        result.calls = dict(proxy.calls_by_action())
        result.upstream = dict(proxy.upstream_seconds())
    got = reader.stop()
    result.delivered, result.unique = got.get("count", 0), got.get("unique_uids", 0)
    result.to_last_event = got["last"] - started if got.get("last") else 0.0
    result.to_first_event = got["first"] - started if got.get("first") else 0.0
    result.queue_depth = lab.queue_depth()
    if not result.ok:
        print(f"  !! {scenario.name} at {latency_ms:g} ms not clean: exit {result.exit_code}, delivered "
              f"{result.delivered}/{result.rows} ({result.unique} unique), queue depth {result.queue_depth}\n"
              f"{log_path.read_text(errors='replace')[-3000:]}", flush=True)
    return result


def references(paths: list[Path], args) -> tuple[float, float]:
    """(naive, ceiling) events/s over the scenario's own files, each opened as the wodle would (per file)."""
    def over(fn, limit: int) -> float:
        done, spent = 0, 0.0
        for path in paths:
            started = time.perf_counter()
            _, rows = fn(path, args.batch_size, limit - done)
            spent += time.perf_counter() - started
            done += rows
            if done >= limit:
                break
        return done / spent if spent else 0.0
    return over(naive_rate, args.naive_rows), over(ceiling_rate, args.ceiling_rows)


# --- report -------------------------------------------------------------------------------

def _fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}".replace(",", " ")


def report(results: list[Result]) -> str:
    lines = ["| scenario | latency | events/s | objects/s | x one object | x naive | x ceiling | AWS calls/object "
             "| peak RSS | wall s | CPU s | first event s | stream events/s | stream x naive | stream x ceiling | ok |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        one = f"{r.rate / r.one_object_rate:.3f}" if r.one_object_rate and r.objects > 1 else ""
        lines.append(
            f"| {r.scenario} rows | {r.latency_ms:g} ms | {_fmt(r.rate)} | {_fmt(r.objects_per_s, 1)} | {one} | "
            f"{r.rate / r.naive if r.naive else 0:.2f} | {r.rate / r.ceiling if r.ceiling else 0:.3f} | "
            f"{r.calls_per_object:.1f} | {_fmt(r.rss_mb) + ' MB' if r.rss_mb >= 0 else 'n/a'} | {r.wall:.1f} | "
            f"{r.cpu:.1f} | {r.to_first_event:.2f} | {_fmt(r.stream_rate)} | "
            f"{r.stream_rate / r.naive if r.naive else 0:.2f} | {r.stream_rate / r.ceiling if r.ceiling else 0:.3f} | "
            f"{'yes' if r.ok else 'NO'} |")
    lines += ["", "AWS calls per object, by operation (counted at the proxy; sts and the queue lookup are per run):", "",
              "| scenario | latency | " + " | ".join(_OPS) + " | other |", "|---|---:|" + "---:|" * (len(_OPS) + 1)]
    for r in results:
        calls = Counter(r.calls)
        known = [calls.pop(op, 0) for op in _OPS]
        lines.append(f"| {r.scenario} rows | {r.latency_ms:g} ms | "
                     + " | ".join(f"{k / r.objects:.2f}" for k in known) + f" | {sum(calls.values()) / r.objects:.2f} |")
    lines += ["", "Mean time moto took to answer one call, in ms (at the proxy, the added latency not included; "
              "the lab's own share of every round trip):", "",
              "| scenario | latency | " + " | ".join(_OPS[:5]) + " |", "|---|---:|" + "---:|" * 5]
    for r in results:
        lines.append(f"| {r.scenario} rows | {r.latency_ms:g} ms | " + " | ".join(
            f"{r.upstream.get(op, 0) / r.calls[op] * 1000:.1f}" if r.calls.get(op) else "" for op in _OPS[:5]) + " |")
    lines += ["", "The host's CPU while the wodle ran (2 cores shared: AWS here is moto's server, a Python process on the same "
              "host, behind the proxy's threads in the bench's process; the reader stands for analysisd). CPU ms per object, "
              "and the share of both cores that was busy:", "",
              "| scenario | latency | wodle | moto | proxy | reader | all | host busy |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if not r.lab_cpu:
            continue
        per = [r.cpu, r.lab_cpu.get("moto", 0), r.lab_cpu.get("bench (proxy)", 0), r.lab_cpu.get("reader", 0)]
        lines.append(f"| {r.scenario} rows | {r.latency_ms:g} ms | "
                     + " | ".join(f"{x / r.objects * 1000:.1f}" for x in per + [sum(per)]) + f" | {r.host_busy:.0%} |")
    return "\n".join(lines)


_OPS = ("sqs:ReceiveMessage", "s3:GetObject", "s3:HeadObject", "sqs:DeleteMessage", "sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibilityBatch",
        "sqs:ChangeMessageVisibility", "sts:AssumeRole", "sqs:GetQueueUrl")


def chart(results: list[Result], path: Path, title: str) -> None:
    """Events/s and objects/s per scenario, one bar per latency, the naive path and the ceiling marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.scenario for r in results))
    latencies = sorted({r.latency_ms for r in results})
    width = 0.8 / max(1, len(latencies))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for j, lat in enumerate(latencies):
        xs, rates, objs = [], [], []
        for i, name in enumerate(names):
            r = next((r for r in results if r.scenario == name and r.latency_ms == lat), None)
            if r:
                xs.append(i + (j - (len(latencies) - 1) / 2) * width)
                rates.append(r.rate)
                objs.append(r.objects_per_s)
        bars = ax1.bar(xs, rates, width, label=f"{lat:g} ms per AWS call")
        ax1.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in rates], fontsize=7)
        bars = ax2.bar(xs, objs, width, label=f"{lat:g} ms per AWS call")
        ax2.bar_label(bars, labels=[f"{v:.1f}" for v in objs], fontsize=7)
    for i, name in enumerate(names):
        ref = [r for r in results if r.scenario == name]
        naive = max((r.naive for r in ref), default=0)
        ceiling = max((r.ceiling for r in ref), default=0)
        ax1.hlines(naive, i - 0.45, i + 0.45, colors="grey", linestyles="dotted",
                   label="naive (to_pylist + json.dumps)" if i == 0 else None)
        ax1.hlines(ceiling, i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                   label="ceiling (polars write_ndjson)" if i == 0 else None)
    for ax, what in ((ax1, "events/s (whole process, start to exit)"), (ax2, "objects/s")):
        ax.set_xticks(range(len(names)), [f"{n}\nrows" for n in names])
        ax.set_yscale("log")
        ax.set_ylabel(what)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ---------------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke check: scenarios {QUICK_SCENARIOS}, small references (a few minutes)")
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                   help="OBJECTSxROWS per object, comma-separated (default %(default)s)")
    p.add_argument("--latency-ms", default="0,20", help="added delay per AWS call, comma-separated (default %(default)s)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each scenario and latency; the fastest is kept, and the highest peak RSS; the "
                        "references (naive, ceiling) get as many rounds, their best kept (default %(default)s)")
    p.add_argument("--sqs-wait", type=int, default=0,
                   help="the wodle's --sqs-wait (default %(default)s: the run ends at the first empty receive "
                        "instead of waiting out a final 20 s long poll)")
    p.add_argument("--version", default="1.1.0", choices=("1.1.0", "1.0.0-rc.2"), help="OCSF schema line")
    reference_arguments(p)
    p.add_argument("--chart", default=str(Path(__file__).resolve().parent / "scenarios.png"),
                   help="the PNG chart to write ('' for none; default %(default)s)")
    p.add_argument("--json", default="", help="also write the results as JSON to this file")
    p.add_argument("--replot", default="", help="only draw the chart (--chart) and print the table of a --json file")
    p.add_argument("--profile", default="",
                   help="run the wodle under py-spy (all threads, idle included, collapsed stacks) and write "
                        "DIR/<scenario>-<latency>.txt; peak RSS is then not measured")
    p.add_argument("--py-spy", default=str(Path(sys.executable).with_name("py-spy")), help=argparse.SUPPRESS)
    p.add_argument("--wodle-arg", action="append", default=[],
                   help="extra argument for the wodle, e.g. --wodle-arg=--parallel-objects=4 (repeatable)")
    args = p.parse_args(argv)
    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        results = [Result(**r) for r in saved["results"]]
        print(saved["header"] + "\n\n" + report(results))
        if args.chart:
            chart(results, Path(args.chart), saved["header"])
        return 0
    if args.quick:
        args.scenarios = args.scenarios if args.scenarios != DEFAULT_SCENARIOS else QUICK_SCENARIOS
        args.naive_rows, args.ceiling_rows = min(args.naive_rows, 5000), min(args.ceiling_rows, 20_000)
    scenarios = parse_scenarios(args.scenarios)
    latencies = [float(x) for x in args.latency_ms.split(",")]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    import polars as pl
    import pyarrow as pa

    from aws_s3_wodle.lab.server import MotoServer

    header = (f"aws-s3-wodle scenarios: {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at start), "
              f"Python {platform.python_version()}, pyarrow {pa.__version__}, polars {pl.__version__}; "
              f"wodle args: {' '.join(args.wodle_arg) or '(defaults)'} --sqs-wait {args.sqs_wait}")
    print(header, flush=True)
    data = {s.name: objects_for(s, workdir, args.version) for s in scenarios}
    compile_package()
    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="wodle-scenarios-"))
    try:
        with MotoServer() as moto:
            for s in scenarios:
                naive = ceiling = 0.0
                for j, lat in enumerate(latencies):
                    best: Optional[Result] = None
                    for attempt in range(args.repeat):
                        if j == 0:  # the references get as many rounds as the wodle, interleaved; best of each kept
                            n, c = references(data[s.name], args)
                            naive, ceiling = max(naive, n), max(ceiling, c)
                        print(f"{s.name} rows at {lat:g} ms per call, run {attempt + 1}/{args.repeat} ...", flush=True)
                        r = run_once(moto, s, data[s.name], lat, args, work)
                        print(f"  {r.rate:.0f} events/s, {r.objects_per_s:.1f} objects/s, {r.calls_per_object:.1f} "
                              f"calls/object, peak RSS {r.rss_mb:.0f} MB, {'ok' if r.ok else 'NOT CLEAN'}", flush=True)
                        if best is None or (r.ok and (r.rate > best.rate or not best.ok)):
                            r.rss_mb = max(r.rss_mb, best.rss_mb if best else r.rss_mb)
                            best = r
                        else:
                            best.rss_mb = max(best.rss_mb, r.rss_mb)
                    assert best is not None
                    best.naive, best.ceiling = naive, ceiling
                    results.append(best)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in results:
        one = next((o for o in results if o.objects == 1 and o.rows == r.rows and o.latency_ms == r.latency_ms), None)
        r.one_object_rate = one.rate if one else 0.0
    table = report(results)
    print("\n" + header + f"; load average {os.getloadavg()[0]:.1f} at end\n\n" + table)
    print("\nevents/s, objects/s: the whole wodle process, start to exit; 'x one object': against the same rows as "
          "one object at the same latency; naive and ceiling: the same files, converted in the bench's process.")
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "results": [asdict(r) for r in results]}, indent=1))
    if args.chart:
        chart(results, Path(args.chart), header)
        print(f"chart: {args.chart}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
