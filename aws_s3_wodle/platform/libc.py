"""The C library, loaded once, for the few calls Python has no binding for (mallopt, malloc_trim, sendmmsg)."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any, Optional

__all__ = ["function"]


@functools.lru_cache(maxsize=None)
def _libc() -> Optional[ctypes.CDLL]:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def function(name: str) -> Optional[Any]:
    """The C library's ``name`` (errno kept for ``ctypes.get_errno``), or None where it has none."""
    lib = _libc()
    return getattr(lib, name, None) if lib is not None else None
