"""What the service blocks delivered: one position per (service, account, region, group, stream), in SQLite.

A position says "every event before `time` was delivered, and of the events at `time` exactly `count`
(CloudWatch Logs: in the stream's order) or those whose ids are in `ids` (Inspector)". `until` is set while
an Inspector window [time, until] is being read: a run stopped half-way reads the same window again and
skips the ids it already delivered. Each commit is its own transaction (WAL, synchronous=FULL), made right
after the sink accepted a batch, so a stop or a crash resends nothing that was committed and loses nothing
that was not.

The interface is small on purpose (position, commit, forget, streams, close): the one checkpoint store
may take these rows over later.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from aws_s3_wodle.delivery.checkpoints import FILE_NAME
from aws_s3_wodle.errors import StateError

STATE_FILE = FILE_NAME  # the one state file: its own tables beside the checkpoints'


@dataclass(frozen=True)
class StreamKey:
    """Where a position belongs. Inspector has no group or stream (''); a group's own origin row has stream ''."""

    service: str
    account: str
    region: str
    group: str = ""
    stream: str = ""


@dataclass(frozen=True)
class Position:
    time: int                          # ms since the epoch: everything before it was delivered
    count: int = 0                     # events at `time` already delivered (in the stream's order)
    ids: frozenset = field(default_factory=frozenset)  # ids at `time` (or in the window) already delivered
    until: Optional[int] = None        # end of the window being read (Inspector), None when none is open


_SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    service TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL, stream TEXT NOT NULL,
    time INTEGER NOT NULL, count INTEGER NOT NULL DEFAULT 0, until INTEGER,
    PRIMARY KEY (service, account, region, grp, stream));
CREATE TABLE IF NOT EXISTS position_ids (
    service TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL, stream TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (service, account, region, grp, stream, id));
"""


def default_state_path(state_dir: Union[str, Path]) -> Path:
    return Path(state_dir) / STATE_FILE


class ServiceState:
    """The positions of the service blocks; one connection, used from the run's thread."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"the service state database {self.path} cannot be opened ({exc}); check --state-dir "
                            "and its permissions") from None

    def position(self, key: StreamKey) -> Optional[Position]:
        row = self.db.execute("SELECT time, count, until FROM positions WHERE service=? AND account=? AND region=? "
                              "AND grp=? AND stream=?", _k(key)).fetchone()
        if row is None:
            return None
        ids = frozenset(r[0] for r in self.db.execute(
            "SELECT id FROM position_ids WHERE service=? AND account=? AND region=? AND grp=? AND stream=?", _k(key)))
        return Position(row[0], row[1], ids, row[2])

    @contextmanager
    def _transaction(self, failure: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE, COMMIT, ROLLBACK on any error); a SQLite error becomes
        StateError: `failure`, with the file and SQLite's reason."""
        try:
            with self._lock:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StateError(failure.format(path=self.path, exc=exc)) from None

    def commit(self, key: StreamKey, position: Position, *, add_ids: Iterable[str] = (), keep_ids: bool = False) -> None:
        """Store `position` in one transaction. Its ids replace the stored ones unless `keep_ids` (then
        `add_ids` are added to them: a window being read adds each batch's ids without rewriting the rest)."""
        with self._transaction("cannot record delivered events in {path} ({exc}); nothing more is read this run, "
                               "the events not recorded are sent again next run") as db:
            db.execute("INSERT INTO positions (service, account, region, grp, stream, time, count, until) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, account, region, grp, "
                       "stream) DO UPDATE SET time=excluded.time, count=excluded.count, "
                       "until=excluded.until", (*_k(key), position.time, position.count, position.until))
            if not keep_ids:
                db.execute("DELETE FROM position_ids WHERE service=? AND account=? AND region=? AND "
                           "grp=? AND stream=?", _k(key))
            ids = set(add_ids) | (set() if keep_ids else set(position.ids))
            db.executemany("INSERT OR IGNORE INTO position_ids VALUES (?, ?, ?, ?, ?, ?)",
                           [(*_k(key), i) for i in ids])

    def forget(self, key: StreamKey) -> None:
        """Drop a position (a stream deleted or gone): a stream of that name made later starts afresh."""
        with self._transaction("cannot update {path} ({exc}); check --state-dir and its permissions") as db:
            for table in ("positions", "position_ids"):
                db.execute(f"DELETE FROM {table} WHERE service=? AND account=? AND region=? AND grp=? "
                           "AND stream=?", _k(key))

    def streams(self, service: str, account: str, region: str, group: str) -> list[str]:
        """The streams of a group that have a position (not the group's own row)."""
        return [r[0] for r in self.db.execute(
            "SELECT stream FROM positions WHERE service=? AND account=? AND region=? AND grp=? AND stream<>'' "
            "ORDER BY stream", (service, account, region, group))]

    def close(self) -> None:
        self.db.close()


def _k(key: StreamKey) -> tuple[str, str, str, str, str]:
    return (key.service, key.account, key.region, key.group, key.stream)
