"""Wires one configured block to its source, decoder and the shared sink, and runs it once."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Optional

from .aws import LazyClient, make_session
from .bucket_config import BucketConfig
from .config import SecurityLakeSubscriber
from .errors import EXIT_AWS, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_SINK, WodleError
from .log import register_secrets
from .notifications import ObjectRef
from .sinks import Sink
from .sources.sqs import SqsQueue
from .stats import RunStats
from .subscriber import Decoder, RunOptions, SubscriberRun
from .subscriber_config import queue_ref

log = logging.getLogger("aws-s3-wodle")


@dataclass
class Context:
    """What every run shares: the sink, the run options, the stop flag and the decoding choices."""

    sink: Sink
    options: RunOptions
    stop: threading.Event
    batch_size: int = 5000
    keep_nulls: bool = False
    state_dir: Optional[str] = None  # bucket blocks keep what they read here (state.db)
    reparse: bool = False            # bucket blocks read again from only_logs_after
    metrics: Optional[Any] = None   # metrics.Metrics when --metrics-file is given
    progress: Optional[Any] = None  # progress.Progress when run by hand on a terminal
    convert_threads: int = 1  # batches of one Parquet object converted at once (threads shared by all objects)


def security_lake_decoder(ctx: Context) -> Decoder:
    def decode(spool: BinaryIO, ref: ObjectRef) -> Iterator[list[bytes]]:
        from .formats.parquet import iter_parquet_events  # pyarrow only when an object must be decoded
        return iter_parquet_events(spool, batch_size=ctx.batch_size, keep_nulls=ctx.keep_nulls,
                                   threads=ctx.convert_threads)
    return decode


# Block type -> factory of the decoder its objects need. Other block types register here.
DECODERS: dict[type, Callable[[Context], Decoder]] = {SecurityLakeSubscriber: security_lake_decoder}


def run_subscriber(block: Any, ctx: Context, decoder: Optional[Decoder] = None) -> RunStats:
    """One run of an SQS subscriber block; `decoder` defaults to the one DECODERS registers for its type."""
    register_secrets(block.secrets())
    where = queue_ref(block.sqs_name)  # a URL or ARN names the queue's region and owner too
    clients = make_session(block, where.region)
    options = ctx.options.for_block(block)
    queue = SqsQueue(clients.sqs(), where.name, wait_seconds=options.wait_seconds,
                     max_messages=options.max_messages, visibility_timeout=options.visibility_timeout,
                     owner_account=where.account)
    decoder = decoder or DECODERS[type(block)](ctx)
    run = SubscriberRun(block.label, queue, LazyClient(clients.s3), decoder, ctx.sink, options, ctx.stop)
    if ctx.progress:
        ctx.progress.watch(run.stats)
    try:
        return run.run()
    finally:
        if ctx.progress:
            ctx.progress.unwatch(run.stats)
        log.info(run.stats.summary())
        observe(ctx, block, run.stats, queue)


def observe(ctx: Context, block: Any, stats: RunStats, queue: Optional[SqsQueue] = None) -> None:
    """Hand a run's counters to the metrics (with the queue's depth after the run), when they are on."""
    if ctx.metrics is None:
        return
    depth = None
    if queue is not None:
        try:
            depth = queue.approximate_depth()
        except Exception as exc:  # noqa: BLE001 - a metric must never fail a run
            log.debug("Queue depth of '%s' unavailable for the metrics: %s", queue.name, exc)
    ctx.metrics.observe(block, stats, depth)


# Block type -> how to run it once. Other block kinds (bucket listings) register here.
RUNNERS: dict[type, Callable[[Any, Context], RunStats]] = {SecurityLakeSubscriber: run_subscriber}


def _run_bucket(block: Any, ctx: Context) -> RunStats:
    from .sources.buckets.run import run_bucket
    stats = run_bucket(block, ctx)
    observe(ctx, block, stats)
    return stats


RUNNERS[BucketConfig] = _run_bucket


def run_block(block: Any, ctx: Context) -> int:
    """Run one block once; returns an exit code and logs, never raises for an operator-facing error."""
    log.debug("Starting a run of %s", block.label)
    try:
        stats = RUNNERS[type(block)](block, ctx)
    except WodleError as exc:
        log.error("%s: %s", block.label, exc)
        if ctx.metrics is not None:
            ctx.metrics.run_done(block, "failed", _ERROR_CLASSES.get(exc.exit_code, "run"))
        return exc.exit_code
    if ctx.metrics is not None:
        ctx.metrics.run_done(block, "partial" if stats.errors else "ok")
    return EXIT_PARTIAL if stats.errors else EXIT_OK


# Exit code of a run-ending error -> its class in the metrics.
_ERROR_CLASSES = {EXIT_AWS: "aws", EXIT_SINK: "sink", EXIT_INTERRUPTED: "interrupted"}


from . import log_subscribers  # noqa: E402,F401  (registers the buckets and security_hub runners)
