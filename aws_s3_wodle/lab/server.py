"""moto's server on 127.0.0.1, in its own process: the local AWS that the lab, demo and tests talk to."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Optional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """Start with `with MotoServer() as m: m.endpoint`; the process ends with the block."""

    def __init__(self, port: Optional[int] = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None
        self.log = tempfile.TemporaryFile()

    def start(self, timeout: float = 30.0) -> "MotoServer":
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        try:
            import moto.server  # noqa: F401
        except ImportError:
            raise SystemExit("moto is not installed: pip install 'aws-s3-wodle[lab]' (or '.[lab]' from a clone)")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"moto server exited: {self.log.read()[-2000:].decode(errors='replace')}")
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/reset", data=b"", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
