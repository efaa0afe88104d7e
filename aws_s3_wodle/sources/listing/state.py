"""What the bucket listing remembers, beside the engine's checkpoints, in the same file (`state.db`).

A scope is one listing prefix of one bucket block (bucket, type, and the key prefix down to the region,
e.g. `AWSLogs/123456789012/CloudTrail/us-east-1/`). Per scope the listing keeps the keys delivered
(`processed`, its acknowledgement: an object listed again is skipped without a download) and a cursor,
the first day the next run must list again; days before it were listed in full and are not listed again
(rows older than the cursor are pruned). How far a half-done object got is the engine's checkpoint
(delivery/checkpoints.py, counted in events), the same as for every source.

The tables and their upgrade live with the store (delivery/checkpoints.py): one schema, one file.
A failing store raises StateError (exit 4): the cursor is a bucket block's only memory, so nothing more
is read until it can be written.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from aws_s3_wodle.delivery.checkpoints import FILE_NAME, DeliveryStore
from aws_s3_wodle.errors import StateError
from aws_s3_wodle.seams import ObjectId, ObjectRef

STATE_FILE = FILE_NAME

__all__ = ["STATE_FILE", "Scope", "StateError", "StateStore", "default_state_path"]


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
    """The listing's rows (processed keys, cursors) over the checkpoint store, which it opens and exposes."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.checkpoints = DeliveryStore(self.path)  # StateError when it cannot be opened

    def is_processed(self, scope: Scope, key: str) -> bool:
        return bool(self.checkpoints.read("SELECT 1 FROM processed WHERE bucket=? AND kind=? AND prefix=? AND key=?",
                                          (scope.bucket, scope.kind, scope.prefix, key)))

    def mark(self, scope: Scope, key: str, *, day: Optional[dt.date], etag: Optional[str] = None,
             size: Optional[int] = None, events: int = 0) -> None:
        """Record one delivered object (and forget its progress) in one transaction, committed on return."""
        args = (scope.bucket, scope.kind, scope.prefix, key)
        statements = [("INSERT OR REPLACE INTO processed VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (*args, scope.account, scope.region, day.isoformat() if day else None, etag, size, events,
                        _now()))]
        oid = ObjectId.of(ObjectRef(scope.bucket, key, etag=etag))
        if oid:
            statements.append(("DELETE FROM progress WHERE bucket=? AND key=? AND version=?",
                               (oid.bucket, oid.key, oid.version)))
        if self._legacy_inflight():
            statements.append(("DELETE FROM inflight WHERE bucket=? AND kind=? AND prefix=? AND key=?", args))
        self.checkpoints.atomically(*statements)

    def progress(self, scope: Scope, key: str, etag: Optional[str]) -> int:
        """Events of this object (this version of it) already delivered by an earlier, unfinished run."""
        oid = ObjectId.of(ObjectRef(scope.bucket, key, etag=etag))
        return self.checkpoints.resume_point(oid) if oid else 0

    def set_progress(self, scope: Scope, key: str, etag: Optional[str], events: int) -> None:
        """After each batch of a large object: a crash then resends at most the batch in flight."""
        oid = ObjectId.of(ObjectRef(scope.bucket, key, etag=etag))
        if oid:
            self.checkpoints.save_progress(oid, events)

    def legacy_progress(self, scope: Scope, key: str, etag: Optional[str]) -> int:
        """Records (not events) of a half-done object recorded by a version before the shared store; 0 if none."""
        if not self._legacy_inflight():
            return 0
        rows = self.checkpoints.read("SELECT records FROM inflight WHERE bucket=? AND kind=? AND prefix=? AND key=? "
                                     "AND etag=?", (scope.bucket, scope.kind, scope.prefix, key, etag or ""))
        return int(rows[0][0]) if rows else 0

    def forget_legacy_progress(self, scope: Scope, key: str) -> None:
        if self._legacy_inflight():
            self.checkpoints.write("DELETE FROM inflight WHERE bucket=? AND kind=? AND prefix=? AND key=?",
                                   (scope.bucket, scope.kind, scope.prefix, key))

    def _legacy_inflight(self) -> bool:
        if not hasattr(self, "_has_inflight"):
            self._has_inflight = bool(self.checkpoints.read(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='inflight'"))
        return self._has_inflight

    def cursor(self, scope: Scope) -> Optional[dt.date]:
        rows = self.checkpoints.read("SELECT day FROM cursors WHERE bucket=? AND kind=? AND prefix=?",
                                     (scope.bucket, scope.kind, scope.prefix))
        return dt.date.fromisoformat(rows[0][0]) if rows else None

    def set_cursor(self, scope: Scope, day: dt.date) -> None:
        self.checkpoints.write("INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?,?)",
                               (scope.bucket, scope.kind, scope.prefix, scope.account, scope.region, day.isoformat(),
                                _now()))

    def prune(self, scope: Scope, before: dt.date) -> int:
        """Forget objects of days before `before`: those days are not listed again."""
        return self.checkpoints.write("DELETE FROM processed WHERE bucket=? AND kind=? AND prefix=? AND day IS NOT "
                                      "NULL AND day < ?", (scope.bucket, scope.kind, scope.prefix, before.isoformat()))

    def reset_bucket(self, bucket: str) -> tuple[int, int]:
        """Forget everything about one bucket (every type and prefix, and the engine's checkpoints of its
        objects): the next run starts afresh."""
        objects = self.checkpoints.write("DELETE FROM processed WHERE bucket=?", (bucket,))
        cursors = self.checkpoints.write("DELETE FROM cursors WHERE bucket=?", (bucket,))
        self.forget_legacy_bucket(bucket)
        self.checkpoints.forget_bucket(bucket)
        return objects, cursors

    def forget_legacy_bucket(self, bucket: str) -> None:
        if self._legacy_inflight():
            self.checkpoints.write("DELETE FROM inflight WHERE bucket=?", (bucket,))

    def count(self, bucket: Optional[str] = None) -> int:
        if bucket is None:
            return self.checkpoints.read("SELECT count(*) FROM processed")[0][0]
        return self.checkpoints.read("SELECT count(*) FROM processed WHERE bucket=?", (bucket,))[0][0]

    def close(self) -> None:
        self.checkpoints.close()


def default_state_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / STATE_FILE
