"""The one entry of a run: a configuration and the run settings in, an exit code out.

`--config` (cli/main.py) and the Wazuh manager's command line (cli/wazuh.py) both build a Config and
RunSettings and call `run`; everything from here on is the same for both: the sink, the state
directory, signals, one pass (`--once`) or a scheduler per block.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Optional

from aws_s3_wodle.config.settings import RunSettings
from aws_s3_wodle.config.wodle import Config
from aws_s3_wodle.decode.limits import Limits
from aws_s3_wodle.errors import EXIT_INTERRUPTED, EXIT_OK
from aws_s3_wodle.platform.exit import exit_now
from aws_s3_wodle.seams import Sink
from aws_s3_wodle.sources.sqs.subscriber import RunOptions

log = logging.getLogger("aws-s3-wodle")


def state_dir(settings: RunSettings) -> Path:
    return Path(settings.state_dir) if settings.state_dir else Path(settings.wazuh_path) / "var" / "aws-s3-wodle"


def reset_state(settings: RunSettings, bucket: str) -> int:
    """Forget what bucket blocks read from `bucket` (every type and path)."""
    from aws_s3_wodle.sources.listing.state import StateStore, default_state_path
    path = default_state_path(state_dir(settings))
    if not path.exists():
        log.info("No state database at %s: nothing to forget about bucket '%s'", path, bucket)
        return EXIT_OK
    store = StateStore(path)
    try:
        objects, cursors = store.reset_bucket(bucket)
    finally:
        store.close()
    log.info("Forgot %d objects and %d prefixes read from bucket '%s' (%s); the next run starts from "
             "only_logs_after", objects, cursors, bucket, path)
    return EXIT_OK


def _delivery_state_dir(settings: RunSettings) -> Optional[str]:
    """Where subscribers keep what they delivered: --state-dir, else under a Wazuh installation that exists
    (a test run with --output on a machine without Wazuh must not create /var/ossec)."""
    if settings.state_dir or Path(settings.wazuh_path).is_dir():
        return str(state_dir(settings))
    log.warning("No --state-dir and no Wazuh installation at %s: subscribers keep no delivery state (a redelivered "
                "notification is sent again, a half-done object restarts) and cannot dead-letter", settings.wazuh_path)
    return None


def make_sink(settings: RunSettings, stop: Optional[threading.Event] = None) -> Sink:
    from aws_s3_wodle.sinks.recorder import FILE_NAME, OversizeRecorder
    if settings.output:
        from aws_s3_wodle.sinks.jsonl import JsonLinesSink
        return JsonLinesSink(settings.output)
    from aws_s3_wodle.sinks.analysisd import AnalysisdSink, default_socket
    path = settings.socket or default_socket(settings.wazuh_path)
    recorder = OversizeRecorder(state_dir(settings) / FILE_NAME, max_bytes=settings.record_max_bytes,
                                keep=settings.record_files)
    return AnalysisdSink(path, recorder, retry_seconds=settings.engine_retry, stop=stop)


def convert_threads(settings: RunSettings) -> int:
    """One Parquet conversion thread per core (2 to 4) unless set: the conversion releases the GIL."""
    return settings.convert_threads or max(2, min(4, os.cpu_count() or 2))


# Seconds from the first SIGTERM/SIGINT to the process's end, whatever it waits on (issue 14: within 2 s). Every
# wait of a run ends at the stop (long polls, downloads, retry waits, the engine); a call that hangs on the network
# (an answer that never comes: up to the 60 s read timeout) does not, so the process ends at this deadline then,
# as after a crash: nothing acknowledged is lost, a message not deleted comes back after its visibility timeout,
# an object resumes at its checkpoint.
STOP_DEADLINE = 1.5


def _install_signals(stop: threading.Event) -> None:
    def handler(signum, frame):  # noqa: ARG001
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()  # first: the log line below may have to wait (stderr), the stop must not
        log.info("Received %s: stopping at the next batch, or now if waiting; what is not finished resumes on the "
                 "next run", signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _watch_deadline(stop: threading.Event, done: threading.Event, deadline: float = STOP_DEADLINE) -> None:
    """Once `stop` is set, the process ends `deadline` seconds later unless `done` (the run returned) came first."""
    def watch() -> None:
        stop.wait()
        if done.wait(deadline):
            return
        exit_now(EXIT_INTERRUPTED, lambda: log.warning(
            "Still running %.1f s after the stop was asked (%s): ending now, as after a crash. What the engine took "
            "is recorded; messages not deleted return to the queue after their visibility timeout", deadline,
            _main_thread_at()))
    threading.Thread(target=watch, name="aws-s3-wodle-stop-deadline", daemon=True).start()


def _main_thread_at() -> str:
    """Where the main thread waits, for the operator: its innermost frame, and ours that called it."""
    frame = sys._current_frames().get(threading.main_thread().ident or -1)
    if frame is None:
        return "the main thread has ended"
    stack = traceback.extract_stack(frame)
    inner = stack[-1]
    ours = next((f for f in reversed(stack) if "aws_s3_wodle" in f.filename), None)
    where = f"waiting in {Path(inner.filename).name}:{inner.lineno} {inner.name}"
    if ours is not None and ours is not inner:
        where += f", called from {Path(ours.filename).name}:{ours.lineno} {ours.name}"
    return where


def _observers(settings: RunSettings) -> dict[str, Any]:
    """Metrics file (--metrics-file) and the live progress line (only on a terminal)."""
    metrics = None
    if settings.metrics_file:
        from aws_s3_wodle.observe.metrics import Metrics
        metrics = Metrics(settings.metrics_file)
    progress = None
    if settings.output != "-":  # stdout carries events then; keep the terminal for them
        from aws_s3_wodle.observe.progress import Progress
        progress = Progress.for_terminal(sys.stderr)
    return {"metrics": metrics, "progress": progress}


def run(config: Config, settings: RunSettings) -> int:
    """Run every enabled block of `config`: once each (`settings.once`), or each on its schedule until stopped."""
    from aws_s3_wodle.run.schedule import BlockScheduler
    from aws_s3_wodle.run.wiring import Context, run_block

    blocks = config.enabled_blocks()
    if not blocks:
        log.info("Every aws-s3 section of %s is disabled: nothing to do", config.path)
        return EXIT_OK
    stop, done = threading.Event(), threading.Event()
    _install_signals(stop)
    _watch_deadline(stop, done)
    sink = make_sink(settings, stop)
    observers = _observers(settings)

    def context(skip_on_error: bool) -> Context:
        options = RunOptions(wait_seconds=settings.sqs_wait, state_dir=_delivery_state_dir(settings),
                             parallel_objects=settings.parallel_objects, skip_on_error=skip_on_error)
        return Context(sink=sink, options=options, stop=stop, batch_size=settings.batch_size,
                       keep_nulls=settings.keep_nulls, state_dir=str(state_dir(settings)), reparse=settings.reparse,
                       convert_threads=convert_threads(settings), limits=Limits.from_settings(settings), **observers)

    try:
        if settings.once:
            worst = EXIT_OK
            for wodle, block in blocks:
                if stop.is_set():
                    return EXIT_INTERRUPTED
                worst = max(worst, run_block(block, context(wodle.skip_on_error)))
            return EXIT_INTERRUPTED if stop.is_set() else worst
        schedulers = []
        for wodle, block in blocks:
            ctx = context(wodle.skip_on_error)

            def once(block: Any = block, ctx: Context = ctx) -> int:
                try:
                    return run_block(block, ctx)
                finally:
                    ctx.reparse = False  # --reparse is for the first run of each block, not for every interval
            schedulers.append(BlockScheduler(block.label, wodle, once, stop, settings.run_on_start or wodle.run_on_start))
        log.info("Started with %d block(s) from %s", len(schedulers), config.path)
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
        done.set()
