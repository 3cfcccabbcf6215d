"""Lines of a stream, read in large blocks: a cap on a line's length, blank lines in bulk.

Shared by the JSON Lines reader and the one-page-per-line text format. Lines are found
with ``bytes.find`` in blocks of :data:`BLOCK_BYTES`, and a run of blank lines is passed
over with one regular-expression match and one ``bytes.count`` per block: a file of 200
million blank lines costs its decompression and a few C-level scans, not 200 million
turns of a Python loop. Blank lines are counted (:class:`LineCount`), so that a reader
can report them as one skipped record instead of dropping them silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

#: Bytes read from the stream at a time.
BLOCK_BYTES = 1 << 20

# What ``bytes.strip()`` removes: a line of these alone is blank.
_BLANK_RUN = re.compile(rb"[ \t\n\r\x0b\x0c]*")


@dataclass
class LineCount:
    """What :func:`iter_lines` has read so far.

    Attributes
    ----------
    lines : int
        Lines read, blank ones included (the number of the last line read).
    blank : int
        Blank lines (empty, or only ASCII whitespace).
    blank_bytes : int
        Their bytes, line ends included.
    first_blank : int
        The number of the first blank line (0: none yet).
    """

    lines: int = 0
    blank: int = 0
    blank_bytes: int = 0
    first_blank: int = 0

    def add_blank(self, n: int, n_bytes: int) -> None:
        """Count ``n`` blank lines of ``n_bytes`` bytes that follow the lines read."""
        if n:
            if not self.first_blank:
                self.first_blank = self.lines + 1
            self.lines += n
            self.blank += n
            self.blank_bytes += n_bytes

    def mark_blank(self, number: int, n_bytes: int) -> None:
        """Count line ``number``, already read, as blank (a reader found only whitespace
        in it once decoded, such as no-break spaces)."""
        self.first_blank = min(self.first_blank or number, number)
        self.blank += 1
        self.blank_bytes += n_bytes

    def blank_detail(self) -> str:
        """The blank lines, in words, for a skipped record."""
        if self.blank == 1:
            return f"1 blank line (line {self.first_blank:,})"
        return f"{self.blank:,} blank lines, the first at line {self.first_blank:,} ({self.blank_bytes:,} bytes)"


def iter_lines(stream, max_line_bytes: int, count: LineCount) -> Iterator[tuple[int, bytes | None, int]]:
    """The non-blank lines of a binary stream.

    Parameters
    ----------
    stream : binary file
        Anything with ``read(size)``; its errors propagate (after the lines before them).
    max_line_bytes : int
        Longer lines (without their line end) are not kept: their bytes are read and
        dropped as they come.
    count : LineCount
        Updated as lines are read (blank lines are counted there, not yielded).

    Yields
    ------
    number : int
        The line's 1-based number in the stream, blank lines included.
    line : bytes or None
        The line from its first byte that is not whitespace, without its line end
        (``\n``, and any ``\r`` before it); None when the line is over ``max_line_bytes``.
    size : int
        Its raw size, line end included.
    """
    buf, pos, eof = b"", 0, False
    lead = 0  # whitespace of the current line already passed over (maybe in earlier blocks)

    def refill() -> None:
        nonlocal buf, pos, eof
        chunk = stream.read(BLOCK_BYTES)
        eof = not chunk
        buf, pos = buf[pos:] + chunk, 0

    while True:
        # a run of whitespace: each line end in it closes a blank line
        end = _BLANK_RUN.match(buf, pos).end()
        last = buf.rfind(b"\n", pos, end)
        if last >= 0:
            count.add_blank(buf.count(b"\n", pos, last + 1), lead + last + 1 - pos)
            lead, pos = 0, last + 1
        lead += end - pos
        pos = end
        if pos == len(buf):  # the run may go on in the next block
            if eof:
                if lead:  # a last line of whitespace without a line end
                    count.add_blank(1, lead)
                return
            refill()
            continue
        # a line with text starts at pos
        nl = buf.find(b"\n", pos)
        while nl < 0 and not eof and lead + len(buf) - pos <= max_line_bytes + 1:
            scanned = len(buf) - pos
            refill()
            nl = buf.find(b"\n", scanned)
        count.lines += 1
        if nl >= 0:
            line, size, pos = buf[pos:nl], lead + nl + 1 - pos, nl + 1
        elif eof:
            line, size, pos = buf[pos:], lead + len(buf) - pos, len(buf)
        else:  # over the cap and no line end yet: drop its bytes as they come
            size, buf, pos = lead + len(buf) - pos, b"", 0
            while True:
                refill()
                if eof:
                    break
                nl = buf.find(b"\n")
                if nl >= 0:
                    size, pos = size + nl + 1, nl + 1
                    break
                size, buf = size + len(buf), b""
            lead = 0
            yield count.lines, None, size
            continue
        line = line.rstrip(b"\r")
        length, lead = lead + len(line), 0
        yield count.lines, (line if length <= max_line_bytes else None), size
