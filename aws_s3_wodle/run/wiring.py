"""The one place that maps a block type to its source and its decoder, and runs a block once.

    SecurityLakeSubscriber  -> SQS subscriber source, Parquet decoder (OCSF rows as they are)
    BucketsSubscriber       -> SQS subscriber source, any-log-object decoder, wrapped for Wazuh
    SecurityHubSubscriber   -> SQS subscriber source, JSON decoder, one event per finding
    BucketConfig            -> bucket listing source, the bucket type's parser and shaper
    CloudWatchLogsService   -> CloudWatch Logs source (GetLogEvents per stream), each message as it is
    InspectorService        -> Inspector v2 source (ListFindings by updatedAt), one event per finding

Everything a run shares (the sink, the stop flag, the decoding choices, metrics, progress) is the
Context; nothing here is filled in by another module.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, Optional

from aws_s3_wodle.config.buckets import BucketConfig
from aws_s3_wodle.config.services import CloudWatchLogsService, InspectorService
from aws_s3_wodle.config.subscribers import BucketsSubscriber, SecurityHubSubscriber, SecurityLakeSubscriber, queue_ref
from aws_s3_wodle.decode.events import MAX_BATCH, event_batches, subscriber_expand
from aws_s3_wodle.decode.formats import iter_records
from aws_s3_wodle.decode.limits import DEFAULT as DEFAULT_LIMITS, Limits
from aws_s3_wodle.decode.securityhub import finding_events
from aws_s3_wodle.errors import EXIT_AWS, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_SINK, WodleError
from aws_s3_wodle.observe.log import register_secrets
from aws_s3_wodle.observe.progress import Progress
from aws_s3_wodle.observe.stats import RunStats
from aws_s3_wodle.platform.aws import LazyClient, make_session
from aws_s3_wodle.seams import Batch, Block, Decoder, ObjectRef, Sink
from aws_s3_wodle.sources.sqs.queue import SqsQueue
from aws_s3_wodle.sources.sqs.subscriber import RunOptions, SubscriberRun

if TYPE_CHECKING:  # prometheus_client is imported only when --metrics-file asks for metrics (run/process.py)
    from aws_s3_wodle.observe.metrics import Metrics

log = logging.getLogger("aws-s3-wodle")


@dataclass
class Context:
    """What every run shares: the sink, the run options, the stop flag and the decoding choices."""

    sink: Sink
    options: RunOptions
    stop: threading.Event
    batch_size: int = 5000
    keep_nulls: bool = False
    state_dir: Optional[str] = None  # state.db: checkpoints of every source, the listing's cursors
    reparse: bool = False            # bucket blocks read again from only_logs_after
    metrics: Optional[Metrics] = None    # when --metrics-file is given
    progress: Optional[Progress] = None  # when run by hand on a terminal
    convert_threads: int = 1  # batches of one Parquet object converted at once (threads shared by all objects)
    limits: Limits = DEFAULT_LIMITS  # what one object may cost the host (--max-event-bytes and the others)


# --- decoders: what an object of each subscriber type becomes

def parquet_decoder(block: Block, ctx: Context) -> Decoder:
    """Security Lake: OCSF Parquet rows, each the event as it is."""
    def decode(spool: BinaryIO, ref: ObjectRef) -> Iterator[Batch]:
        from aws_s3_wodle.decode.formats.parquet import iter_parquet_events  # pyarrow only when an object must be decoded
        return iter_parquet_events(spool, batch_size=ctx.batch_size, keep_nulls=ctx.keep_nulls,
                                   threads=ctx.convert_threads, limits=ctx.limits)
    return decode


def object_decoder(block: BucketsSubscriber, ctx: Context) -> Decoder:
    """Buckets and Security Hub: any log object (JSON, CSV, text; any compression), wrapped for Wazuh."""
    hub = isinstance(block, SecurityHubSubscriber)
    fmt = "json" if hub else "auto"

    def decode(spool: BinaryIO, ref: ObjectRef) -> Iterator[Batch]:
        expand: Callable[[dict], Iterable[dict]] = finding_events if hub else subscriber_expand(ref.key)
        return event_batches(iter_records(spool, key=ref.key, format=fmt, limits=ctx.limits), source=block.SOURCE,
                             bucket=ref.bucket, key=ref.key, expand=expand, discard=block.discard_regex,
                             keep_nulls=ctx.keep_nulls, batch_size=min(ctx.batch_size, MAX_BATCH), limits=ctx.limits)
    return decode


# --- sources: how one block runs once

def run_subscriber(block: Any, ctx: Context, decoder: Decoder) -> RunStats:
    """One run of an SQS subscriber block with the given decoder."""
    register_secrets(block.secrets())
    where = queue_ref(block.sqs_name)  # a URL or ARN names the queue's region and owner too
    clients = make_session(block, where.region, ctx.stop)
    options = ctx.options.for_block(block)
    queue = SqsQueue(clients.sqs(), where.name, wait_seconds=options.wait_seconds,
                     max_messages=options.max_messages, visibility_timeout=options.visibility_timeout,
                     owner_account=where.account, stop=ctx.stop)
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


def run_listing(block: BucketConfig, ctx: Context) -> RunStats:
    """One pass of a <bucket> block: its objects listed day by day."""
    from aws_s3_wodle.sources.listing.run import run_bucket
    stats = run_bucket(block, ctx)
    observe(ctx, block, stats)
    return stats


def run_service(block: Any, ctx: Context) -> RunStats:
    """One pass of a <service> block (CloudWatch Logs or Inspector), every region in turn."""
    from aws_s3_wodle.sources.services.run import ServiceOptions, run_service as run_it
    from aws_s3_wodle.sources.services.stats import ServiceStats
    register_secrets(block.secrets())
    options = ServiceOptions(batch_size=min(ctx.batch_size, MAX_BATCH), skip_on_error=ctx.options.skip_on_error,
                             reparse=ctx.reparse, keep_nulls=ctx.keep_nulls)
    stats = ServiceStats(block.label, service=block.TYPE)
    if ctx.progress:
        ctx.progress.watch(stats)
    try:
        run_it(block, ctx.sink, options, ctx.stop, ctx.state_dir or ".", stats)
    finally:
        if ctx.progress:
            ctx.progress.unwatch(stats)
    observe(ctx, block, stats)
    return stats


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


# Block type -> how to run it once: the one table.
RUNNERS: dict[type, Callable[[Any, Context], RunStats]] = {
    SecurityLakeSubscriber: lambda block, ctx: run_subscriber(block, ctx, parquet_decoder(block, ctx)),
    BucketsSubscriber: lambda block, ctx: run_subscriber(block, ctx, object_decoder(block, ctx)),
    SecurityHubSubscriber: lambda block, ctx: run_subscriber(block, ctx, object_decoder(block, ctx)),
    BucketConfig: run_listing,
    CloudWatchLogsService: run_service,
    InspectorService: run_service,
}


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
