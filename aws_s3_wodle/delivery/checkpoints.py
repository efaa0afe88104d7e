"""Which objects were fully delivered, and how far a half-done one got: a small local SQLite file.

SQS delivers at least once: a message comes back when our delete failed, when we died between the last
event and the delete, or when the sender notified twice. With this store:
- an object already delivered (same bucket, key and version or ETag) is acknowledged without resending;
- an object whose delivery stopped half-way (killed, engine gone, stopped) resumes after the last batch
  the sink accepted, so at most the one batch in flight is sent twice.
Rows older than the retention window are dropped (SQS keeps a message 14 days at most, so an older
redelivery cannot happen). Several processes may share the file (SQLite locks it; WAL mode).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from aws_s3_wodle.seams import ObjectId

log = logging.getLogger("aws-s3-wodle")

FILE_NAME = "delivered.sqlite3"
DEFAULT_RETENTION = 14 * 86400  # SQS's longest message retention


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
"""


class DeliveryStore:
    """Delivered objects and per-object progress (events handed to the sink), shared by threads."""

    def __init__(self, path: Path, retention: float = DEFAULT_RETENTION, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.retention = retention
        self.clock = clock
        self.lock = threading.Lock()
        self.failed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # a commit survives a killed process
            self.db.executescript(_SCHEMA)
            self.prune()
        except sqlite3.Error:
            self.db.close()
            raise

    def prune(self) -> int:
        """Forget what is older than the retention window; returns the rows removed."""
        cutoff = self.clock() - self.retention
        with self.lock:
            n = self.db.execute("DELETE FROM delivered WHERE at < ?", (cutoff,)).rowcount
            n += self.db.execute("DELETE FROM progress WHERE at < ?", (cutoff,)).rowcount
        return n

    # A failing store (disk full, file removed) must not stop delivery: it only costs duplicates later.
    # Each method logs one warning per run of trouble and answers as if the store were empty.

    def _warn(self, exc: sqlite3.Error) -> None:
        if not self.failed:
            log.warning("The delivery state %s failed (%s): delivery goes on, but a redelivered notification may "
                        "be sent again", self.path, exc)
        self.failed = True

    def _row(self, query: str, oid: ObjectId) -> Optional[tuple]:
        """The row `query` selects for this object; None when there is none or the store failed."""
        try:
            with self.lock:
                return self.db.execute(query, (oid.bucket, oid.key, oid.version)).fetchone()
        except sqlite3.Error as exc:
            self._warn(exc)
            return None

    def is_delivered(self, oid: ObjectId) -> bool:
        return self._row("SELECT 1 FROM delivered WHERE bucket=? AND key=? AND version=?", oid) is not None

    def resume_point(self, oid: ObjectId) -> int:
        """Events of this object the sink already accepted (0 when it was never started)."""
        row = self._row("SELECT events FROM progress WHERE bucket=? AND key=? AND version=?", oid)
        return int(row[0]) if row else 0

    def save_progress(self, oid: ObjectId, events: int) -> None:
        try:
            with self.lock:
                self.db.execute("INSERT INTO progress VALUES (?, ?, ?, ?, ?) ON CONFLICT (bucket, key, version) "
                                "DO UPDATE SET events=excluded.events, at=excluded.at",
                                (oid.bucket, oid.key, oid.version, events, self.clock()))
        except sqlite3.Error as exc:
            self._warn(exc)

    def mark_delivered(self, oid: ObjectId, events: int) -> None:
        try:
            with self.lock:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    self.db.execute("INSERT OR REPLACE INTO delivered VALUES (?, ?, ?, ?, ?)",
                                    (oid.bucket, oid.key, oid.version, events, self.clock()))
                    self.db.execute("DELETE FROM progress WHERE bucket=? AND key=? AND version=?",
                                    (oid.bucket, oid.key, oid.version))
                    self.db.execute("COMMIT")
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            self._warn(exc)

    def close(self) -> None:
        with self.lock:
            self.db.close()


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


def open_store(state_dir: Optional[Path], retention: float = DEFAULT_RETENTION):
    """The store under state_dir, or NoStore (with one warning) when it cannot be opened."""
    if state_dir is None:
        return NoStore()
    try:
        return DeliveryStore(Path(state_dir) / FILE_NAME, retention)
    except (OSError, sqlite3.Error) as exc:
        log.warning("Cannot open the delivery state %s (%s): redelivered notifications will be sent again and "
                    "half-done objects restart from their first event; give a writable --state-dir",
                    Path(state_dir) / FILE_NAME, exc)
        return NoStore()
