"""Count the blocks a JPEG's entropy-coded data really holds, against what its SOF claims.

libjpeg (behind Pillow and imagecodecs) treats entropy data that ends early (the EOI or
another marker comes before the last MCU, e.g. a SOF height made larger) as a warning
and fills every missing block with zero coefficients: flat grey 128, returned as a
valid image. :func:`check_jpeg_rows` Huffman-decodes the scans here (symbol lengths only,
no IDCT) and raises :class:`~engine.errors.CorruptFileError` when a scan ends before the
header's last block. It is slow (pure Python), so :func:`tail_is_grey` is the cheap
necessary condition the reader checks first: a missing last block decodes to luma 128.

Counted: baseline/extended Huffman scans, progressive DC scans and AC first scans
(every image has those). AC refinement scans need the decoded coefficient history
and are not counted; arithmetic-coded files are not counted (Pillow does not decode them).
"""
from __future__ import annotations

import os
import struct

import numpy as np

from engine.errors import CorruptFileError

__all__ = ["check_jpeg_rows", "tail_is_grey"]

#: Largest distance of the luma of a missing (all-zero) block from 128 after the
#: YCbCr -> RGB -> luma round trip (rounding of the colour conversion).
_GREY_TOLERANCE = 2.0


class _OutOfData(Exception):
    pass


class _BadCode(Exception):
    pass


def tail_is_grey(arr: np.ndarray) -> bool:
    """True if the 8x8 luma block holding the last pixel of ``arr`` (rows, cols[, 3]) is grey 128."""
    rows, cols = arr.shape[:2]
    blk = arr[((rows - 1) // 8) * 8:, ((cols - 1) // 8) * 8:].astype(np.float64)
    if blk.ndim == 3:
        blk = blk[..., 0] * 0.299 + blk[..., 1] * 0.587 + blk[..., 2] * 0.114
    return bool(np.abs(blk - 128.0).max() <= _GREY_TOLERANCE)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _huff_table(counts: bytes, symbols: bytes) -> list:
    """16-bit lookahead table: entry = (symbol, code length) or None for no code."""
    table: list = [None] * 65536
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            if k >= len(symbols):
                return table
            first = code << (16 - length)
            span = 1 << (16 - length)
            if first + span > 65536:
                return table
            entry = (symbols[k], length)
            table[first:first + span] = [entry] * span
            code += 1
            k += 1
        code <<= 1
    return table


class _Bits:
    """MSB-first bit reader over one restart interval (stuffing removed)."""

    def __init__(self, data: bytes):
        self.data = data + b"\xff\xff\xff"  # 1-bits: never a complete code (JPEG forbids all-1 codes)
        self.nbits = 8 * len(data)
        self.pos = 0

    def _peek16(self) -> int:
        p = self.pos >> 3
        w = int.from_bytes(self.data[p:p + 3], "big")
        return (w >> (8 - (self.pos & 7))) & 0xFFFF

    def symbol(self, table: list) -> int:
        entry = table[self._peek16()]
        if entry is None:
            if self.pos + 16 > self.nbits:
                raise _OutOfData
            raise _BadCode
        self.skip(entry[1])
        return entry[0]

    def skip(self, n: int) -> None:
        self.pos += n
        if self.pos > self.nbits:
            raise _OutOfData

    def value(self, n: int) -> int:
        v = 0
        for _ in range(n):
            p = self.pos
            self.skip(1)
            v = (v << 1) | ((self.data[p >> 3] >> (7 - (p & 7))) & 1)
        return v


def _segments(b: bytes, start: int) -> tuple[list[bytes], int]:
    """Split the entropy data from ``start`` at RST markers; unstuff FF00. Returns (intervals, end)."""
    out, cur, i, n = [], bytearray(), start, len(b)
    while i < n:
        j = b.find(b"\xff", i)
        if j < 0:
            cur += b[i:]
            i = n
            break
        cur += b[i:j]
        k = j + 1
        while k < n and b[k] == 0xFF:  # fill bytes
            k += 1
        if k >= n:
            i = n
            break
        if b[k] == 0x00:
            cur.append(0xFF)
            i = k + 1
        elif 0xD0 <= b[k] <= 0xD7:
            out.append(bytes(cur))
            cur = bytearray()
            i = k + 1
        else:
            i = j
            break
    out.append(bytes(cur))
    return out, i


def _count_scan(intervals, units: int, restart: int, decode_unit) -> int:
    """Decode ``units`` MCUs (or blocks) over the restart intervals; return how many were complete."""
    done = 0
    per = restart if restart else units
    for data in intervals:
        bits, state = _Bits(data), {"eobrun": 0}
        for _ in range(min(per, units - done)):
            try:
                decode_unit(bits, state)
            except (_OutOfData, _BadCode):
                return done
            done += 1
        if done >= units:
            return done
    return done


def check_jpeg_rows(path: str, b: bytes | None = None) -> None:
    """Raise CorruptFileError if a scan of the JPEG at ``path`` ends before its SOF's last block."""
    if b is None:
        with open(path, "rb") as fh:
            b = fh.read()
    name = os.path.basename(path)
    dc_tabs: dict = {}
    ac_tabs: dict = {}
    frame = None
    restart = 0
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:  # garbage between segments: libjpeg skips to the next 0xFF, so do we
            i = b.find(b"\xff", i)
            if i < 0:
                return
            continue
        m = b[i + 1]
        if m == 0xFF:
            i += 1
            continue
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        if m == 0xD9:
            return
        n = struct.unpack(">H", b[i + 2:i + 4])[0]
        seg = b[i + 4:i + 2 + n]
        if m in (0xC0, 0xC1, 0xC2) and len(seg) >= 6:
            h, w, nc = struct.unpack(">HHB", seg[1:6])
            comps = []
            for c in range(nc):
                cid, hv = seg[6 + 3 * c:8 + 3 * c] if len(seg) >= 8 + 3 * c else (0, 0x11)
                comps.append((cid, max(hv >> 4, 1), max(hv & 15, 1)))
            frame = (h, w, comps, m == 0xC2)
        elif m in (0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            return  # lossless / hierarchical / arithmetic: not counted
        elif m == 0xC4:
            k = 0
            while k + 17 <= len(seg):
                tc_th, counts = seg[k], seg[k + 1:k + 17]
                total = sum(counts)
                table = _huff_table(counts, seg[k + 17:k + 17 + total])
                (ac_tabs if tc_th >> 4 else dc_tabs)[tc_th & 15] = table
                k += 17 + total
        elif m == 0xDD and len(seg) >= 2:
            restart = struct.unpack(">H", seg[:2])[0]
        elif m == 0xDA:
            if frame is None or not seg:
                return
            i = _check_scan(path, name, b, i + 2 + n, seg, frame, restart, dc_tabs, ac_tabs)
            continue
        i += 2 + n


def _check_scan(path, name, b, start, seg, frame, restart, dc_tabs, ac_tabs) -> int:
    h, w, comps, progressive = frame
    ns = seg[0]
    sel = [seg[1 + 2 * k:3 + 2 * k] for k in range(ns)]
    if len(seg) < 4 + 2 * ns:
        return len(b)
    ss, se, ahal = seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]
    intervals, end = _segments(b, start)
    if progressive and ss > 0 and ahal >> 4:
        return end  # AC refinement: needs coefficient history, not counted
    hmax = max(c[1] for c in comps)
    vmax = max(c[2] for c in comps)
    by_id = {c[0]: c for c in comps}
    parts = []
    need_dc = not progressive or (ss == 0 and not ahal >> 4)
    need_ac = not progressive or ss > 0
    for cid, tables in sel:
        if cid not in by_id or need_dc and (tables >> 4) not in dc_tabs or need_ac and (tables & 15) not in ac_tabs:
            return end  # Pillow refuses a scan without its tables
        parts.append((by_id[cid], dc_tabs.get(tables >> 4), ac_tabs.get(tables & 15)))

    def block(bits, state, dc, ac):
        if not progressive:
            bits.skip(bits.symbol(dc) & 15)
            k = 1
            while k < 64:
                rs = bits.symbol(ac)
                r, s = rs >> 4, rs & 15
                if s == 0:
                    if r != 15:
                        return
                    k += 16
                    continue
                bits.skip(s)
                k += r + 1
        elif ss == 0:
            if ahal >> 4:
                bits.skip(1)
            else:
                bits.skip(bits.symbol(dc) & 15)
        else:
            if state["eobrun"]:
                state["eobrun"] -= 1
                return
            k = ss
            while k <= se:
                rs = bits.symbol(ac)
                r, s = rs >> 4, rs & 15
                if s == 0:
                    if r != 15:
                        state["eobrun"] = (1 << r) - 1 + bits.value(r)
                        return
                    k += 16
                    continue
                bits.skip(s)
                k += r + 1

    if len(parts) == 1:  # non-interleaved: the component's own blocks, no MCU padding
        (cid, hs, vs), dc, ac = parts[0]
        cols = _ceil(_ceil(w * hs, hmax), 8)
        rows = _ceil(_ceil(h * vs, vmax), 8)
        units, unit_rows, per_unit = cols * rows, 8 * vmax // vs, [(dc, ac)]
        units_per_row = cols
    else:
        mcu_cols = _ceil(w, 8 * hmax)
        mcu_rows = _ceil(h, 8 * vmax)
        units, unit_rows, units_per_row = mcu_cols * mcu_rows, 8 * vmax, mcu_cols
        per_unit = [(dc, ac) for (cid, hs, vs), dc, ac in parts for _ in range(hs * vs)]

    def unit(bits, state):
        for dc, ac in per_unit:
            block(bits, state, dc, ac)

    done = _count_scan(intervals, units, restart, unit)
    if done < units:
        got_rows = min(h, (done // units_per_row) * unit_rows)
        raise CorruptFileError(path, f"{name}: the JPEG data ends after {done} of {units} blocks/MCUs of a "
                                     f"scan (about {got_rows} of the {h} rows its header claims; the rest "
                                     "would be grey padding)")
    return end
