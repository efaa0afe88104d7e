"""One pass over one bucket block: list -> fetch -> decode -> shape -> send -> record -> remove.

At-least-once: an object is recorded as delivered only after the sink took all its events; with
<remove_from_bucket>, it is deleted only after that (and an object recorded but still present, e.g.
after a crash between the two, is deleted on the next pass). A stop (SIGTERM) ends the pass between
batches; the records already sent of the object in flight are remembered, not sent again.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.platform.aws import describe_client_error
from aws_s3_wodle.config.buckets import BucketConfig, format_log_date
from aws_s3_wodle.errors import ObjectError
from aws_s3_wodle.decode.events import discarded, is_text_line
from aws_s3_wodle.delivery.fetch import fetch_object
from aws_s3_wodle.decode.formats import DecodeError
from aws_s3_wodle.decode.limits import LimitExceeded
from aws_s3_wodle.decode.formats.serialize import dumps
from aws_s3_wodle.seams import ObjectRef
from aws_s3_wodle.seams import Sink
from aws_s3_wodle.sources.listing.state import Scope, StateStore
from aws_s3_wodle.observe.stats import RunStats
from aws_s3_wodle.sources.sqs.subscriber import Interrupted
from aws_s3_wodle.sources.listing import lister as listing
from aws_s3_wodle.decode.shape import wrap
from aws_s3_wodle.sources.listing.layouts import TYPES, BucketType

log = logging.getLogger("aws-s3-wodle")

# Days of state kept before the cursor (those days are not listed again; the margin is for safety).
RETAIN_DAYS = 2


@dataclass
class BucketStats(RunStats):
    skipped: int = 0      # listed objects already delivered by an earlier run
    discarded: int = 0    # events dropped by <discard_regex>
    removed: int = 0      # objects deleted from the bucket (<remove_from_bucket>)
    list_calls: int = 0

    def summary(self) -> str:
        extra = f", {self.oversized} oversized events recorded" if self.oversized else ""
        extra += f", {self.discarded} events discarded" if self.discarded else ""
        extra += f", {self.removed} objects removed" if self.removed else ""
        return (f"Run of {self.label} done: {self.objects} objects ({self.skipped} already read), {self.events} "
                f"events, {self.bytes} bytes, {self.errors} errors{extra} in {self.seconds:.2f} s "
                f"({self.rate:.1f} events/s)")


@dataclass
class BucketOptions:
    batch_size: int = 5000          # records per batch sent to the sink (and per progress record)
    skip_on_error: bool = True
    reparse: bool = False           # read again from only_logs_after, whatever the state says
    spool_dir: Optional[str] = None


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
        self.stats = BucketStats(block.label)

    def run(self) -> BucketStats:
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
        try:
            if target.layout.day is None:
                # keys without dates are listed in key order, not by day: after a failure or a stop, any day
                # from `start` on may still hold unread objects, so the cursor stays where it was
                trouble = start if self._read(scope, target, target.prefix, None, start) else None
            else:
                for day in listing.days(start, today):
                    reached = day
                    if self.stop.is_set():
                        trouble = _earliest(trouble, day)
                        break
                    # later days are read even after a failure: their objects do not depend on it
                    trouble = _earliest(trouble, self._read(scope, target, target.day_prefix(day), day, start))
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

    def _read(self, scope: Scope, target: listing.Target, prefix: str, day: Optional[dt.date],
              start: dt.date) -> Optional[dt.date]:
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
                ok = self._deliver(scope, target, obj, obj_day)
            except Interrupted as exc:
                log.info("%s", exc)
                return _earliest(trouble, obj_day)
            if not ok:
                trouble = _earliest(trouble, obj_day)
        return trouble

    # --- one object

    def _events(self, records: Iterator[dict], key: str, account: str,
                resume: int) -> Iterator[tuple[int, list[bytes], bool]]:
        """(records consumed so far, the events of this batch, whether it is the last batch), per batch of
        batch_size records; the first `resume` records (sent by an earlier run) are skipped."""
        btype, block, size = self.btype, self.block, self.options.batch_size
        rule = block.discard_regex
        batch: list[bytes] = []
        consumed = 0
        try:
            for record in records:
                index = consumed + 1
                if index > resume:
                    text_line = rule is not None and is_text_line(record)
                    for event in btype.shape(record, btype.source):
                        if rule is not None and (discarded(rule, record) if text_line else rule.matches(event)):
                            self.stats.discarded += 1
                        else:
                            batch.append(dumps(wrap(event, key=key, bucket=block.name, account=account or None,
                                                    alias=block.aws_account_alias)))
                consumed = index
                if consumed > resume and (consumed - resume) % size == 0:
                    yield consumed, batch, False
                    batch = []
        except DecodeError:
            # a corrupt tail: deliver (and remember) the records read before it, then report the object
            if consumed > resume:
                yield consumed, batch, False
            raise
        except Exception as exc:  # a decoder or shaper bug on odd input: an error of this object, not the run
            log.debug("Unexpected error decoding %s", key, exc_info=True)
            if consumed > resume:
                yield consumed, batch, False
            raise DecodeError(f"unexpected {type(exc).__name__} in the decoder: {exc}") from None
        yield consumed, batch, True

    def _deliver(self, scope: Scope, target: listing.Target, obj: listing.ListedObject, day: dt.date) -> bool:
        """True when delivered (or gone); False when it failed and must be read again."""
        ref = ObjectRef(self.block.name, obj.key, obj.size, obj.etag)
        origin = str(ref)
        resume = 0 if self.options.reparse else self.state.progress(scope, obj.key, obj.etag)
        events = sent_bytes = 0
        try:
            log.debug("Fetching %s%s", origin, f" (resuming after record {resume})" if resume else "")
            with fetch_object(self.s3, ref, self.options.spool_dir) as spool:
                try:
                    records = self.btype.parse(spool, obj.key)
                    for consumed, batch, last in self._events(records, obj.key, target.account, resume):
                        if self.stop.is_set():
                            raise Interrupted(f"Stopped in the middle of {origin} after {events} events; the rest "
                                              "is read on the next run")
                        if batch:
                            result = self.sink.send_batch(batch, origin)
                            self.stats.oversized += result.oversized
                            events, sent_bytes = events + result.sent, sent_bytes + result.bytes
                        if not last:
                            self.state.set_progress(scope, obj.key, obj.etag, consumed)
                except DecodeError as exc:
                    raise ObjectError(ref.bucket, ref.key, f"cannot decode after {events} events: {exc}",
                                      kind="refused" if isinstance(exc, LimitExceeded) else "corrupt") from None
        except ObjectError as exc:
            if exc.kind == "missing":
                log.warning("%s was listed but is gone (removed by a lifecycle rule or another reader); skipped",
                            origin)
                return True
            self.stats.errors += 1
            log.error("Cannot deliver %s: %s; it is tried again on the next run", origin, exc.reason)
            if not self.options.skip_on_error:
                raise _EndRun() from None
            return False
        finally:
            self.stats.events += events
            self.stats.bytes += sent_bytes
        self.state.mark(scope, obj.key, day=day, etag=obj.etag, size=obj.size, events=events)
        self.stats.objects += 1
        log.debug("Delivered %d events of %s", events, origin)
        if self.block.remove_from_bucket:
            self._remove(obj.key)
        return True

    def _remove(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.block.name, Key=key)
        except (ClientError, BotoCoreError) as exc:
            detail = describe_client_error(exc) if isinstance(exc, ClientError) else str(exc)
            log.error("Cannot remove s3://%s/%s after delivering it: %s; the identity needs s3:DeleteObject. "
                      "It is not sent again, and removal is retried on the next run", self.block.name, key, detail)
            self.stats.errors += 1
            return
        self.stats.removed += 1


_S3_CLIENTS: dict[tuple, Any] = {}
_S3_LOCK = threading.Lock()


def s3_client(block: BucketConfig) -> Any:
    """One S3 client per identity (profile, role, endpoints), kept for the process: a new client costs a
    tenth of a second of model loading, for every block and every run otherwise. Assumed-role credentials
    refresh themselves."""
    from aws_s3_wodle.platform.aws import make_session
    from aws_s3_wodle.config.access import AwsAccess
    from dataclasses import fields as dc_fields
    key = tuple(getattr(block, f.name) for f in dc_fields(AwsAccess))
    with _S3_LOCK:
        if key not in _S3_CLIENTS:
            _S3_CLIENTS[key] = make_session(block).s3()
        return _S3_CLIENTS[key]


def run_bucket(block: BucketConfig, ctx: Any) -> BucketStats:
    """runner.RUNNERS entry: one pass of one <bucket> block with the run's shared sink and state directory."""
    from aws_s3_wodle.observe.log import register_secrets
    from aws_s3_wodle.sources.listing.state import StateError, default_state_path

    register_secrets(block.secrets())
    if not getattr(ctx, "state_dir", None):
        raise StateError(f"{block.label} needs a state directory (--state-dir) to remember what it read")
    s3 = s3_client(block)
    state = StateStore(default_state_path(ctx.state_dir))
    from aws_s3_wodle.decode.events import MAX_BATCH  # memory per batch measured there: orjson documents are not trimmed
    options = BucketOptions(batch_size=min(ctx.batch_size, MAX_BATCH), skip_on_error=ctx.options.skip_on_error,
                            reparse=getattr(ctx, "reparse", False), spool_dir=ctx.options.spool_dir)
    run = BucketRun(block, s3, state, ctx.sink, options, ctx.stop)
    try:
        return run.run()
    finally:
        state.close()
        log.info(run.stats.summary())
