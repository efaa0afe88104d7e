"""Command line: `aws-s3-wodle [options]` runs the configured blocks; `aws-s3-wodle lab ...` the local lab.

Exit codes (see errors.py and the README): 0 ok, 1 configuration, 2 usage, 3 AWS access, 4 sink,
5 some objects failed, 130 stopped by a signal.
"""
from __future__ import annotations

import argparse
import os
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from . import log as logsetup
from .argtypes import positive_int, seconds
from .config import DEFAULT_CONFIG, DEFAULT_WAZUH_PATH, load_config
from .errors import EXIT_INTERRUPTED, EXIT_OK, guarded
from .memory import tune_allocators
from .subscriber import RunOptions

log = logging.getLogger("aws-s3-wodle")

DEFAULT_WAZUH = DEFAULT_WAZUH_PATH


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aws-s3-wodle",
        description="Pull AWS security data (Amazon Security Lake) into Wazuh's analysis engine. "
                    "Subcommands: 'aws-s3-wodle test --help' checks AWS and engine connectivity; "
                    "'aws-s3-wodle lab --help' for the local lab. A Wazuh manager's own command line "
                    "('--subscriber security_lake --queue ...') runs one pass, as its aws-s3 script would.")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="ossec.conf to read (default %(default)s)")
    p.add_argument("--once", action="store_true", help="run every enabled block once, then exit "
                   "(for a manager that calls us on its own interval)")
    p.add_argument("--run-on-start", action="store_true", help="run every block at once, whatever <run_on_start> says")
    p.add_argument("--wazuh-path", default=DEFAULT_WAZUH, help="Wazuh installation directory (default %(default)s); "
                   "the engine's socket is WAZUH_PATH/queue/sockets/queue")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--socket", help="analysisd datagram socket to send to (overrides --wazuh-path)")
    out.add_argument("--output", "-o", help="write JSON lines to this file instead ('-' = stdout)")
    p.add_argument("--state-dir", help="where bucket blocks remember what they read (state.db), subscribers what "
                   "they delivered and how far a half-done object got (delivered.sqlite3), and dead letters and "
                   "events too big for the engine are recorded (default WAZUH_PATH/var/aws-s3-wodle)")
    p.add_argument("--reparse", action="store_true", help="bucket blocks read again from their only_logs_after "
                   "day, whatever they read before")
    p.add_argument("--reset-state", metavar="BUCKET", help="forget what bucket blocks read from BUCKET (every "
                   "type and path), then exit; the next run starts from only_logs_after")
    p.add_argument("--debug", "-d", type=int, choices=range(0, 4), default=0, metavar="{0..3}",
                   help="verbosity: 1-2 debug, 3 also AWS SDK debug")
    p.add_argument("--sqs-wait", type=int, default=20, choices=range(0, 21), metavar="{0..20}",
                   help="SQS long-poll seconds (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=5000, help="rows decoded per batch (default %(default)s)")
    p.add_argument("--keep-nulls", action="store_true", help="keep null fields in events (dropped by default)")
    p.add_argument("--convert-threads", type=int, default=0, choices=range(0, 65), metavar="{0..64}",
                   help="threads converting Parquet batches to JSON, shared by all objects (default 0: one per "
                        "core, 2 to 4)")
    p.add_argument("--parallel-objects", type=int, default=2, choices=range(0, 33), metavar="{0..32}",
                   help="objects delivered at once, their downloads, decoding and sending overlapping (default "
                        "%(default)s, for 2 cores; 1: one object at a time)")
    p.add_argument("--engine-retry", type=seconds, default=30.0,
                   help="seconds to keep retrying when the engine's socket refuses (default %(default)s)")
    p.add_argument("--metrics-file", help="write Prometheus metrics (text format) to this file after every run")
    p.add_argument("--version", action="version", version=f"aws-s3-wodle {__version__}")
    return p


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if args.state_dir else Path(args.wazuh_path) / "var" / "aws-s3-wodle"


def reset_state(args: argparse.Namespace) -> int:
    from .state import StateStore, default_state_path
    path = default_state_path(_state_dir(args))
    if not path.exists():
        log.info("No state database at %s: nothing to forget about bucket '%s'", path, args.reset_state)
        return EXIT_OK
    store = StateStore(path)
    try:
        objects, cursors = store.reset_bucket(args.reset_state)
    finally:
        store.close()
    log.info("Forgot %d objects and %d prefixes read from bucket '%s' (%s); the next run starts from "
             "only_logs_after", objects, cursors, args.reset_state, path)
    return EXIT_OK


def _delivery_state_dir(args: argparse.Namespace) -> Optional[str]:
    """Where subscribers keep what they delivered: --state-dir, else under a Wazuh installation that exists
    (a test run with --output on a machine without Wazuh must not create /var/ossec)."""
    if args.state_dir or Path(args.wazuh_path).is_dir():
        return str(_state_dir(args))
    log.warning("No --state-dir and no Wazuh installation at %s: subscribers keep no delivery state (a redelivered "
                "notification is sent again, a half-done object restarts) and cannot dead-letter", args.wazuh_path)
    return None


def _make_sink(args: argparse.Namespace):
    from .sinks import OversizeRecorder
    state_dir = _state_dir(args)
    if args.output:
        from .sinks.jsonl import JsonLinesSink
        return JsonLinesSink(args.output)
    from .sinks.analysisd import AnalysisdSink, default_socket
    path = args.socket or default_socket(args.wazuh_path)
    return AnalysisdSink(path, OversizeRecorder(state_dir / "oversized-events.jsonl"), retry_seconds=args.engine_retry)


def _convert_threads() -> int:
    """One Parquet conversion thread per core (2 to 4): the conversion releases the GIL."""
    return max(2, min(4, os.cpu_count() or 2))


def _install_signals(stop: threading.Event) -> None:
    def handler(signum, frame):  # noqa: ARG001
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("Received %s: finishing the current object, then stopping", signal.Signals(signum).name)
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _run_once(block, ctx) -> int:
    from .runner import run_block
    try:
        return run_block(block, ctx)
    finally:
        ctx.reparse = False  # --reparse is for the first run of each block, not for every interval


def run(args: argparse.Namespace) -> int:
    # before the heavy imports: a bad config fails fast (a Wazuh-style call brings its config built from flags)
    config = getattr(args, "prebuilt_config", None) or load_config(args.config)
    from .runner import Context, run_block
    from .schedule import BlockScheduler

    blocks = config.enabled_blocks()
    if not blocks:
        log.info("Every aws-s3 section of %s is disabled: nothing to do", args.config)
        return EXIT_OK
    stop = threading.Event()
    _install_signals(stop)
    sink = _make_sink(args)
    options = RunOptions(wait_seconds=args.sqs_wait, state_dir=_delivery_state_dir(args),
                         parallel_objects=args.parallel_objects)
    observers = _observers(args)
    ctx = Context(sink=sink, options=options, stop=stop, batch_size=args.batch_size, keep_nulls=args.keep_nulls,
                  state_dir=str(_state_dir(args)), reparse=args.reparse,
                  convert_threads=args.convert_threads or _convert_threads(), **observers)
    try:
        if args.once:
            worst = EXIT_OK
            for wodle, block in blocks:
                if stop.is_set():
                    return EXIT_INTERRUPTED
                options.skip_on_error = wodle.skip_on_error
                code = run_block(block, ctx)
                worst = max(worst, code)
            return EXIT_INTERRUPTED if stop.is_set() else worst
        schedulers = []
        for wodle, block in blocks:
            opts = RunOptions(**{**vars(options), "skip_on_error": wodle.skip_on_error})
            block_ctx = Context(sink=sink, options=opts, stop=stop, batch_size=args.batch_size,
                                keep_nulls=args.keep_nulls, state_dir=ctx.state_dir, reparse=args.reparse,
                                convert_threads=ctx.convert_threads, **observers)
            schedulers.append(BlockScheduler(block.label, wodle, lambda b=block, c=block_ctx: _run_once(b, c), stop,
                                             args.run_on_start or wodle.run_on_start))
        log.info("Started with %d block(s) from %s", len(schedulers), args.config)
        for s in schedulers:
            s.start()
        while not stop.wait(1.0):
            pass
        for s in schedulers:
            s.join()
        return EXIT_OK
    finally:
        sink.close()
        if observers["progress"] is not None:
            observers["progress"].close()


def _observers(args: argparse.Namespace) -> dict:
    """Metrics file (--metrics-file) and the live progress line (only on a terminal)."""
    metrics = None
    if getattr(args, "metrics_file", None):
        from .metrics import Metrics
        metrics = Metrics(args.metrics_file)
    progress = None
    if args.output != "-":  # stdout carries events then; keep the terminal for them
        from .progress import Progress
        progress = Progress.for_terminal(sys.stderr)
    return {"metrics": metrics, "progress": progress}


def main(argv: Optional[Sequence[str]] = None) -> int:
    tune_allocators()  # before pyarrow is imported (memory.py says why)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lab":
        from .lab.cli import main as lab_main
        return lab_main(argv[1:])
    if argv and argv[0] == "test":
        from .connectivity import main as test_main
        return test_main(argv[1:])
    from .wazuh_args import is_wazuh_command_line
    if is_wazuh_command_line(argv):  # called by a Wazuh manager in place of its own script
        from .wazuh_args import main as wazuh_main
        return wazuh_main(argv)
    args = build_parser().parse_args(argv)
    logsetup.setup(args.debug)
    return guarded(log, lambda: reset_state(args) if args.reset_state else run(args), args.debug > 0)
