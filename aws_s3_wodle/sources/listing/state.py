"""What the bucket readers already delivered, in SQLite: one row per object, committed per object.

A scope is one listing prefix of one bucket block (bucket, type, and the key prefix down to the region,
e.g. `AWSLogs/123456789012/CloudTrail/us-east-1/`). Per scope we keep the keys delivered and a cursor,
the first day the next run must list again; days before it were listed in full and are not listed again
(rows older than the cursor are pruned). Each `mark` is its own transaction, so a crash loses at most
the object in flight, which is then delivered again; for an object of several batches, the records
already delivered are recorded after each batch (`inflight`), so only the batch in flight is resent.
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from aws_s3_wodle.errors import WodleError

SCHEMA_VERSION = 1
STATE_FILE = "state.db"

_SCHEMA = """
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


class StateError(WodleError):
    """The state database cannot be opened or written: nothing is delivered without a place to record it."""

    exit_code = 4


@dataclass(frozen=True)
class Scope:
    bucket: str
    kind: str
    prefix: str
    account: str = ""
    region: str = ""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateStore:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()  # blocks of one process may share the store from their threads
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across a process crash
            self.db.executescript(_SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database {self.path}: {exc}; check --state-dir and its "
                             "permissions") from None

    def _write(self, sql: str, args: tuple) -> int:
        try:
            with self.lock:
                return self.db.execute(sql, args).rowcount
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the state database {self.path}: {exc}; nothing more is delivered "
                             "until it can record what was") from None

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        try:
            with self.lock:
                return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the state database {self.path}: {exc}") from None

    def is_processed(self, scope: Scope, key: str) -> bool:
        return bool(self._read("SELECT 1 FROM processed WHERE bucket=? AND kind=? AND prefix=? AND key=?",
                               (scope.bucket, scope.kind, scope.prefix, key)))

    def mark(self, scope: Scope, key: str, *, day: Optional[dt.date], etag: Optional[str] = None,
             size: Optional[int] = None, events: int = 0) -> None:
        """Record one delivered object (and forget its progress) in one transaction, committed on return."""
        args = (scope.bucket, scope.kind, scope.prefix, key)
        try:
            with self.lock, self.db:  # BEGIN ... COMMIT
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("INSERT OR REPLACE INTO processed VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                (*args, scope.account, scope.region, day.isoformat() if day else None, etag, size,
                                 events, _now()))
                self.db.execute("DELETE FROM inflight WHERE bucket=? AND kind=? AND prefix=? AND key=?", args)
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the state database {self.path}: {exc}; nothing more is delivered "
                             "until it can record what was") from None

    def progress(self, scope: Scope, key: str, etag: Optional[str]) -> int:
        """Records of this object (this version of it) already delivered by an earlier, unfinished run."""
        rows = self._read("SELECT records FROM inflight WHERE bucket=? AND kind=? AND prefix=? AND key=? AND etag=?",
                          (scope.bucket, scope.kind, scope.prefix, key, etag or ""))
        return rows[0][0] if rows else 0

    def set_progress(self, scope: Scope, key: str, etag: Optional[str], records: int) -> None:
        """After each batch of a large object: a crash then resends at most the batch in flight."""
        self._write("INSERT OR REPLACE INTO inflight VALUES (?,?,?,?,?,?,?)",
                    (scope.bucket, scope.kind, scope.prefix, key, etag or "", records, _now()))

    def cursor(self, scope: Scope) -> Optional[dt.date]:
        rows = self._read("SELECT day FROM cursors WHERE bucket=? AND kind=? AND prefix=?",
                          (scope.bucket, scope.kind, scope.prefix))
        return dt.date.fromisoformat(rows[0][0]) if rows else None

    def set_cursor(self, scope: Scope, day: dt.date) -> None:
        self._write("INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?,?)",
                    (scope.bucket, scope.kind, scope.prefix, scope.account, scope.region, day.isoformat(), _now()))

    def prune(self, scope: Scope, before: dt.date) -> int:
        """Forget objects of days before `before`: those days are not listed again."""
        return self._write("DELETE FROM processed WHERE bucket=? AND kind=? AND prefix=? AND day IS NOT NULL "
                           "AND day < ?", (scope.bucket, scope.kind, scope.prefix, before.isoformat()))

    def reset_bucket(self, bucket: str) -> tuple[int, int]:
        """Forget everything about one bucket (every type and prefix): the next run starts afresh."""
        objects = self._write("DELETE FROM processed WHERE bucket=?", (bucket,))
        cursors = self._write("DELETE FROM cursors WHERE bucket=?", (bucket,))
        self._write("DELETE FROM inflight WHERE bucket=?", (bucket,))
        return objects, cursors

    def count(self, bucket: Optional[str] = None) -> int:
        if bucket is None:
            return self._read("SELECT count(*) FROM processed", ())[0][0]
        return self._read("SELECT count(*) FROM processed WHERE bucket=?", (bucket,))[0][0]

    def close(self) -> None:
        with self.lock:
            self.db.close()


def default_state_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / STATE_FILE
