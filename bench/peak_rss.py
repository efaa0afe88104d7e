"""The peak memory of a process a benchmark starts: the kernel's VmHWM of the child's own address space,
read from /proc until it exits (wait4's ru_maxrss would not do: Linux carries the parent's peak over fork
and exec into the child's, so it would report the bench's own memory).

Imported by the scripts beside it, which run as `python bench/<script>.py`.
"""
from __future__ import annotations

import subprocess
import tempfile
import time


def hwm_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) so far, in MB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")), 0.0)
    except OSError:
        return 0.0


def run_watched(cmd: list[str], env: dict) -> tuple[int, float, str, float]:
    """Run cmd to its end, reading its peak every 10 ms: (exit code, peak RSS in MB, stderr, wall seconds)."""
    started, peak = time.perf_counter(), 0.0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stderr=err)
        while proc.poll() is None:
            peak = max(peak, hwm_mb(proc.pid))
            time.sleep(0.01)
        err.seek(0)
        return proc.returncode, peak, err.read().decode(errors="replace"), time.perf_counter() - started
