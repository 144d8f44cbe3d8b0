"""Bad input costs bounded memory: a real 100-megapixel PNG (valid, a few hundred KB, every
row present) is refused as ``too_many_pixels`` from its header, and a batch of it with a
non-image and bad base64 grows the process's peak memory by far less than one decoded copy
(100 MB grey, 300 MB RGB). Measured in a fresh interpreter (ru_maxrss), so nothing the test
session allocated before hides the peak."""

from __future__ import annotations

import json
import math
import subprocess
import sys

_SCRIPT = r"""
import json, resource, struct, zlib
import numpy as np
from aiwarden.images import decode_base64, properties, quality

def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

def png(width, height):
    # every row present (filter byte + zeros), compressed a row at a time
    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))

big = png(10_000, 10_000)
small = np.full((64, 64, 3), 90, np.uint8)
small[::2] = 160
quality([small])  # imports and first-call allocations before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rep = quality([big, b"%PDF-1.4 not an image", decode_base64("not base64 at all!"), small])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"bytes": len(big), "grow_kb": after - before,
                  "reasons": sorted((f.index, f.reason) for f in rep.findings),
                  "width": properties([big]).columns["width"].tolist()}))
"""


def test_a_100_megapixel_png_and_other_bad_input_cost_bounded_memory() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         timeout=300, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["bytes"] < 1_000_000  # a bomb: tiny file, 100 M pixels
    assert got["reasons"] == [[0, "too_many_pixels"], [1, "not_an_image"], [2, "bad_base64"]]
    assert math.isnan(got["width"][0])  # nothing decoded
    # one decoded grey copy would be ~98,000 KB; allow interpreter noise, not a decode
    assert got["grow_kb"] < 20_000, got
