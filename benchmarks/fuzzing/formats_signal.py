"""Format-aware mutations of signal files: WFDB header fields, EDF/BDF header fields and
annotation records, FIF tags (size, next, kind, type, values), text/CSV values and lines.
Each returns ``(bytes, text)`` or ``None``."""
from __future__ import annotations

import struct

__all__ = ["wfdb_field", "edf_field", "fif_field", "text_field"]

_NUMS = ("0", "-1", "1e308", "-1e308", "1e-300", "nan", "inf", "-inf", "999999999999", "2147483648",
         "abc", "", "0.000001", "1e-45", "-200", "65536", "1e30")
_WFDB_TOKENS = {
    0: ("100", "a/b", "x" * 300, ""),
    1: ("0", "1", "3", "99", "-1", "100000", "abc", "2/x"),  # nsig
    2: _NUMS + ("360/0", "360/1e308", "360/-1", "360(nan)", "0/0"),  # fs[/counter][(base)]
    3: _NUMS + ("650001", "1300000", "325000"),  # nsamp
}
_WFDB_SIG_TOKENS = {
    0: ("/dev/zero", "../100.dat", "missing.dat", "100.atr", "100.hea", "-", "~"),  # file
    1: ("8", "16", "24", "32", "61", "80", "160", "310", "311", "508", "516", "524", "0", "999",
        "212x0", "212x99999", "212:99999", "212+99999999", "212+-5", "16x3:2+1", "abc"),  # fmt
    2: _NUMS + ("200(99999999)/mV", "0.000001/mV", "1e-30/mV", "200/V", "200/nV", "200/degC", "200(-1e308)",
                "200(nan)/mV", "1e-300"),  # gain
    3: ("0", "-1", "64", "99999", "abc"),  # adc res
    4: _NUMS,  # adc zero
    5: _NUMS,  # initial value
    6: _NUMS,  # checksum
    7: _NUMS,  # block size
}


def wfdb_field(name: str, data: bytes, rng) -> tuple[bytes, str] | None:
    if not name.endswith(".hea"):
        return None
    lines = data.decode("latin-1").split("\n")
    body = [i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
    if not body:
        return None
    kind = rng.choice(("record", "signal", "signal", "signal", "line", "comment"))
    if kind == "record":
        parts = lines[body[0]].split()
        k = rng.choice(sorted(_WFDB_TOKENS))
        v = rng.choice(_WFDB_TOKENS[k])
        while len(parts) <= k:
            parts.append("1")
        parts[k] = v
        lines[body[0]] = " ".join(parts)
        text = f"wfdb record field {k} = {v[:40]!r}"
    elif kind == "signal" and len(body) > 1:
        li = rng.choice(body[1:])
        parts = lines[li].split()
        k = rng.choice(sorted(_WFDB_SIG_TOKENS))
        v = rng.choice(_WFDB_SIG_TOKENS[k])
        while len(parts) <= k:
            parts.append("0")
        parts[k] = v
        lines[li] = " ".join(parts)
        text = f"wfdb signal line {li} field {k} = {v!r}"
    elif kind == "line":
        li = rng.choice(body)
        what = rng.choice(("delete", "duplicate", "truncate", "tabs"))
        if what == "delete":
            lines.pop(li)
        elif what == "duplicate":
            lines.insert(li, lines[li])
        elif what == "truncate":
            lines[li] = lines[li][:rng.randrange(max(len(lines[li]), 1))]
        else:
            lines[li] = lines[li].replace(" ", "\t")
        text = f"wfdb line {li} {what}"
    else:
        n = rng.choice((1000, 4000, 4095, 5000, 100_000))
        lines.insert(len(lines) - 1, "# " + rng.choice(("9", "a", "(", " ")) * n)
        text = f"wfdb comment line of {n + 2} characters"
    return "\n".join(lines).encode("latin-1"), text


# EDF/BDF per-signal fields: (name, width, offset in ns units)
_EDF_SIG = (("label", 16, 0), ("transducer", 80, 16), ("physdim", 8, 96), ("physmin", 8, 104),
            ("physmax", 8, 112), ("digmin", 8, 120), ("digmax", 8, 128), ("prefilter", 80, 136),
            ("nsamp", 8, 216))
_EDF_MAIN = (("version", 0, 8), ("startdate", 168, 8), ("starttime", 176, 8), ("headerbytes", 184, 8),
             ("reserved", 192, 44), ("nrecords", 236, 8), ("duration", 244, 8), ("ns", 252, 4))
_EDF_VALUES = ("0", "-1", "1e308", "-1e308", "nan", "inf", "99999999", "abc", "", "1e-300", "0.0001",
               "-0", "32767", "-32768", "8388607", "-8388608", "1", "2", "1000000")


def edf_field(data: bytes, rng) -> tuple[bytes, str] | None:
    b = bytearray(data)
    try:
        ns = int(b[252:256])
    except ValueError:
        return None
    kind = rng.choice(("main", "signal", "signal", "signal", "annotation"))
    if kind == "main":
        name, off, width = rng.choice(_EDF_MAIN)
        pool = _EDF_VALUES + (("99.99.99", "31.02.85", "aa.bb.cc", "00:00:00") if "start" in name else ())
        pool += (str(ns + 1), str(ns - 1), str(ns * 2), "EDF+D", "EDF+C", "24BIT") if name in ("ns", "reserved") else ()
        v = rng.choice(pool)
        b[off:off + width] = v.encode("latin-1")[:width].ljust(width)
        return bytes(b), f"edf {name} = {v!r}"
    if kind == "signal":
        name, width, off = rng.choice(_EDF_SIG)
        ch = rng.randrange(ns)
        at = 256 + ns * off + width * ch
        old = b[at:at + width].decode("latin-1").strip()
        pool = _EDF_VALUES + ((str(int(old) * 2), str(int(old) + 1)) if old.lstrip("-").isdigit() else ())
        pool += ("EDF Annotations", "ECG", "") if name == "label" else ()
        v = rng.choice(pool)
        b[at:at + width] = v.encode("latin-1")[:width].ljust(width)
        return bytes(b), f"edf signal {ch} {name} = {v!r}"
    labels = [b[256 + 16 * i:256 + 16 * (i + 1)].decode("latin-1").strip() for i in range(ns)]
    if "EDF Annotations" not in labels:
        return None
    try:
        spr = [int(b[256 + ns * 216 + 8 * i:256 + ns * 216 + 8 * i + 8]) for i in range(ns)]
        nr = int(b[236:244])
    except ValueError:
        return None
    width = 3 if b[:1] == b"\xff" else 2
    a = labels.index("EDF Annotations")
    rec = width * sum(spr)
    r = rng.randrange(max(nr, 1))
    at = 256 * (ns + 1) + r * rec + width * sum(spr[:a])
    junk = rng.choice((b"+99999999999\x14\x14\x00", b"+nan\x14\x14\x00", b"-1e308\x15inf\x14x\x14\x00",
                       b"+0\x14" + b"A" * 200, b"\x14\x14\x14\x14", b"+1\x15-5\x14bad\x14\x00", b"\x00" * 8))
    b[at:at + len(junk)] = junk[:width * spr[a]]
    return bytes(b[:len(data)]), f"edf annotation record {r} = {junk[:24]!r}"


# FIF: FIFF_NCHAN, FIFF_SFREQ, FIFF_FIRST_SAMPLE, FIFF_CH_INFO, FIFF_DATA_BUFFER
_FIF_VALUE_KINDS = {200: ">i", 201: ">f", 208: ">i", 203: None}


def _fif_tags(b: bytes):
    out, pos = [], 0
    while pos + 16 <= len(b) and len(out) < 100_000:
        kind, typ, size, nxt = struct.unpack(">iiii", b[pos:pos + 16])
        out.append((pos, kind, typ, size, nxt))
        if size < 0:
            break
        pos += 16 + size
    return out


def fif_field(data: bytes, rng) -> tuple[bytes, str] | None:
    b = bytearray(data)
    tags = _fif_tags(b)
    if not tags:
        return None
    kind = rng.choice(("size", "next", "kind", "type", "value", "value", "value"))
    if kind == "value":
        cands = [t for t in tags if t[1] in _FIF_VALUE_KINDS]
        if not cands:
            return None
        pos, k, typ, size, nxt = rng.choice(cands)
        if k == 203:  # channel info: range at +12, cal at +16 (floats), unit at +68
            off = rng.choice((12, 16, 8, 68))
            v = rng.choice((float("nan"), float("inf"), 0.0, -1.0, 1e38, 1e-38))
            if off in (12, 16):
                packed = struct.pack(">f", v)
            else:
                packed = struct.pack(">i", int(v) if v == v and abs(v) < 2**31 else -1)
            b[pos + 16 + off:pos + 20 + off] = packed
            return bytes(b), f"fif ch_info @{pos} +{off} = {v}"
        fmt = _FIF_VALUE_KINDS[k]
        ints = (0, -1, 2**31 - 1, 3, 100000)
        v = rng.choice(ints if fmt == ">i" else (float("nan"), float("inf"), 0.0, -1.0, 1e38, 1e-30))
        b[pos + 16:pos + 20] = struct.pack(fmt, v)
        return bytes(b), f"fif tag {k} @{pos} value = {v}"
    pos, k, typ, size, nxt = rng.choice(tags)
    if kind == "size":
        v = rng.choice((-16, -1, 0, 2**31 - 1, size + 1, max(size - 1, 0), size * 2, len(b)))
        b[pos + 8:pos + 12] = struct.pack(">i", v)
    elif kind == "next":
        v = rng.choice((pos, -1, 2**31 - 1, 0, len(b), 16))
        b[pos + 12:pos + 16] = struct.pack(">i", v)
    elif kind == "kind":
        v = rng.choice((0, 100, 101, 102, 104, 105, 106, 200, 201, 300, -1))
        b[pos:pos + 4] = struct.pack(">i", v)
    else:
        v = rng.choice((0, 1, 3, 4, 5, 10, 31, 32, 0x40000003, 0x40000004, -1))
        b[pos + 4:pos + 8] = struct.pack(">i", v)
    return bytes(b), f"fif tag @{pos} (kind {k}) {kind} = {v}"


_TEXT_TOKENS = ("nan", "NaN", "inf", "-inf", "Infinity", "1e308", "1e39", "-1e400", "abc", "", "0x10", "1,5",
                "1e", "--1", "\u0661\u0662", "\x00", "1e-400", "+", ".", "9" * 400)


def text_field(data: bytes, rng) -> tuple[bytes, str] | None:
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    body = [i for i, ln in enumerate(lines) if ln.strip()]
    if not body:
        return None
    kind = rng.choice(("token", "token", "token", "hugeline", "widerow", "ragged", "newlines", "header", "bom"))
    li = rng.choice(body)
    delim = "," if "," in lines[li] else None
    if kind == "token":
        parts = lines[li].split(delim) if delim else lines[li].split()
        k = rng.randrange(len(parts))
        v = rng.choice(_TEXT_TOKENS)
        parts[k] = v
        lines[li] = (delim or " ").join(parts)
        return "\n".join(lines).encode("utf-8"), f"text line {li + 1} value {k} = {v[:20]!r}"
    if kind == "hugeline":
        n = rng.choice((10_000, 100_000, 1_000_000))
        lines.insert(li, rng.choice(("9", "1", " ", "a")) * n)
        return "\n".join(lines).encode("utf-8"), f"text line of {n} characters before line {li + 1}"
    if kind == "widerow":
        n = rng.choice((1000, 10_000, 100_000))
        lines = [",".join(["1"] * n)] + lines[li:li + 3] if rng.random() < 0.5 else [",".join(["1"] * n)] * 3
        return "\n".join(lines).encode("utf-8"), f"text rows of {n} columns"
    if kind == "ragged":
        lines[li] = lines[li] + rng.choice((",1", " 1", ",", ";2", "\t3"))
        return "\n".join(lines).encode("utf-8"), f"text line {li + 1} gains a column"
    if kind == "newlines":
        sep = rng.choice(("", "\r", "\r\n", "\n\n\n"))
        return sep.join(lines).encode("utf-8"), f"text newlines replaced by {sep!r}"
    if kind == "header":
        hdr = rng.choice(("a,b,c", "1,a", "time;value", "# comment", "x" * 5000))
        lines.insert(0, hdr)
        return "\n".join(lines).encode("utf-8"), f"text header {hdr[:20]!r} inserted"
    return b"\xef\xbb\xbf" * rng.choice((1, 2)) + data, "text BOM prepended"
