"""Opening the converter's input: plain, .gz, .xz, .bz2, .zst or standard input."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numba as nb
import numpy as np

from cmmsim.tracer.errors import ParamError, TraceError, os_reason, show_path

#: Bytes read per block by :func:`line_blocks`.
BLOCK_BYTES = 16 << 20


class _Guarded(io.RawIOBase):
    """A decompressing reader whose failures name the file: damaged or truncated
    compressed data is a :class:`TraceError` (one line), not a library's exception."""

    def __init__(self, inner: IO[bytes], path: Path, kind: str, errors: tuple[type, ...]):
        self._inner, self._path, self._kind, self._errors = inner, path, kind, errors

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        try:
            return self._inner.readinto(buf)
        except self._errors as exc:
            if isinstance(exc, OSError) and exc.filename is not None and exc.errno is not None:
                raise  # the OS's own error (a read error of the disk): it names the file
            reason = os_reason(exc) if str(exc) else type(exc).__name__
            raise TraceError(
                f"{show_path(self._path)}: damaged, truncated or not {self._kind} data ({reason})"
            ) from None

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


#: Compressed inputs by name suffix: (opener, what a bad stream raises).
_DECOMPRESSORS = {
    ".gz": (gzip.open, (OSError, EOFError, zlib.error)),
    ".xz": (lzma.open, (lzma.LZMAError, EOFError)),
    ".bz2": (bz2.open, (OSError, EOFError, ValueError)),
}


def open_binary(path: str | os.PathLike | None) -> IO[bytes]:
    """Open plain, .gz, .xz, .bz2 or .zst input as bytes (``-`` or None: standard input).

    A damaged, truncated or mislabelled compressed input raises
    :class:`TraceError` naming the file when it is read.
    """
    if path is None or str(path) == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise ParamError(f"{show_path(p)}: no such file")
    if p.is_dir():
        raise ParamError(f"{show_path(p)}: is a folder, not a text file")
    name = p.name.lower()
    for suffix, (opener, errors) in _DECOMPRESSORS.items():
        if name.endswith(suffix):
            return _Guarded(opener(p, "rb"), p, suffix, errors)
    if name.endswith(".zst"):
        try:  # an optional dependency, imported only for .zst input
            import zstandard
        except ImportError:
            raise ParamError(f"{show_path(p)}: reading .zst needs the zstandard package") from None
        return _Guarded(
            zstandard.ZstdDecompressor().stream_reader(open(p, "rb")),
            p,
            ".zst",
            (zstandard.ZstdError, OSError, EOFError),
        )
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
    raw = open_binary(path)
    if isinstance(raw, _Guarded):
        raw = io.BufferedReader(raw)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def line_blocks(raw: IO[bytes], block_bytes: int = BLOCK_BYTES) -> Iterator[memoryview]:
    """The input in blocks of whole lines (universal newlines; a last line gets its ``\\n``).

    Each block is a fresh buffer filled by ``readinto`` (one copy of the
    input in all: the blocks are in flight in the pipeline while the next is
    read); ``block_bytes`` is the size of one read. The buffers are numpy's
    uninitialized memory: only the pages a read fills are ever touched (a
    zero-filled bytearray would write every page twice, and a small input
    would pay for a whole block).
    """
    carry = held = b""
    while True:
        arr = np.empty(len(carry) + block_bytes + 1, np.uint8)
        buf = memoryview(arr)
        buf[: len(carry)] = carry
        got = raw.readinto(buf[len(carry) : len(carry) + block_bytes])
        end = len(carry) + got
        eof = got == 0
        if _has_cr(arr, end):
            # Universal newlines, as the text reader of the reference; a
            # "\r\n" split across reads is one line end: a last "\r" waits
            # for the next read (its "\n" may follow, after "\r\r" too).
            block = bytes(buf[:end])
            if block.endswith(b"\r") and not eof:
                block, held = block[:-1], b"\r"
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
        carry = bytes(buf[cut:end]) + held
        held = b""
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
