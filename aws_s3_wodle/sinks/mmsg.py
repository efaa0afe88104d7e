"""Many datagrams per system call: Linux sendmmsg(2) straight from a batch's Arrow buffer.

Why: one ``send()`` per event costs a system call, two copies in Python (the event's ``bytes`` and
the header + event concatenation) and a GIL release and re-acquisition per event. While other
threads decode and convert, the sending thread then queues for the GIL on every event. Here one
call sends up to ``WINDOW`` datagrams, each made of two pieces (the shared header and the event,
read in place from the batch's buffer), with the GIL released for the whole call. The kernel still
takes each datagram whole or not at all, so a partial count is an exact resume point.

Only where the C library has ``sendmmsg`` (Linux); elsewhere the sink sends one datagram at a time.
"""
from __future__ import annotations

import ctypes
import errno
import os
import sys
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc

from aws_s3_wodle.platform.libc import function

__all__ = ["BatchSender", "Refused", "Spans"]

WINDOW = 1024  # the kernel's UIO_MAXIOV: sendmmsg takes at most this many messages per call


class Refused(Exception):
    """sendmmsg exists but the kernel or a seccomp filter refuses it: the caller sends one by one."""


_REFUSED = (errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_IoVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


def _sendmmsg() -> Optional[ctypes._CFuncPtr]:
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None  # the in-place filling below assumes the 64-bit Linux layout
    fn = function("sendmmsg")
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


class Spans:
    """Where each event of a batch starts in memory and how long it is, as two int64 Arrow arrays."""

    __slots__ = ("text", "starts", "lengths")

    def __init__(self, text: pa.Array) -> None:
        if text.type != pa.binary() and text.type != pa.string():
            raise TypeError(f"Spans needs a binary or string array, not {text.type}")
        n = len(text)
        _, offsets, data = text.buffers()
        self.text = text  # keeps the buffer the addresses point into alive
        bounds = pc.cast(pa.Array.from_buffers(pa.int32(), n + 1, [None, offsets], offset=text.offset), pa.int64())
        first, rest = bounds.slice(0, n), bounds.slice(1, n)
        self.lengths: pa.Int64Array = pc.subtract(rest, first)
        self.starts: pa.Int64Array = pc.add(first, data.address if data is not None else 0)

    def __len__(self) -> int:
        return len(self.lengths)

    def total(self, start: int, stop: int) -> int:
        """Bytes of the events start..stop-1."""
        if stop <= start:
            return 0
        return pc.sum(self.lengths.slice(start, stop - start)).as_py()

    def longer_than(self, limit: int) -> list[int]:
        """Indexes of the events over ``limit`` bytes (rare: the caller records them instead)."""
        over = pc.greater(self.lengths, limit)
        return pc.indices_nonzero(over).to_pylist() if pc.any(over).as_py() else []


def _int64s(array: pa.Array, start: int, count: int) -> memoryview:
    view = memoryview(array.buffers()[1]).cast("q")
    return view[array.offset + start:array.offset + start + count]


class BatchSender:
    """Sends spans of a batch as datagrams ``header + event`` on a connected datagram socket."""

    def __init__(self, header: bytes, sendmmsg: ctypes._CFuncPtr) -> None:
        self._sendmmsg = sendmmsg
        self._header = ctypes.create_string_buffer(header, len(header))
        self._iov = (_IoVec * (2 * WINDOW))()
        self._msgs = (_MMsgHdr * WINDOW)()
        for i in range(WINDOW):  # fixed for life: message i is iovecs 2i (header) and 2i+1 (event)
            self._iov[2 * i].base = ctypes.addressof(self._header)
            self._iov[2 * i].len = len(header)
            self._msgs[i].hdr.iov = ctypes.cast(ctypes.byref(self._iov, 2 * i * ctypes.sizeof(_IoVec)),
                                                ctypes.POINTER(_IoVec))
            self._msgs[i].hdr.iovlen = 2
        words = memoryview(self._iov).cast("B").cast("q")  # 4 words per message: hdr base, hdr len, base, len
        self._bases, self._lens = words[2::4], words[3::4]

    @classmethod
    def create(cls, header: bytes) -> Optional["BatchSender"]:
        """A sender, or None where the C library has no sendmmsg (the caller sends one by one)."""
        fn = _sendmmsg()
        return cls(header, fn) if fn is not None else None

    def send(self, fd: int, spans: Spans, start: int, stop: int) -> int:
        """Send events start..stop-1 (at most WINDOW of them); return how many the kernel took.

        Raises OSError when it took none; a count short of the window means the next call will
        meet the error (engine busy or gone) or take the rest.
        """
        count = min(stop - start, WINDOW)
        if count <= 0:
            return 0
        self._bases[:count] = _int64s(spans.starts, start, count)
        self._lens[:count] = _int64s(spans.lengths, start, count)
        sent = self._sendmmsg(fd, ctypes.addressof(self._msgs), count, 0)  # releases the GIL meanwhile
        if sent < 0:
            code = ctypes.get_errno()
            if code in _REFUSED:
                raise Refused(os.strerror(code))
            raise OSError(code, os.strerror(code))
        if sent == 0:  # not expected from Linux; as "try again", so a caller never loops without waiting
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        return sent
