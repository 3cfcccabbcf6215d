"""A gzip bomb in a WARC: capped, counted, and the next page still read, in bounded memory."""

import io
import json
import subprocess
import sys

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from accum.pages import Page, Skipped
from accum.sources import open_source

BOMB_BYTES = 300 * 2**20


class Zeros(io.RawIOBase):
    """A stream of ``n`` zero bytes (compresses about 1000:1)."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, buffer):
        k = min(len(buffer), self.left)
        buffer[:k] = bytes(k)
        self.left -= k
        return k


def test_gzip_bomb_is_capped_and_the_next_page_survives(tmp_path):
    path = tmp_path / "bomb.warc.gz"
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(
            "http://bomb.example/", "response", payload=io.BufferedReader(Zeros(BOMB_BYTES)), http_headers=http))
        writer.write_record(writer.create_warc_record(
            "http://ok.example/", "response", payload=io.BytesIO(b"<html><body>a fine page</body></html>"),
            http_headers=http))
    assert path.stat().st_size < BOMB_BYTES / 500
    records = list(open_source(path, max_page_bytes=2**20))
    assert [type(r) for r in records] == [Skipped, Page]
    assert records[0].reason == "too-large" and records[1].text == "a fine page"
    # in a fresh process whose peak-RSS counter is reset first (a forked child starts with
    # its parent's peak), so that the peak is the reader's alone
    code = ("import json, re, sys; from accum.sources import open_source; "
            "open('/proc/self/clear_refs', 'w').write('5'); "
            "n = len(list(open_source(sys.argv[1], max_page_bytes=2**20))); "
            "peak = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
            "print(json.dumps([n, peak / 1024]))")
    n, peak_mb = json.loads(subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                                           capture_output=True, text=True).stdout)
    assert n == 2 and peak_mb < 200  # never the 300 MB the bomb expands to
