"""The per-block scheduler: interval, run on start, 'Interval overtaken.', no overlap, clean stop."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from aws_s3_wodle.config.wodle import Wodle
from aws_s3_wodle.run.schedule import BlockScheduler, first_delay


def test_overtaken_run_warns_and_next_starts_at_once(caplog):
    stop = threading.Event()
    starts: list[float] = []
    running = threading.Event()
    overlaps = []

    def slow_run():
        if running.is_set():
            overlaps.append(True)
        running.set()
        starts.append(time.monotonic())
        time.sleep(1.5 if len(starts) == 1 else 0.05)  # the first run outlasts the 1 s interval
        running.clear()
        if len(starts) == 3:
            stop.set()

    caplog.set_level(logging.INFO, logger="aws-s3-wodle")
    sched = BlockScheduler("block", Wodle(interval=1), slow_run, stop, run_on_start=True)
    sched.start()
    sched.join(10)
    assert not sched.is_alive() and len(starts) == 3 and not overlaps
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == ["Interval overtaken."]
    # run 2 started right after run 1 ended (no wait), run 3 one interval after run 2 started
    assert starts[1] - starts[0] < 1.7
    assert 0.9 < starts[2] - starts[1] < 1.5


def test_not_on_start_waits_an_interval_and_stops_cleanly():
    stop = threading.Event()
    calls = []
    sched = BlockScheduler("block", Wodle(interval=30), lambda: calls.append(1), stop, run_on_start=False)
    sched.start()
    time.sleep(0.3)
    stop.set()
    sched.join(2)
    assert not sched.is_alive() and calls == []


def test_first_run_at_time_and_weekday():
    monday_10 = dt.datetime(2026, 11, 23, 10, 0)  # a Monday
    assert first_delay(Wodle(interval=600, time="11:30"), False, monday_10) == 5400
    assert first_delay(Wodle(interval=600, time="09:00", wday=2), False, monday_10) == (2 * 86400 - 3600)
    assert first_delay(Wodle(interval=600, time="09:00"), True, monday_10) == 0
    assert first_delay(Wodle(interval=600), False, monday_10) == 600
