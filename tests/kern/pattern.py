# SPDX-License-Identifier: MIT
"""Byte pattern shared by the kernel data path test clients and origins (stdlib only).

The stream is a sequence of little-endian 64-bit words; word k (at byte offset 8k) holds
(seed << 40) | k. Any lost, duplicated or reordered run of bytes, and bytes from another stream
(another seed), show up at an exact offset. Generated in 1 MiB blocks, with a small cache so the
sending and the verifying thread of one process share the work.
"""

import array
import hashlib
import sys

BLOCK = 1 << 20
WORDS = BLOCK // 8

if sys.byteorder != "little":  # pragma: no cover - the tests run on x86-64 / arm64
    raise SystemExit("pattern.py assumes a little-endian host")


class Pattern:
    def __init__(self, seed, cache_blocks=64):
        self.base = (seed & 0xFFFFFF) << 40
        self.cache = {}
        self.cache_blocks = cache_blocks

    def block(self, b):
        blk = self.cache.get(b)
        if blk is None:
            first = self.base + b * WORDS
            blk = array.array("Q", range(first, first + WORDS)).tobytes()
            if len(self.cache) >= self.cache_blocks:
                # drop the oldest block (dicts keep insertion order)
                self.cache.pop(next(iter(self.cache)))
            self.cache[b] = blk
        return blk

    def chunks(self, total, size=BLOCK):
        """Yield the first `total` bytes of the stream in pieces of at most `size` bytes."""
        pos = 0
        while pos < total:
            n = min(size, total - pos)
            yield self.get(pos, n)
            pos += n

    def get(self, pos, n):
        """Bytes [pos, pos + n) of the stream."""
        out = []
        while n > 0:
            b, off = divmod(pos, BLOCK)
            take = min(n, BLOCK - off)
            blk = self.block(b)
            out.append(blk[off:off + take] if (off or take != BLOCK) else blk)
            pos += take
            n -= take
        return out[0] if len(out) == 1 else b"".join(out)

    def sha256(self, total):
        h = hashlib.sha256()
        for c in self.chunks(total):
            h.update(c)
        return h.hexdigest()


def first_diff(a, b):
    """Index of the first differing byte of two equal-length byte strings (-1: equal)."""
    if a == b:
        return -1
    lo, hi = 0, len(a)
    while hi - lo > 64:  # bisect on slices: C-speed comparisons
        mid = (lo + hi) // 2
        if a[lo:mid] != b[lo:mid]:
            hi = mid
        else:
            lo = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i
    return -1


class Verifier:
    """Checks a received stream against the pattern, incrementally."""

    def __init__(self, pattern, expect_total):
        self.p = pattern
        self.expect = expect_total
        self.pos = 0
        self.first_bad = None
        self.h = hashlib.sha256()

    def feed(self, data):
        n = len(data)
        self.h.update(data)
        if self.first_bad is None:
            if self.pos + n > self.expect:
                good = max(0, self.expect - self.pos)
                exp = self.p.get(self.pos, good) if good else b""
                d = first_diff(data[:good], exp)
                self.first_bad = self.pos + (d if d >= 0 else good)
            else:
                exp = self.p.get(self.pos, n)
                if data != exp:
                    self.first_bad = self.pos + first_diff(data, exp)
        self.pos += n

    def describe_bad(self, data_at_bad=None):
        if self.first_bad is None:
            return ""
        w = self.first_bad // 8
        return f"first_bad={self.first_bad} (word {w}, expected {self.p.base + w:#x})"

    @property
    def ok(self):
        return self.first_bad is None and self.pos == self.expect

    def hexdigest(self):
        return self.h.hexdigest()
