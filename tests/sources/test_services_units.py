"""The service sources against small in-memory stand-ins of the AWS APIs (pages, tokens, stops, failures);
the same sources run against moto's server in tests/e2e/test_e2e_services.py."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from botocore.exceptions import ClientError

from aws_s3_wodle.config.services import CloudWatchLogsService, InspectorService
from aws_s3_wodle.errors import SinkError
from aws_s3_wodle.seams import SendResult
from aws_s3_wodle.sources.services.cloudwatch import CloudWatchLogsRun
from aws_s3_wodle.errors import Interrupted
from aws_s3_wodle.sources.services.common import EndRun, ServiceOptions, ServiceRun, to_ms
from aws_s3_wodle.sources.services.inspector import InspectorRun
from aws_s3_wodle.sources.services.state import ServiceState, StreamKey
from aws_s3_wodle.sources.services.stats import ServiceStats

UTC = dt.timezone.utc
DAY = dt.datetime(2026, 3, 1, tzinfo=UTC)
T0 = to_ms(DAY) + 3600_000


class Sink:
    """Keeps what it accepted; may set the stop flag after some batches, or refuse one."""

    def __init__(self, stop_after: int = 0, stop: threading.Event = None, fail_at: int = 0) -> None:
        self.events, self.batches = [], 0
        self.stop_after, self.stop, self.fail_at = stop_after, stop, fail_at

    def send_batch(self, batch, origin):
        self.batches += 1
        if self.fail_at and self.batches == self.fail_at:
            raise SinkError("engine gone")
        self.events += list(batch)
        if self.stop_after and self.batches >= self.stop_after:
            self.stop.set()
        return SendResult(sent=len(batch), bytes=sum(len(e) for e in batch))

    def close(self):
        pass


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "nope"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Op")


class Logs:
    """GetLogEvents as AWS documents it: time order, at most `limit` per page, a forward token that comes back
    unchanged at the end; DescribeLogStreams in pages of `per_page`."""

    def __init__(self, groups: dict, per_page: int = 1, page_cap: int = 3) -> None:
        # page_cap: events per GetLogEvents page whatever the limit asked (AWS stops a page at 1 MB too)
        self.groups, self.per_page, self.page_cap, self.deleted, self.calls = groups, per_page, page_cap, [], 0

    def get_paginator(self, name):
        assert name == "describe_log_streams"
        logs = self

        class Paginator:
            def paginate(self, logGroupName):
                if logGroupName not in logs.groups:
                    raise _error("ResourceNotFoundException")
                names = sorted(logs.groups[logGroupName])
                for i in range(0, max(len(names), 1), logs.per_page):
                    yield {"logStreams": [{"logStreamName": n} for n in names[i:i + logs.per_page]]}
        return Paginator()

    def get_log_events(self, logGroupName, logStreamName, startTime, startFromHead, limit, nextToken=None):
        self.calls += 1
        assert startFromHead is True
        events = [e for e in sorted(self.groups[logGroupName][logStreamName], key=lambda e: e[0]) if e[0] >= startTime]
        index = int(nextToken[2:]) if nextToken else 0
        page = events[index:index + min(limit, self.page_cap)]
        following = f"f/{index + len(page)}"
        return {"events": [{"timestamp": t, "message": m} for t, m in page], "nextForwardToken": following}

    def delete_log_stream(self, logGroupName, logStreamName):
        self.deleted.append(logStreamName)
        del self.groups[logGroupName][logStreamName]


def _cw_run(tmp_path, logs, block, sink, stop=None, batch=2, skip_on_error=True):
    stop = stop or threading.Event()
    state = ServiceState(tmp_path / "services.sqlite3")
    run = ServiceRun(sink, state, ServiceOptions(batch_size=batch, skip_on_error=skip_on_error), stop)
    stats = ServiceStats(block.label)
    return CloudWatchLogsRun(block, logs, "123456789012", "us-east-1", run, stats), stats, state


def _block(**kw) -> CloudWatchLogsService:
    return CloudWatchLogsService(aws_log_groups=("/app",), only_logs_after=DAY.date(), **kw)


def _messages(sink) -> list[str]:
    return [e.decode() for e in sink.events]


def test_equal_timestamps_across_pages_and_runs_are_each_sent_once(tmp_path):
    stream = [(T0, f"m{i}") for i in range(5)] + [(T0 + 1, "n0")]
    logs = Logs({"/app": {"s": stream}})
    sink = Sink()
    run, stats, state = _cw_run(tmp_path, logs, _block(), sink)
    run.read()
    assert _messages(sink) == ["m0", "m1", "m2", "m3", "m4", "n0"]
    stream += [(T0 + 1, "n1"), (T0 + 1, "n2"), (T0 + 2, "o0")]  # later events, two at the newest time read
    state.close()
    run, stats, state = _cw_run(tmp_path, logs, _block(), sink)
    run.read()
    assert _messages(sink) == ["m0", "m1", "m2", "m3", "m4", "n0", "n1", "n2", "o0"]
    assert stats.events == 3 and stats.streams == 1


def test_a_stop_between_batches_records_what_was_sent_and_the_next_run_sends_the_rest(tmp_path):
    logs = Logs({"/app": {"a": [(T0 + i, f"a{i}") for i in range(7)], "b": [(T0, "b0")]}})
    stop = threading.Event()
    sink = Sink(stop_after=2, stop=stop)
    run, stats, state = _cw_run(tmp_path, logs, _block(), sink, stop=stop)
    with pytest.raises(Interrupted):
        run.read()
    assert _messages(sink) == ["a0", "a1", "a2"]  # a page of 3: a batch of 2, then the page's last one
    state.close()
    sink.stop_after = 0
    run, stats, state = _cw_run(tmp_path, logs, _block(), sink)
    run.read()
    assert _messages(sink) == [f"a{i}" for i in range(7)] + ["b0"]


def test_a_refused_batch_is_not_recorded_and_is_sent_again(tmp_path):
    logs = Logs({"/app": {"a": [(T0 + i, f"a{i}") for i in range(5)]}})
    sink = Sink(fail_at=2)
    run, _, state = _cw_run(tmp_path, logs, _block(), sink)
    with pytest.raises(SinkError):
        run.read()
    assert _messages(sink) == ["a0", "a1"]
    state.close()
    sink.fail_at = 0
    run, _, _ = _cw_run(tmp_path, logs, _block(), sink)
    run.read()
    assert _messages(sink) == ["a0", "a1", "a2", "a3", "a4"]


def test_only_logs_after_and_the_first_run_day(tmp_path):
    logs = Logs({"/app": {"a": [(T0 - 86400_000 * 2, "old"), (T0, "new")]}})
    sink = Sink()
    run, _, _ = _cw_run(tmp_path, logs, _block(), sink)
    run.read()
    assert _messages(sink) == ["new"]


def test_remove_log_streams_deletes_only_read_streams_and_forgets_them(tmp_path):
    logs = Logs({"/app": {"a": [(T0, "a0"), (T0 + 1, "a1"), (T0 + 2, "a2")], "b": [(T0, "b0")]}})
    sink = Sink()
    run, stats, state = _cw_run(tmp_path, logs, _block(remove_log_streams=True), sink)
    run.read()
    assert _messages(sink) == ["a0", "a1", "a2", "b0"] and sorted(logs.deleted) == ["a", "b"]
    assert stats.removed == 2
    assert state.position(StreamKey("cloudwatchlogs", "123456789012", "us-east-1", "/app", "a")) is None


def test_a_stream_that_got_events_while_read_is_not_removed(tmp_path):
    class Growing(Logs):
        def get_log_events(self, **kw):
            response = super().get_log_events(**kw)
            if self.calls == 2:  # while the first read ends, the application writes one more event
                self.groups["/app"]["a"].append((T0 + 9, "late"))
            return response
    logs = Growing({"/app": {"a": [(T0, "a0")]}})
    sink = Sink()
    run, stats, _ = _cw_run(tmp_path, logs, _block(remove_log_streams=True), sink)
    run.read()
    assert _messages(sink) == ["a0", "late"] and logs.deleted == [] and stats.removed == 0


def test_discard_counts_and_still_moves_the_position(tmp_path):
    from aws_s3_wodle.config.discard import parse_discard_regex
    logs = Logs({"/app": {"a": [(T0, '{"level":"DEBUG"}'), (T0 + 1, "DEBUG x"), (T0 + 2, '{"level":"INFO"}')]}})
    sink = Sink()
    block = _block(discard_regex=parse_discard_regex("DEBUG", {"field": "level"}))
    run, stats, state = _cw_run(tmp_path, logs, block, sink)
    run.read()
    assert _messages(sink) == ['{"level":"INFO"}'] and stats.discarded == 2
    state.close()
    run, stats, _ = _cw_run(tmp_path, logs, block, sink)
    run.read()
    assert stats.discarded == 0 and stats.events == 0


def test_a_missing_group_is_a_warning_a_refused_one_an_error_and_the_others_are_read(tmp_path, caplog):
    logs = Logs({"/app": {"a": [(T0, "a0")]}, "/denied": {}})
    real = logs.get_paginator

    def paginator(name):
        inner = real(name)

        class Refusing:
            def paginate(self, logGroupName):
                if logGroupName == "/denied":
                    raise _error("AccessDeniedException")
                return inner.paginate(logGroupName)
        return Refusing()
    logs.get_paginator = paginator
    block = CloudWatchLogsService(aws_log_groups=("/missing", "/denied", "/app"), only_logs_after=DAY.date())
    sink = Sink()
    run, stats, _ = _cw_run(tmp_path, logs, block, sink)
    run.read()
    assert _messages(sink) == ["a0"] and stats.missing_groups == {"/missing": 1}
    assert stats.errors == 1 and stats.error_classes["denied"] == 1
    assert stats.missing_groups["/missing"] == 1
    assert "log group '/denied' in us-east-1: cannot list its streams: AccessDeniedException" in caplog.text
    assert "logs:DescribeLogStreams" in caplog.text
    run, stats, _ = _cw_run(tmp_path / "2", logs, block, Sink(), skip_on_error=False)
    with pytest.raises(EndRun):
        run.read()


def test_streams_gone_from_aws_are_forgotten(tmp_path):
    logs = Logs({"/app": {"a": [(T0, "a0")], "b": [(T0, "b0")]}})
    run, _, state = _cw_run(tmp_path, logs, _block(), Sink())
    run.read()
    del logs.groups["/app"]["b"]
    run, _, state = _cw_run(tmp_path, logs, _block(), Sink())
    run.read()
    assert state.streams("cloudwatchlogs", "123456789012", "us-east-1", "/app") == ["a"]


# --- Inspector v2

class Inspector:
    """ListFindings with the updatedAt filter and nextToken pages of `page` findings."""

    def __init__(self, findings: list, page: int = 3) -> None:
        self.findings, self.page, self.windows = findings, page, []

    def list_findings(self, filterCriteria, maxResults, nextToken=None):
        window = filterCriteria["updatedAt"][0]
        self.windows.append((window["startInclusive"], window["endInclusive"]))
        wanted = [f for f in self.findings if window["startInclusive"] <= f["updatedAt"] <= window["endInclusive"]]
        index = int(nextToken or 0)
        out = {"findings": wanted[index:index + self.page]}
        if index + self.page < len(wanted):
            out["nextToken"] = str(index + self.page)
        return out


def _finding(n: int, updated: dt.datetime) -> dict:
    return {"findingArn": f"arn:aws:inspector2:us-east-1:1:finding/f{n}", "title": f"f{n}", "updatedAt": updated}


def _in_run(tmp_path, client, sink, now, stop=None, batch=2):
    stop = stop or threading.Event()
    state = ServiceState(tmp_path / "services.sqlite3")
    run = ServiceRun(sink, state, ServiceOptions(batch_size=batch), stop)
    block = InspectorService(only_logs_after=DAY.date())
    return InspectorRun(block, client, "1", "us-east-1", run, ServiceStats(block.label, service="inspector"),
                        now=now), state


def _titles(sink) -> list[str]:
    import json
    return [json.loads(e)["aws"]["title"] for e in sink.events]


def test_findings_once_across_pages_a_stop_and_new_updates(tmp_path):
    t = DAY + dt.timedelta(hours=1)
    findings = [_finding(i, t + dt.timedelta(minutes=i)) for i in range(7)]
    client = Inspector(findings)
    stop = threading.Event()
    sink = Sink(stop_after=2, stop=stop)
    now1 = t + dt.timedelta(hours=1)
    run, state = _in_run(tmp_path, client, sink, now1, stop=stop)
    with pytest.raises(Interrupted):
        run.read()
    assert _titles(sink) == ["f0", "f1", "f2"]  # the first page (3) in batches of 2, then the stop
    state.close()
    # the next run reads the same window again (the stopped one) and sends only the rest
    sink.stop_after = 0
    run, state = _in_run(tmp_path, client, sink, now1 + dt.timedelta(minutes=5))
    run.read()
    assert _titles(sink) == [f"f{i}" for i in range(7)]
    assert client.windows[-1][1] == now1  # the stopped window, not a new one
    # a finding updated again later is a new event; nothing else is sent twice
    findings[2] = {**findings[2], "updatedAt": now1 + dt.timedelta(minutes=10)}
    run, state = _in_run(tmp_path, client, sink, now1 + dt.timedelta(minutes=20))
    run.read()
    assert _titles(sink) == [f"f{i}" for i in range(7)] + ["f2"]
    run, state = _in_run(tmp_path, client, sink, now1 + dt.timedelta(minutes=30))
    run.read()
    assert len(sink.events) == 8


def test_a_finding_updated_exactly_at_the_window_end_is_sent_once(tmp_path):
    end = DAY + dt.timedelta(hours=2)
    client = Inspector([_finding(1, end)])
    sink = Sink()
    run, state = _in_run(tmp_path, client, sink, end)
    run.read()
    run, state = _in_run(tmp_path, client, sink, end + dt.timedelta(hours=1))
    run.read()
    assert _titles(sink) == ["f1"]


def test_findings_outside_the_window_are_skipped_even_if_returned(tmp_path):
    class Unfiltered(Inspector):  # a service (or emulator) that ignores the filter
        def list_findings(self, filterCriteria, maxResults, nextToken=None):
            return {"findings": self.findings}
    t = DAY + dt.timedelta(hours=1)
    client = Unfiltered([_finding(1, t), _finding(2, DAY - dt.timedelta(days=3))])
    sink = Sink()
    run, _ = _in_run(tmp_path, client, sink, t + dt.timedelta(hours=1))
    run.read()
    run, _ = _in_run(tmp_path, client, sink, t + dt.timedelta(hours=2))
    run.read()
    assert _titles(sink) == ["f1"]


def test_a_stream_deleted_between_listing_and_reading_is_a_warning_not_an_error(tmp_path, caplog):
    class Vanishing(Logs):
        def get_log_events(self, **kw):
            if kw["logStreamName"] == "gone":
                raise _error("ResourceNotFoundException")
            return super().get_log_events(**kw)
    logs = Vanishing({"/app": {"gone": [(T0, "g0")], "kept": [(T0, "k0")]}})
    sink = Sink()
    run, stats, _ = _cw_run(tmp_path, logs, _block(), sink)
    run.read()
    assert _messages(sink) == ["k0"] and stats.errors == 0
    assert "log stream 'gone' of '/app' (us-east-1) was deleted while the run read its group" in caplog.text


def test_reparse_reads_again_and_removes_after_one_reading(tmp_path):
    logs = Logs({"/app": {"a": [(T0, "a0"), (T0 + 1, "a1")]}})
    sink = Sink()
    run, _, state = _cw_run(tmp_path, logs, _block(), sink)
    run.read()
    state.close()
    block = _block(remove_log_streams=True)
    stop = threading.Event()
    st = ServiceState(tmp_path / "services.sqlite3")
    again = CloudWatchLogsRun(block, logs, "123456789012", "us-east-1",
                              ServiceRun(sink, st, ServiceOptions(batch_size=2, reparse=True), stop),
                              ServiceStats(block.label))
    again.read()
    assert _messages(sink) == ["a0", "a1", "a0", "a1"]  # read again once (reparse), not twice
    assert logs.deleted == ["a"]
