"""A stand-in for wazuh-analysisd: binds the Unix datagram socket and keeps what arrives.

Used by the demo and the tests so events travel over a real socket, exactly as to the manager.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Optional


class DatagramEngine:
    def __init__(self, path: str, rcvbuf: int = 4 * 1024 * 1024, rate: Optional[float] = None) -> None:
        self.path = path
        self.rcvbuf = rcvbuf
        self.rate = rate  # datagrams read per second: a slow engine, whose full queue holds the sender back
        self.first_at: Optional[float] = None  # monotonic times of the first and last datagram
        self.last_at: Optional[float] = None
        self.datagrams: list[bytes] = []
        self.sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._closing = False

    def start(self) -> "DatagramEngine":
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.sock.bind(self.path)
        self._closing = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        assert self.sock is not None
        while not self._closing:
            try:
                data = self.sock.recv(1 << 17)
            except OSError:
                return
            if data == b"\0stop":
                return
            self.received(data)
            if self.rate:
                time.sleep(1.0 / self.rate)

    def received(self, data: bytes) -> None:
        """Keep one datagram and when it came (a subclass may only count them: see bench/)."""
        self.datagrams.append(data)
        self.last_at = time.monotonic()
        if self.first_at is None:
            self.first_at = self.last_at

    def wait_for(self, count: int, timeout: float) -> list[bytes]:
        """What arrived, once `count` datagrams have or `timeout` seconds passed (the caller checks how many)."""
        deadline = time.monotonic() + timeout
        while len(self.datagrams) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.datagrams

    def stop(self) -> None:
        """Drain what is queued, then close and remove the socket (an engine going away)."""
        if self.sock is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(b"\0stop", self.path)
            except OSError:
                pass
        if self._thread:
            self._thread.join(10)
        self.sock.close()
        self.sock = None
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> "DatagramEngine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
