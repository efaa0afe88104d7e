"""The service blocks' positions: one per (service, account, region, group, stream), committed as delivered."""
from __future__ import annotations

import sqlite3

import pytest

from aws_s3_wodle.errors import StateError
from aws_s3_wodle.sources.services.state import Position, ServiceState, StreamKey

KEY = StreamKey("cloudwatchlogs", "123456789012", "us-east-1", "/app", "stream-1")


def test_a_position_survives_a_restart_and_keys_are_distinct(tmp_path):
    path = tmp_path / "services.sqlite3"
    state = ServiceState(path)
    assert state.position(KEY) is None
    state.commit(KEY, Position(1000, 3))
    other = StreamKey("cloudwatchlogs", "123456789012", "eu-west-1", "/app", "stream-1")
    state.commit(other, Position(5, 1))
    state.close()
    again = ServiceState(path)
    assert again.position(KEY) == Position(1000, 3)
    assert again.position(other) == Position(5, 1)
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_ids_are_replaced_or_added(tmp_path):
    state = ServiceState(tmp_path / "s.sqlite3")
    key = StreamKey("inspector", "123456789012", "us-east-1")
    state.commit(key, Position(10, until=20), add_ids=["a@11"], keep_ids=True)
    state.commit(key, Position(10, until=20), add_ids=["b@12"], keep_ids=True)
    assert state.position(key) == Position(10, ids=frozenset({"a@11", "b@12"}), until=20)
    state.commit(key, Position(20, ids=frozenset({"b@20"})))  # the window closed: its ids replaced
    assert state.position(key) == Position(20, ids=frozenset({"b@20"}), until=None)


def test_streams_of_a_group_and_forget(tmp_path):
    state = ServiceState(tmp_path / "s.sqlite3")
    group = StreamKey("cloudwatchlogs", "1", "us-east-1", "/app")
    state.commit(group, Position(1))  # the group's origin row is not a stream
    for name in ("b", "a"):
        state.commit(StreamKey("cloudwatchlogs", "1", "us-east-1", "/app", name), Position(2))
    assert state.streams("cloudwatchlogs", "1", "us-east-1", "/app") == ["a", "b"]
    state.forget(StreamKey("cloudwatchlogs", "1", "us-east-1", "/app", "a"))
    assert state.streams("cloudwatchlogs", "1", "us-east-1", "/app") == ["b"]
    assert state.position(group) == Position(1)


def test_an_unwritable_database_is_a_sink_error_naming_it(tmp_path):
    state = ServiceState(tmp_path / "s.sqlite3")
    state.db.close()
    with pytest.raises(StateError, match="s.sqlite3"):
        state.commit(KEY, Position(1))
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StateError, match="cannot be opened"):
        ServiceState(tmp_path / "dir.sqlite3")


def test_a_failed_commit_leaves_the_previous_position(tmp_path):
    state = ServiceState(tmp_path / "s.sqlite3")
    state.commit(KEY, Position(1, 1, ids=frozenset({"x"})))
    with pytest.raises(StateError):
        state.commit(KEY, Position(2, 0), add_ids=[object()])  # not storable: the transaction is rolled back
    assert state.position(KEY) == Position(1, 1, ids=frozenset({"x"}))
    assert isinstance(state.db, sqlite3.Connection)
