"""Ending the process at once, its logs and standard streams flushed first.

After a run whose work is durable (`cli/main.py: entry`: no interpreter teardown) and at a stop's deadline
(`run/process.py`: a call that hangs must not hold the process past it).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Callable, NoReturn, Optional

# At most this long to flush before the process ends anyway: a log write may itself be stuck (a full pipe
# nobody reads), and an exit that waits on it would not be one.
FLUSH_LIMIT = 0.3
_EXITING = threading.Lock()


def exit_now(code: int, last_words: Optional[Callable[[], None]] = None) -> NoReturn:
    """End the process with `code` once `last_words` (a log line) are said and logs and standard streams are
    flushed; nothing else runs after, and none of that may hold the exit past FLUSH_LIMIT."""
    code = code if isinstance(code, int) else 1
    _EXITING.acquire()  # the first caller ends the process; another one (the stop's deadline) waits for that
    try:
        guard = threading.Timer(FLUSH_LIMIT, os._exit, (code,))
        guard.daemon = True
        guard.start()
        if last_words is not None:
            last_words()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):  # the run is over: a late signal must not become a traceback
                signal.signal(sig, signal.SIG_IGN)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            if stream is None:  # started with the descriptor closed
                continue
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed or broken pipe: nothing more can be said there
                pass
    finally:
        os._exit(code)
