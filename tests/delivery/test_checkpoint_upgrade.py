"""Files written by the versions before the shared store keep working: nothing delivered twice, no cursor lost.

The old files are made here with the old code's own SQL (git show 0bddbc9:aws_s3_wodle/state.py and
0bddbc9:aws_s3_wodle/delivered.py): `state.db` schema 1 (processed, cursors, inflight, meta) and
`delivered.sqlite3` (delivered, progress).
"""
from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

from aws_s3_wodle.config.settings import RunSettings
from aws_s3_wodle.delivery.checkpoints import DeliveryStore, Forgiving, open_store
from aws_s3_wodle.run.process import reset_state
from aws_s3_wodle.seams import ObjectId
from aws_s3_wodle.sources.listing.state import Scope, StateStore

OLD_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (
    bucket TEXT NOT NULL, kind TEXT NOT NULL, prefix TEXT NOT NULL, key TEXT NOT NULL,
    account TEXT NOT NULL, region TEXT NOT NULL, day TEXT, etag TEXT, size INTEGER, events INTEGER,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (bucket, kind, prefix, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    bucket TEXT NOT NULL, kind TEXT NOT NULL, prefix TEXT NOT NULL,
    account TEXT NOT NULL, region TEXT NOT NULL, day TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (bucket, kind, prefix)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inflight (
    bucket TEXT NOT NULL, kind TEXT NOT NULL, prefix TEXT NOT NULL, key TEXT NOT NULL,
    etag TEXT NOT NULL, records INTEGER NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (bucket, kind, prefix, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

OLD_DELIVERED_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivered (
    bucket TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL,
    events INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (bucket, key, version));
CREATE TABLE IF NOT EXISTS progress (
    bucket TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL,
    events INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (bucket, key, version));
CREATE INDEX IF NOT EXISTS delivered_at ON delivered (at);
CREATE INDEX IF NOT EXISTS progress_at ON progress (at);
"""

SCOPE = Scope("logs", "cloudtrail", "AWSLogs/1/CloudTrail/us-east-1/", "1", "us-east-1")
NOW = "2026-12-01T00:00:00Z"


def _old_files(state_dir, *, keep_wal_open: bool = False):
    """An old installation's two files, as the old code left them (WAL mode, schema 1)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state_dir / "state.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_STATE_SCHEMA)
    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", ("1",))
    db.execute("INSERT OR REPLACE INTO processed VALUES (?,?,?,?,?,?,?,?,?,?,?)",
               (SCOPE.bucket, SCOPE.kind, SCOPE.prefix, "AWSLogs/1/CloudTrail/us-east-1/2026/11/30/a.json.gz",
                "1", "us-east-1", "2026-11-30", "etag-a", 100, 5, NOW))
    db.execute("INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?,?)",
               (SCOPE.bucket, SCOPE.kind, SCOPE.prefix, "1", "us-east-1", "2026-11-30", NOW))
    db.execute("INSERT OR REPLACE INTO inflight VALUES (?,?,?,?,?,?,?)",
               (SCOPE.bucket, SCOPE.kind, SCOPE.prefix, "AWSLogs/1/CloudTrail/us-east-1/2026/12/01/b.json.gz",
                "etag-b", 20, NOW))
    db.close()
    old = sqlite3.connect(state_dir / "delivered.sqlite3", isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript(OLD_DELIVERED_SCHEMA)
    now = time.time()
    old.execute("INSERT OR REPLACE INTO delivered VALUES (?, ?, ?, ?, ?)", ("lake", "done.parquet", "v1", 1200, now))
    old.execute("INSERT INTO progress VALUES (?, ?, ?, ?, ?)", ("lake", "half.parquet", "v1", 500, now))
    if keep_wal_open:
        return old  # rows still in the WAL, as a killed old process leaves them
    old.close()
    return None


def test_an_old_installation_keeps_its_cursors_deliveries_and_progress(tmp_path):
    state_dir = tmp_path / "state"
    _old_files(state_dir)
    listing = StateStore(state_dir / "state.db")  # a bucket block's run opens it first
    assert listing.cursor(SCOPE) == dt.date(2026, 11, 30)
    assert listing.is_processed(SCOPE, "AWSLogs/1/CloudTrail/us-east-1/2026/11/30/a.json.gz")
    assert listing.legacy_progress(SCOPE, "AWSLogs/1/CloudTrail/us-east-1/2026/12/01/b.json.gz", "etag-b") == 20
    listing.close()
    store = open_store(state_dir)  # then a subscriber's
    assert isinstance(store, Forgiving)
    assert store.is_delivered(ObjectId("lake", "done.parquet", "v1"))  # not sent again after the upgrade
    assert store.resume_point(ObjectId("lake", "half.parquet", "v1")) == 500  # resumes where it stopped
    store.close()
    assert not (state_dir / "delivered.sqlite3").exists() and (state_dir / "delivered.sqlite3.migrated").exists()
    with sqlite3.connect(state_dir / "state.db") as db:
        assert db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone() == ("2",)
    again = DeliveryStore(state_dir / "state.db")  # opening an upgraded file changes nothing
    assert again.is_delivered(ObjectId("lake", "done.parquet", "v1"))
    again.close()


def test_rows_still_in_the_old_files_wal_are_taken_too(tmp_path):
    state_dir = tmp_path / "state"
    old = _old_files(state_dir, keep_wal_open=True)
    try:
        store = DeliveryStore(state_dir / "state.db")
        assert store.is_delivered(ObjectId("lake", "done.parquet", "v1"))
        store.close()
    finally:
        old.close()


def test_a_row_of_the_new_store_wins_over_the_old_file(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    old = sqlite3.connect(state_dir / "delivered.sqlite3", isolation_level=None)
    old.executescript(OLD_DELIVERED_SCHEMA)
    old.execute("INSERT INTO progress VALUES ('lake', 'half.parquet', 'v1', 500, ?)", (time.time(),))
    old.close()
    new = sqlite3.connect(state_dir / "state.db", isolation_level=None)  # written by this version, not upgraded
    new.executescript("CREATE TABLE progress (bucket TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL, "
                      "events INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (bucket, key, version));")
    new.execute("INSERT INTO progress VALUES ('lake', 'half.parquet', 'v1', 900, ?)", (time.time(),))
    new.close()
    store = DeliveryStore(state_dir / "state.db")
    assert store.resume_point(ObjectId("lake", "half.parquet", "v1")) == 900
    store.close()


def test_two_processes_upgrading_at_once_take_the_rows_once(tmp_path):
    state_dir = tmp_path / "state"
    _old_files(state_dir)
    stores, errors = [], []

    def open_one() -> None:
        try:
            stores.append(DeliveryStore(state_dir / "state.db"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 2
    assert all(s.is_delivered(ObjectId("lake", "done.parquet", "v1")) for s in stores)
    for s in stores:
        s.close()


def test_reset_state_forgets_an_upgraded_bucket(tmp_path):
    state_dir = tmp_path / "state"
    _old_files(state_dir)
    settings = RunSettings(state_dir=str(state_dir))
    assert reset_state(settings, "logs") == 0
    listing = StateStore(state_dir / "state.db")
    assert listing.cursor(SCOPE) is None and listing.count("logs") == 0
    assert listing.legacy_progress(SCOPE, "AWSLogs/1/CloudTrail/us-east-1/2026/12/01/b.json.gz", "etag-b") == 0
    listing.close()
