"""One pass over one bucket block: which objects to deliver (listing, day by day) and how to acknowledge them.

The listing is this source's own: prefixes per account and region, days from the cursor, the bucket
type's decoder (its parser and shaper: decode/bucket_objects.py), and the acknowledgement (a `processed`
row for its cursor and pruning; <remove_from_bucket>). Everything between, download, decode, skip
what was sent, send, checkpoint, mark delivered, is the one delivery engine's (delivery/engine.py),
the same as for SQS subscribers. At-least-once: an object is recorded as delivered only after the
sink took all its events; with <remove_from_bucket>, it is deleted only after that (and an object
recorded but still present, e.g. after a crash between the two, is deleted on the next pass). A stop
(SIGTERM) ends the pass within a second or two, during a download too; the events already sent of the
object in flight are remembered (the engine's checkpoint), not sent again. A missing object (listed,
then gone) is skipped with a warning.
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from dataclasses import dataclass
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.config.buckets import BucketConfig, format_log_date
from aws_s3_wodle.decode.bucket_objects import bucket_decoder
from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.limits import DEFAULT as DEFAULT_LIMITS, Limits
from aws_s3_wodle.delivery.engine import ObjectDelivery
from aws_s3_wodle.delivery.fetch import download
from aws_s3_wodle.delivery.outcome import MISSING, Interrupted
from aws_s3_wodle.errors import AwsAccessError, ObjectError
from aws_s3_wodle.observe.stats import LISTING, RunStats
from aws_s3_wodle.platform.aws_errors import describe_client_error
from aws_s3_wodle.seams import Decoder, ObjectId, ObjectRef, Sink
from aws_s3_wodle.sources.listing import lister as listing
from aws_s3_wodle.sources.listing.layouts import TYPES, BucketType
from aws_s3_wodle.sources.listing.state import Scope, StateStore

log = logging.getLogger("aws-s3-wodle")

# Days of state kept before the cursor (those days are not listed again; the margin is for safety).
RETAIN_DAYS = 2


@dataclass
class BucketOptions:
    batch_size: int = 5000          # records per batch sent to the sink (and per progress record)
    skip_on_error: bool = True
    reparse: bool = False           # read again from only_logs_after, whatever the state says
    spool_dir: Optional[str] = None
    limits: Limits = DEFAULT_LIMITS  # what one object may cost (decode/limits.py)


class _EndRun(Exception):
    """skip_on_error is 'no' and an object failed."""


def _earliest(a: Optional[dt.date], b: Optional[dt.date]) -> Optional[dt.date]:
    return min(a, b) if a and b else a or b


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class BucketRun:
    def __init__(self, block: BucketConfig, s3: Any, state: StateStore, sink: Sink, options: BucketOptions,
                 stop: threading.Event) -> None:
        self.block, self.s3, self.state, self.sink, self.options, self.stop = block, s3, state, sink, options, stop
        self.btype: BucketType = TYPES[block.kind]
        self.lister = listing.Lister(s3, block.name)
        self.stats = RunStats(block.label, source=LISTING)

    def _engine(self, target: listing.Target) -> ObjectDelivery:
        """The delivery engine for one prefix's objects: its account goes into their events."""
        return ObjectDelivery(self.s3, self._decoder(target), self.sink, self.stats, store=self.state.checkpoints,
                              stop=self.stop, spool_dir=self.options.spool_dir, redeliver=self.options.reparse)

    def _decoder(self, target: listing.Target) -> Decoder:
        btype, block = self.btype, self.block
        return bucket_decoder(btype.parse, btype.shape, btype.source, account=target.account,
                              alias=block.aws_account_alias, discard=block.discard_regex,
                              batch_size=self.options.batch_size, limits=self.options.limits)

    def run(self) -> RunStats:
        try:
            if self.options.reparse:
                log.info("%s: reparse: reading again from %s, whatever was read before", self.block.label,
                         format_log_date(self.block.only_logs_after or utc_today()))
            for target in listing.targets(self.block, self.btype, self.lister):
                if self.stop.is_set():
                    break
                log.debug("%s: reading s3://%s/%s", self.block.label, self.block.name, target.prefix)
                self._run_target(target)
        except _EndRun:
            log.error("Ending the run at the first failure (skip_on_error is 'no')")
        except Interrupted as exc:
            log.info("%s: %s", self.block.label, exc)
        except AwsAccessError:
            if not self.stop.is_set():
                raise
            # a stop ended the listing call's wait to try again (throttled): no failure of its own
            log.info("%s: stopped while listing the bucket; it is listed again on the next run", self.block.label)
        finally:
            self.stats.list_calls = self.lister.calls
            self.stats.finish()
        return self.stats

    # --- one prefix (account, region), day by day

    def _start_day(self, scope: Scope, today: dt.date) -> tuple[dt.date, Optional[dt.date]]:
        after = self.block.only_logs_after
        cursor = self.state.cursor(scope)
        if self.options.reparse or cursor is None:
            return (after or today), cursor
        return (max(cursor, after) if after else cursor), cursor

    def _run_target(self, target: listing.Target) -> None:
        scope = Scope(self.block.name, self.block.kind, target.prefix, target.account, target.region)
        today = utc_today()
        start, cursor = self._start_day(scope, today)
        trouble: Optional[dt.date] = None  # earliest day not read in full (a failure, a stop): listed again
        reached, completed = start, False
        engine = self._engine(target)
        try:
            if target.layout.day is None:
                # keys without dates are listed in key order, not by day: after a failure or a stop, any day
                # from `start` on may still hold unread objects, so the cursor stays where it was
                trouble = start if self._read(scope, target, engine, target.prefix, None, start) else None
            else:
                for day in listing.days(start, today):
                    reached = day
                    if self.stop.is_set():
                        trouble = _earliest(trouble, day)
                        break
                    # later days are read even after a failure: their objects do not depend on it
                    trouble = _earliest(trouble, self._read(scope, target, engine, target.day_prefix(day), day, start))
            completed = True
        finally:
            if not completed:  # the sink or AWS failed: nothing from `reached` on counts as read
                trouble = _earliest(trouble, reached)
            new = today - dt.timedelta(days=1)
            new = max(min(new, trouble) if trouble else new, start)
            if cursor and new < cursor and self.options.reparse:
                new = cursor  # a reparse never moves the cursor back
            self.state.set_cursor(scope, new)
            self.state.prune(scope, new - dt.timedelta(days=RETAIN_DAYS))

    def _read(self, scope: Scope, target: listing.Target, engine: ObjectDelivery, prefix: str,
              day: Optional[dt.date], start: dt.date) -> Optional[dt.date]:
        """Deliver the new objects under prefix; returns the earliest day left unfinished, if any."""
        trouble: Optional[dt.date] = None
        for obj in self.lister.objects(prefix):
            if not target.layout.accepts(obj.key):
                continue
            obj_day = day or obj.last_modified.astimezone(dt.timezone.utc).date()
            if obj_day < start:
                continue
            if self.stop.is_set():
                return _earliest(trouble, obj_day)
            if not self.options.reparse and self.state.is_processed(scope, obj.key):
                self.stats.skipped += 1
                if self.block.remove_from_bucket:
                    self._remove(obj.key)  # delivered by a run that stopped before removing it
                continue
            try:
                ok = self._deliver(scope, engine, obj, obj_day)
            except Interrupted as exc:
                log.info("%s", exc)
                return _earliest(trouble, obj_day)
            if not ok:
                trouble = _earliest(trouble, obj_day)
        return trouble

    # --- one object: the engine delivers it, the listing acknowledges it

    def _deliver(self, scope: Scope, engine: ObjectDelivery, obj: listing.ListedObject, day: dt.date) -> bool:
        """True when delivered (or gone); False when it failed and must be read again."""
        ref = ObjectRef(self.block.name, obj.key, obj.size, obj.etag)
        if not self.options.reparse:
            self._translate_legacy_progress(scope, ref)
        outcome = engine.deliver(ref)  # SinkError and Interrupted end the pass from here
        if not outcome.delivered:
            if outcome.failure is MISSING:
                log.warning("%s was listed but is gone (removed by a lifecycle rule or another reader); skipped", ref)
                return True
            self.stats.error(outcome.failure.name)
            log.error("Cannot deliver %s: %s; it is tried again on the next run", ref, outcome.reason)
            if not self.options.skip_on_error:
                raise _EndRun() from None
            return False
        self.state.mark(scope, obj.key, day=day, etag=obj.etag, size=obj.size, events=outcome.events)
        if self.block.remove_from_bucket:
            self._remove(obj.key)
        return True

    def _translate_legacy_progress(self, scope: Scope, ref: ObjectRef) -> None:
        """A half-done object recorded by a version before the shared store counted records, not events:
        count the events its first records give (the decoder is deterministic) and save that as the
        engine's checkpoint, so the resume skips exactly what was sent. Once, for a rare upgrade case."""
        records = self.state.legacy_progress(scope, ref.key, ref.etag)
        oid = ObjectId.of(ref)
        if not records or oid is None:
            return
        events = 0
        try:
            with download(self.s3, ref, self.options.spool_dir, stop=self.stop) as fetched:
                decode = bucket_decoder(_first(self.btype.parse, records), self.btype.shape, self.btype.source,
                                        account=None, alias=None, discard=self.block.discard_regex,
                                        batch_size=self.options.batch_size, limits=self.options.limits)
                for batch in decode(fetched.file, ref):
                    events += len(batch)
        except (ObjectError, Interrupted):
            if self.stop.is_set():
                raise Interrupted(f"stopped while downloading {ref}; it is read again on the next run") from None
            return  # the engine meets the same failure and reports it
        except DecodeError:
            pass  # the records were counted (the decoder stops at the next one), or a corrupt tail came first
        self.state.set_progress(scope, ref.key, ref.etag, events)
        self.state.forget_legacy_progress(scope, ref.key)
        log.info("%s: %d records were sent before the upgrade (%d events): resuming after them", ref, records, events)

    def _remove(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.block.name, Key=key)
        except (ClientError, BotoCoreError) as exc:
            detail = describe_client_error(exc)
            log.error("Cannot remove s3://%s/%s after delivering it: %s; the identity needs s3:DeleteObject. "
                      "It is not sent again, and removal is retried on the next run", self.block.name, key, detail)
            self.stats.errors += 1
            return
        self.stats.removed += 1


_S3_CLIENTS: dict[tuple, Any] = {}
_S3_LOCK = threading.Lock()


def s3_client(block: BucketConfig, stop: threading.Event) -> Any:
    """One S3 client per identity (profile, role, endpoints), kept for the process: a new client costs a
    tenth of a second of model loading, for every block and every run otherwise. Assumed-role credentials
    refresh themselves. `stop` is the process's stop request (the same for all its runs): it ends a wait
    between two tries of a call."""
    from aws_s3_wodle.platform.aws import make_session
    from aws_s3_wodle.config.access import AwsAccess
    from dataclasses import fields as dc_fields
    key = (*(getattr(block, f.name) for f in dc_fields(AwsAccess)), id(stop))
    with _S3_LOCK:
        if key not in _S3_CLIENTS:
            _S3_CLIENTS[key] = make_session(block, stop=stop).s3()
        return _S3_CLIENTS[key]


def run_bucket(block: BucketConfig, ctx: Any) -> RunStats:
    """runner.RUNNERS entry: one pass of one <bucket> block with the run's shared sink and state directory."""
    from aws_s3_wodle.observe.log import register_secrets
    from aws_s3_wodle.errors import StateError
    from aws_s3_wodle.sources.listing.state import default_state_path

    register_secrets(block.secrets())
    if not getattr(ctx, "state_dir", None):
        raise StateError(f"{block.label} needs a state directory (--state-dir) to remember what it read")
    s3 = s3_client(block, ctx.stop)
    state = StateStore(default_state_path(ctx.state_dir))
    from aws_s3_wodle.decode.events import MAX_BATCH  # memory per batch measured there: orjson documents are not trimmed
    options = BucketOptions(batch_size=min(ctx.batch_size, MAX_BATCH), skip_on_error=ctx.options.skip_on_error,
                            reparse=getattr(ctx, "reparse", False), spool_dir=ctx.options.spool_dir,
                            limits=ctx.limits)
    run = BucketRun(block, s3, state, ctx.sink, options, ctx.stop)
    try:
        return run.run()
    finally:
        state.close()
        log.info(run.stats.summary())


def _first(parse: Any, records: int) -> Any:
    """A parser that gives only an object's first `records` records (the legacy checkpoint's count, which
    counted every record read, discarded ones included)."""
    def first(spool: Any, key: str, limits: Any) -> Any:
        return itertools.islice(parse(spool, key, limits), records)
    return first
