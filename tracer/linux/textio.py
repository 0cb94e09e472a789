"""Opening the converter's input: plain, .gz, .xz, .bz2, .zst or standard input."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numba as nb
import numpy as np

from cmmsim.tracer.errors import ParamError

#: Bytes read per block by :func:`line_blocks`.
BLOCK_BYTES = 16 << 20


def open_binary(path: str | os.PathLike | None) -> IO[bytes]:
    """Open plain, .gz, .xz, .bz2 or .zst input as bytes (``-`` or None: standard input)."""
    if path is None or str(path) == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise ParamError(f"{p}: no such file")
    name = p.name.lower()
    if name.endswith(".gz"):
        return gzip.open(p, "rb")
    if name.endswith(".xz"):
        return lzma.open(p, "rb")
    if name.endswith(".bz2"):
        return bz2.open(p, "rb")
    if name.endswith(".zst"):
        try:  # an optional dependency, imported only for .zst input
            import zstandard
        except ImportError:
            raise ParamError(f"{p}: reading .zst needs the zstandard package") from None
        return zstandard.ZstdDecompressor().stream_reader(open(p, "rb"))
    return open(p, "rb")


class CountingReader:
    """A binary reader that reports how many bytes each read returned (for progress)."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readinto(self, buf) -> int:
        got = self._raw.readinto(buf)
        if got:
            self._on_bytes(got)
        return got

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._on_bytes(len(data))
        return data


def open_text(path: str | os.PathLike | None) -> IO[str]:
    """Open plain, .gz, .xz, .bz2 or .zst text (``-`` or None: standard input)."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace")


def line_blocks(raw: IO[bytes], block_bytes: int = BLOCK_BYTES) -> Iterator[memoryview]:
    """The input in blocks of whole lines (universal newlines; a last line gets its ``\\n``).

    Each block is a fresh buffer filled by ``readinto`` (one copy of the
    input in all: the blocks are in flight in the pipeline while the next is
    read); ``block_bytes`` is the size of one read. The buffers are numpy's
    uninitialized memory: only the pages a read fills are ever touched (a
    zero-filled bytearray would write every page twice, and a small input
    would pay for a whole block).
    """
    carry = b""
    while True:
        arr = np.empty(len(carry) + block_bytes + 1, np.uint8)
        buf = memoryview(arr)
        buf[: len(carry)] = carry
        got = raw.readinto(buf[len(carry): len(carry) + block_bytes])
        end = len(carry) + got
        eof = got == 0
        if _has_cr(arr, end):
            # Universal newlines, as the text reader of the reference; a
            # "\r\n" split across reads is one line end.
            block = bytes(buf[:end])
            if block.endswith(b"\r") and not eof:
                block += raw.read(1)
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            arr = np.frombuffer(bytearray(block + b"\n"), np.uint8)
            buf = memoryview(arr)
            end = len(block)
        if eof:
            if end and arr[end - 1] != _NEWLINE:
                arr[end] = _NEWLINE
                end += 1
            if end:
                yield buf[:end]
            return
        cut = _last_newline(arr, end) + 1
        carry = bytes(buf[cut:end])
        if cut:
            yield buf[:cut]


_NEWLINE, _CR = 10, 13


@nb.njit(cache=True, nogil=True)
def _has_cr(arr, end):
    found = False
    for i in range(end):
        found |= arr[i] == _CR
    return found


@nb.njit(cache=True, nogil=True)
def _last_newline(arr, end):
    for i in range(end - 1, -1, -1):
        if arr[i] == _NEWLINE:
            return i
    return -1
