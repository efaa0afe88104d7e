"""`<service type="inspector">`: Amazon Inspector v2 findings, one event each time a finding is created or updated.

Per region, a run reads one window of `updatedAt`: from the stored position (else `only_logs_after`, else
the start of the first run's day) to now, with ListFindings filtered on it, page after page. The window
is stored before the first page is read, and each batch's finding ids (ARN and updatedAt) are added right
after the sink accepted it; a run stopped half-way reads the same window again on the next run and skips
what it already delivered. When the window is read in full, the position moves to its end (keeping the ids
of the findings updated exactly then, so the next window, which starts there, does not send them twice).

Findings outside the window are skipped too: the time filter is applied here as well as in the request.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterator, Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.config.services import InspectorService
from aws_s3_wodle.decode.services import inspector_event, inspector_record
from aws_s3_wodle.seams import EventBatch, SendResult
from aws_s3_wodle.errors import Interrupted
from aws_s3_wodle.sources.services.common import (EndRun, ServiceRun, classify, day_start_ms, from_ms,
                                                  shown, to_ms, utc_today)
from aws_s3_wodle.sources.services.state import Position, StreamKey
from aws_s3_wodle.sources.services.stats import ServiceStats

log = logging.getLogger("aws-s3-wodle")

SERVICE = "inspector"
NEEDS = "inspector2:ListFindings"
PAGE = 100  # ListFindings' largest page


def finding_time(finding: dict) -> Optional[int]:
    value = finding.get("updatedAt")
    if isinstance(value, dt.datetime):
        return to_ms(value)
    return None


def finding_id(finding: dict, ms: Optional[int]) -> str:
    return f"{finding.get('findingArn', '?')}@{ms}"


class InspectorRun:
    """One pass over the findings of one region."""

    def __init__(self, block: InspectorService, inspector: Any, account: str, region: str, run: ServiceRun,
                 stats: ServiceStats, now: Optional[dt.datetime] = None) -> None:
        self.block, self.client, self.account, self.region = block, inspector, account, region
        self.run, self.stats = run, stats
        self.key = StreamKey(SERVICE, account, region)
        self.now = to_ms(now or dt.datetime.now(dt.timezone.utc))
        self.batch = max(1, run.options.batch_size)

    def window(self) -> tuple[int, int, frozenset]:
        """(start, end, ids already delivered) of the window this run reads, stored before any is read."""
        after = day_start_ms(self.block.only_logs_after) if self.block.only_logs_after else None
        pos = None if self.run.options.reparse else self.run.state.position(self.key)
        if pos is not None and pos.until is not None and (after is None or after <= pos.time):
            log.info("%s: %s: resuming the window %s .. %s a stopped run left (%d findings delivered)",
                     self.block.label, self.region, shown(pos.time), shown(pos.until), len(pos.ids))
            return pos.time, pos.until, pos.ids
        if pos is None:
            start, ids = (after if after is not None else day_start_ms(utc_today())), frozenset()
        elif after is not None and after > pos.time:
            start, ids = after, frozenset()
        else:
            start, ids = pos.time, pos.ids
        end = max(self.now, start)
        self.run.state.commit(self.key, Position(start, ids=ids, until=end))
        return start, end, ids

    def read(self) -> None:
        start, end, delivered = self.window()
        self.delivered = set(delivered)
        log.debug("%s: %s: findings updated from %s to %s", self.block.label, self.region, shown(start), shown(end))
        try:
            for findings in self._pages(start, end):
                for offset in range(0, len(findings), self.batch):
                    self._deliver(findings[offset:offset + self.batch], start, end)
                    self._check_stop()
        except (ClientError, BotoCoreError) as exc:
            self._check_stop()  # a stop ended the call's wait to try again: no failure of its own
            cls, reason = classify(exc, NEEDS)
            self.stats.error(cls.name)
            log.error("%s: findings of %s: %s", self.block.label, self.region, reason)
            if not self.run.options.skip_on_error:
                raise EndRun() from None
            return
        # the window is read: move on to its end, keeping the ids of findings updated exactly then
        at_end = frozenset(i for i in self.run.state.position(self.key).ids if i.endswith(f"@{end}"))
        self.run.state.commit(self.key, Position(end, ids=at_end))

    def _pages(self, start: int, end: int) -> Iterator[list[dict]]:
        criteria = {"updatedAt": [{"startInclusive": from_ms(start), "endInclusive": from_ms(end)}]}
        token: Optional[str] = None
        while True:
            response = self.client.list_findings(filterCriteria=criteria, maxResults=PAGE,
                                                 **({"nextToken": token} if token else {}))
            yield response.get("findings", [])
            token = response.get("nextToken")
            if not token:
                return
            self._check_stop()

    def _deliver(self, findings: list[dict], start: int, end: int) -> None:
        batch, ids = EventBatch(), []
        before: list[int] = []  # for each id: the events of the batch up to it (a stop mid-batch keeps those taken)
        for finding in findings:
            self.stats.findings += 1
            ms = finding_time(finding)
            fid = finding_id(finding, ms)
            if ms is None or not start <= ms <= end:
                log.debug("%s: finding %s is outside the window %s .. %s: skipped", self.block.label, fid,
                          shown(start), shown(end))
                continue
            if fid in self.delivered:
                self.stats.skipped += 1
                continue
            ids.append(fid)
            self.delivered.add(fid)
            record = inspector_record(finding, keep_nulls=self.run.options.keep_nulls)
            rule = self.block.discard_regex
            if rule is not None and rule.matches(record):
                batch.discarded += 1
            else:
                batch.append(inspector_event(record))
            before.append(len(batch))
        self.stats.discarded += batch.discarded
        if batch:
            result = SendResult()
            try:
                result = self.run.sink.send_batch(batch, f"Inspector findings of {self.region}")
            except Interrupted as exc:  # stopped while the engine took nothing: record the findings it took
                result = exc.partial or result
                taken = [fid for fid, n in zip(ids, before) if n <= exc.handled]
                if taken:
                    self.run.state.commit(self.key, Position(start, until=end), add_ids=taken, keep_ids=True)
                raise
            finally:
                self.stats.add_sent(result)
        if ids:
            self.run.state.commit(self.key, Position(start, until=end), add_ids=ids, keep_ids=True)

    def _check_stop(self) -> None:
        if self.run.stop.is_set():
            raise Interrupted("stopped between two batches; every finding sent is recorded, the rest of the window "
                              "is read on the next run")
