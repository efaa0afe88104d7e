"""Allocator settings for the wodle's process: peak memory that follows the live data.

Set once at start-up by the CLI, before pyarrow is imported:
- Arrow allocates from the C library (``ARROW_DEFAULT_MEMORY_POOL=system``, unless the operator
  chose a pool): pyarrow's default, mimalloc, keeps the freed pages of every decoding thread;
  measured on a 1M-row object, peak RSS 311 MB with it, 216 MB without, at the same speed.
- glibc keeps at most 2 malloc arenas (``M_ARENA_MAX``) instead of one per thread: the threads
  that decode, convert and send each left their own partly-used arena (15-30 MB less RSS).
"""
from __future__ import annotations

import os

from aws_s3_wodle.platform.libc import function

_M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)


def tune_allocators() -> None:
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if "MALLOC_ARENA_MAX" in os.environ:
        return  # the operator's own choice (glibc read it at start-up)
    mallopt = function("mallopt")
    if mallopt is not None:  # not glibc (musl has no mallopt): nothing to tune
        mallopt(_M_ARENA_MAX, 2)


def release_free_memory() -> None:
    """Hand the C library's free pages back to the system (glibc ``malloc_trim``).

    Called when a large object is done: its decoder's buffers are free by then, but glibc keeps
    the pages of its arenas, and the next object's buffers land elsewhere, so without this the
    peak grows with each large object in a run instead of staying one object's.
    """
    malloc_trim = function("malloc_trim")
    if malloc_trim is not None:  # not glibc: nothing to trim
        malloc_trim(0)
