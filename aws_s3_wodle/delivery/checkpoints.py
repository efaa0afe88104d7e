"""The checkpoint store: what was delivered, and how far a half-done object got. One SQLite file.

Every source uses it through the engine (delivery/engine.py), with one protocol (seams.CheckpointStore):
- an object already delivered (same bucket, key and version or ETag) is acknowledged without resending;
- an object whose delivery stopped half-way (killed, engine gone, stopped) resumes after the last batch
  the sink accepted (positions count events), so at most the one batch in flight is sent twice.

The file is `state.db` in the state directory: WAL mode, several processes and threads may share it.
Besides the engine's tables (`delivered`, `progress`) it holds the bucket listing's own (`processed`,
`cursors`: sources/listing/state.py), so one schema lives here, in one place. Rows of `delivered` and
`progress` older than the retention window are dropped (SQS keeps a message 14 days at most).

Upgrading from the two files of earlier versions (`state.db` schema 1 with processed/cursors/inflight,
and `delivered.sqlite3` with delivered/progress) is done on open, once, in one transaction: the rows of
`delivered.sqlite3` move into `state.db` (the old file is kept as `delivered.sqlite3.migrated`);
`processed` and `cursors` are kept as they are; half-done bucket objects of schema 1 (`inflight`,
counted in records) are translated by the listing when it meets them again (listing/state.py).

A failing store raises StateError. Each source decides what that means: a bucket block stops (its cursor is
its only memory), a subscriber goes on without deduplication (`Forgiving`, with one warning).
"""
from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from aws_s3_wodle.errors import StateError
from aws_s3_wodle.seams import CheckpointStore, ObjectId

log = logging.getLogger("aws-s3-wodle")

FILE_NAME = "state.db"
LEGACY_FILE = "delivered.sqlite3"   # the subscribers' store before version 2 of the schema
SCHEMA_VERSION = 2
DEFAULT_RETENTION = 14 * 86400      # SQS's longest message retention

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS processed (
    bucket TEXT NOT NULL, kind TEXT NOT NULL, prefix TEXT NOT NULL, key TEXT NOT NULL,
    account TEXT NOT NULL, region TEXT NOT NULL, day TEXT, etag TEXT, size INTEGER, events INTEGER,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (bucket, kind, prefix, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    bucket TEXT NOT NULL, kind TEXT NOT NULL, prefix TEXT NOT NULL,
    account TEXT NOT NULL, region TEXT NOT NULL, day TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (bucket, kind, prefix)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class DeliveryStore:
    """The checkpoint store (seams.CheckpointStore) over `state.db`, shared by threads; raises StateError."""

    def __init__(self, path: Path, retention: float = DEFAULT_RETENTION, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.retention = retention
        self.clock = clock
        self.lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database {self.path}: {exc}; check --state-dir and its "
                             "permissions") from None
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # with WAL: a commit survives a killed process
            self.db.executescript(_SCHEMA)
            if self._version() < SCHEMA_VERSION:
                with _directory_lock(self.path.parent):  # one upgrader at a time, across processes too
                    migrated = self._upgrade()
                    if migrated is not None:
                        self._retire(migrated)
            self.prune()
        except (OSError, sqlite3.Error, StateError) as exc:
            self.db.close()
            if isinstance(exc, StateError):
                raise
            raise StateError(f"cannot open the state database {self.path}: {exc}; check --state-dir and its "
                             "permissions") from None

    # --- upgrade from the files of earlier versions

    def _upgrade(self) -> Optional[Path]:
        """Bring the file to SCHEMA_VERSION; returns the legacy file whose rows were taken in, if any."""
        if self._version() >= SCHEMA_VERSION:
            return None
        legacy = self.path.with_name(LEGACY_FILE)
        attached = False
        if legacy.exists() and legacy != self.path:
            _checkpoint(legacy)  # its WAL into the file, so ATTACH sees every committed row
            self.db.execute("ATTACH DATABASE ? AS legacy", (str(legacy),))  # not allowed inside a transaction
            attached = True
        try:
            with self.transaction():
                if self._version() >= SCHEMA_VERSION:
                    return None  # another process upgraded the file meanwhile
                tables = {r[0] for r in self.db.execute(
                    "SELECT name FROM legacy.sqlite_master WHERE type='table'")} if attached else set()
                for table in ("delivered", "progress"):
                    if table in tables:  # a row already here (delivered since, by this version) wins
                        self.db.execute(f"INSERT OR IGNORE INTO main.{table} (bucket, key, version, events, at) "
                                        f"SELECT bucket, key, version, events, at FROM legacy.{table}")
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        finally:
            if attached:
                self.db.execute("DETACH DATABASE legacy")
        if attached:
            log.info("Moved the delivery state of %s into %s (the old file is kept as %s.migrated)", legacy,
                     self.path, legacy.name)
            return legacy
        return None

    def _version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _retire(self, legacy: Path) -> None:
        """The legacy file is renamed, not deleted: an operator can still look into it."""
        try:
            os.replace(legacy, legacy.with_name(legacy.name + ".migrated"))
            for suffix in ("-wal", "-shm"):
                Path(str(legacy) + suffix).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Cannot rename %s after moving its rows into %s (%s); it is not read again", legacy,
                        self.path, exc)

    # --- SQL for this store and the listing's tables

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def write(self, sql: str, args: tuple = ()) -> int:
        try:
            with self.lock:
                return self.db.execute(sql, args).rowcount
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the state database {self.path}: {exc}; nothing more is delivered "
                             "until it can record what was") from None

    def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            with self.lock:
                return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the state database {self.path}: {exc}") from None

    def atomically(self, *statements: tuple[str, tuple]) -> None:
        """Several writes in one transaction: all of them or none."""
        try:
            with self.transaction() as db:
                for sql, args in statements:
                    db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the state database {self.path}: {exc}; nothing more is delivered "
                             "until it can record what was") from None

    # --- the checkpoint protocol

    def prune(self) -> int:
        """Forget what is older than the retention window; returns the rows removed."""
        cutoff = self.clock() - self.retention
        return (self.write("DELETE FROM delivered WHERE at < ?", (cutoff,)) +
                self.write("DELETE FROM progress WHERE at < ?", (cutoff,)))

    def is_delivered(self, oid: ObjectId) -> bool:
        return bool(self.read("SELECT 1 FROM delivered WHERE bucket=? AND key=? AND version=?",
                              (oid.bucket, oid.key, oid.version)))

    def resume_point(self, oid: ObjectId) -> int:
        """Events of this object the sink already accepted (0 when it was never started)."""
        rows = self.read("SELECT events FROM progress WHERE bucket=? AND key=? AND version=?",
                         (oid.bucket, oid.key, oid.version))
        return int(rows[0][0]) if rows else 0

    def save_progress(self, oid: ObjectId, events: int) -> None:
        self.write("INSERT INTO progress VALUES (?, ?, ?, ?, ?) ON CONFLICT (bucket, key, version) "
                   "DO UPDATE SET events=excluded.events, at=excluded.at",
                   (oid.bucket, oid.key, oid.version, events, self.clock()))

    def mark_delivered(self, oid: ObjectId, events: int) -> None:
        ident = (oid.bucket, oid.key, oid.version)
        self.atomically(("INSERT OR REPLACE INTO delivered VALUES (?, ?, ?, ?, ?)", (*ident, events, self.clock())),
                        ("DELETE FROM progress WHERE bucket=? AND key=? AND version=?", ident))

    def forget_bucket(self, bucket: str) -> int:
        """Forget every object of one bucket delivered or begun (--reset-state); returns the rows removed."""
        return (self.write("DELETE FROM delivered WHERE bucket=?", (bucket,)) +
                self.write("DELETE FROM progress WHERE bucket=?", (bucket,)))

    def close(self) -> None:
        with self.lock:
            self.db.close()


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive flock on the state directory itself (no lock file left behind): a second process or
    thread upgrading the same files waits, then finds them upgraded."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _checkpoint(path: Path) -> None:
    """Fold a WAL-mode file's log into it (a file last closed by a killed process may still have one)."""
    db = sqlite3.connect(str(path), timeout=60)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


class Forgiving:
    """A checkpoint store that never stops delivery: a failure costs duplicates later, not events now.

    For subscribers: the queue keeps every message not acknowledged, so without the store at-least-once
    still holds; each method logs one warning per run of trouble and answers as if the store were empty.
    """

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.path = getattr(store, "path", None)
        self.failed = False

    def _guard(self, call: Callable[[], Any], empty: Any) -> Any:
        try:
            return call()
        except StateError as exc:
            if not self.failed:
                log.warning("The delivery state %s failed (%s): delivery goes on, but a redelivered notification "
                            "may be sent again", self.path, exc)
            self.failed = True
            return empty

    def is_delivered(self, oid: ObjectId) -> bool:
        return self._guard(lambda: self.store.is_delivered(oid), False)

    def resume_point(self, oid: ObjectId) -> int:
        return self._guard(lambda: self.store.resume_point(oid), 0)

    def save_progress(self, oid: ObjectId, events: int) -> None:
        self._guard(lambda: self.store.save_progress(oid, events), None)

    def mark_delivered(self, oid: ObjectId, events: int) -> None:
        self._guard(lambda: self.store.mark_delivered(oid, events), None)

    def close(self) -> None:
        self._guard(self.store.close, None)


class NoStore:
    """Used when the state directory cannot be written: at-least-once still holds, without dedupe."""

    path = None

    def is_delivered(self, oid: ObjectId) -> bool:
        return False

    def resume_point(self, oid: ObjectId) -> int:
        return 0

    def save_progress(self, oid: ObjectId, events: int) -> None:
        pass

    def mark_delivered(self, oid: ObjectId, events: int) -> None:
        pass

    def close(self) -> None:
        pass


def open_store(state_dir: Optional[Path], retention: float = DEFAULT_RETENTION) -> CheckpointStore:
    """For subscribers: the store under state_dir, forgiving its failures; NoStore (with one warning) when
    it cannot be opened."""
    if state_dir is None:
        return NoStore()
    try:
        return Forgiving(DeliveryStore(Path(state_dir) / FILE_NAME, retention))
    except StateError as exc:
        log.warning("Cannot open the delivery state %s (%s): redelivered notifications will be sent again and "
                    "half-done objects restart from their first event; give a writable --state-dir",
                    Path(state_dir) / FILE_NAME, exc)
        return NoStore()
