"""Gzip streams read member by member, so that a damaged member loses nothing before it.

A WARC.gz holds one gzip member per record, and a JSONL.gz may hold several members
(``cat a.gz b.gz``). :class:`gzip.GzipFile` reads ahead and raises ``EOFError`` as soon as
its read-ahead meets a cut-off member, and a buffered reader on top of it drops what the
failing call had already decompressed: records that were complete were lost with the
damaged one (11 of 200 in issue #17). :class:`GzipMembers` returns every byte of the
members before the damage first, and only a read that has nothing left to return raises
the error.
"""

from __future__ import annotations

import gzip
import zlib

GZIP_MAGIC = b"\x1f\x8b"
#: Compressed bytes read from the file at a time.
READ_BYTES = 1 << 16
# zlib's window bits for a gzip member (16 + 15: header and trailer checked).
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class GzipMembers:
    """A read-only stream of the decompressed bytes of the gzip members of ``fh``.

    Parameters
    ----------
    fh : binary file
        Positioned at the first member.

    Notes
    -----
    ``read(size)`` returns at most ``size`` bytes and never inflates more than that at a
    time (a gzip bomb costs no memory). The trouble a member meets (input that ends
    inside it, corrupt data, a bad checksum, bytes after a member that are not another
    member) is raised only once all bytes before it were returned: ``EOFError`` for a cut
    member, ``zlib.error`` for corrupt data, :class:`gzip.BadGzipFile` for what is not a
    gzip member. NUL bytes between members are skipped, as gzip(1) does.
    """

    def __init__(self, fh):
        self._fh = fh
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        self._input = b""  # compressed bytes read from fh, not yet given to zlib
        self._in_member = False  # inside a member whose end zlib has not seen
        self._eof = False  # fh is exhausted
        self._error: BaseException | None = None
        self._position = 0  # decompressed bytes returned

    def _fill(self) -> None:
        if not self._input and not self._eof:
            self._input = self._fh.read(READ_BYTES)
            self._eof = not self._input

    def _start_member(self) -> bool:
        """Position at the next member; False at the end of the input."""
        while True:
            self._fill()
            self._input = self._input.lstrip(b"\x00")
            if self._input:
                break
            if self._eof:
                return False
        if len(self._input) < 2 and not self._eof:
            self._input += self._fh.read(READ_BYTES)
            self._eof = len(self._input) < 2
        if not self._input.startswith(GZIP_MAGIC):
            raise gzip.BadGzipFile(f"not a gzip member: bytes {self._input[:8]!r} after the last member")
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        self._in_member = True
        return True

    def _inflate_some(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes (b"" at the end); raises on damaged input."""
        while True:
            if not self._in_member and not self._start_member():
                return b""
            self._fill()
            data = self._inflate.decompress(self._input, size)
            if self._inflate.eof:
                # the member ended: all input after it is in unused_data (unconsumed_tail
                # may repeat part of it then), and it starts the next member
                self._input = self._inflate.unused_data
                self._in_member = False
            else:
                self._input = self._inflate.unconsumed_tail
            if data:
                return data
            if self._in_member and self._eof and not self._input:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` decompressed bytes (all that is left when ``size`` < 0); b"" at
        the end. Raises the error of damaged input once everything before it was read."""
        if size is None or size < 0:
            parts = []
            while chunk := self.read(READ_BYTES):
                parts.append(chunk)
            return b"".join(parts)
        if self._error is not None:
            raise self._error
        if size == 0:
            return b""
        try:
            data = self._inflate_some(size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self._error = exc
            raise
        self._position += len(data)
        return data

    def tell(self) -> int:
        """Decompressed bytes read so far."""
        return self._position

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()


def open_maybe_gzipped(fh):
    """``fh`` itself, or a :class:`GzipMembers` over it when it starts with the gzip magic
    number (whatever the file's name); ``fh`` must be at its start and seekable."""
    magic = fh.read(2)
    fh.seek(0)
    return GzipMembers(fh) if magic == GZIP_MAGIC else fh
