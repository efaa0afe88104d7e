"""Wires one configured block to its source, decoder and the shared sink, and runs it once."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Optional

from .aws import make_session
from .bucket_config import BucketConfig
from .config import SecurityLakeSubscriber
from .errors import EXIT_OK, EXIT_PARTIAL, WodleError
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


def security_lake_decoder(ctx: Context) -> Decoder:
    from .formats.parquet import iter_parquet_events  # pyarrow (~45 MB) only for the blocks that read Parquet

    def decode(spool: BinaryIO, ref: ObjectRef) -> Iterator[list[bytes]]:
        return iter_parquet_events(spool, batch_size=ctx.batch_size, keep_nulls=ctx.keep_nulls)
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
    run = SubscriberRun(block.label, queue, clients.s3(), decoder, ctx.sink, options, ctx.stop)
    try:
        return run.run()
    finally:
        log.info(run.stats.summary())


# Block type -> how to run it once. Other block kinds (bucket listings) register here.
RUNNERS: dict[type, Callable[[Any, Context], RunStats]] = {SecurityLakeSubscriber: run_subscriber}


def _run_bucket(block: Any, ctx: Context) -> RunStats:
    from .sources.buckets.run import run_bucket
    return run_bucket(block, ctx)


RUNNERS[BucketConfig] = _run_bucket


def run_block(block: Any, ctx: Context) -> int:
    """Run one block once; returns an exit code and logs, never raises for an operator-facing error."""
    log.debug("Starting a run of %s", block.label)
    try:
        stats = RUNNERS[type(block)](block, ctx)
    except WodleError as exc:
        log.error("%s: %s", block.label, exc)
        return exc.exit_code
    return EXIT_PARTIAL if stats.errors else EXIT_OK


from . import log_subscribers  # noqa: E402,F401  (registers the buckets and security_hub runners)
