"""Generic byte mutations and the per-case plan (which file, which mutations), from one RNG.

Every mutation takes ``(data: bytes, rng: random.Random)`` and returns ``(bytes, text)``
where ``text`` says what was done (it goes into the report). The RNG of a case is
``random.Random(f"{seed}:{family}:{case}")``, so a case is rebuilt exactly from those three.
"""
from __future__ import annotations

import random

__all__ = ["GENERIC", "case_rng", "mutate_case"]

#: Byte values that often sit on a parser's edge.
_INTERESTING = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x20, 0x30, 0x39)
_INTERESTING_RUNS = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00",
                     b"99999999", b"-1      ", b"nan", b"1e308", b"\x00", b"\xff")


def case_rng(seed: int, family: str, case: int) -> random.Random:
    return random.Random(f"{seed}:{family}:{case}")


def _pos(data: bytes, rng: random.Random) -> int:
    """A position, half the time in the first 2 KB (where the headers are)."""
    n = max(len(data), 1)
    if rng.random() < 0.5:
        return rng.randrange(min(n, 2048))
    return rng.randrange(n)


def bitflip(data, rng):
    b = bytearray(data)
    k = rng.choice((1, 1, 2, 4, 8, 32))
    where = []
    for _ in range(k):
        if not b:
            break
        i = _pos(b, rng)
        bit = rng.randrange(8)
        b[i] ^= 1 << bit
        where.append(f"{i}.{bit}")
    return bytes(b), f"bitflip {','.join(where[:8])}{'...' if len(where) > 8 else ''}"


def overwrite(data, rng):
    b = bytearray(data)
    i = _pos(b, rng)
    if rng.random() < 0.5:
        new = rng.choice(_INTERESTING_RUNS)
    else:
        n = rng.choice((1, 2, 4, 8, 16))
        new = bytes(rng.choice(_INTERESTING) if rng.random() < 0.5 else rng.randrange(256) for _ in range(n))
    b[i:i + len(new)] = new
    return bytes(b[:max(len(data), i + len(new))]), f"overwrite @{i} {new[:16].hex()}"


def truncate(data, rng):
    i = _pos(data, rng) if rng.random() < 0.4 else rng.randrange(max(len(data), 1))
    return data[:i], f"truncate to {i}"


def insert(data, rng):
    i = _pos(data, rng)
    n = rng.choice((1, 3, 16, 256, 4096))
    new = bytes(rng.randrange(256) for _ in range(n)) if rng.random() < 0.5 else bytes([rng.choice(_INTERESTING)]) * n
    return data[:i] + new + data[i:], f"insert {n} bytes @{i}"


def delete(data, rng):
    i = _pos(data, rng)
    n = rng.choice((1, 2, 7, 64, 1024))
    return data[:i] + data[i + n:], f"delete {n} bytes @{i}"


def duplicate(data, rng):
    if not data:
        return data, "duplicate (empty)"
    i, j = _pos(data, rng), _pos(data, rng)
    n = rng.choice((4, 16, 128, 2048))
    return data[:j] + data[i:i + n] + data[j:], f"duplicate {n} bytes @{i} to @{j}"


GENERIC = {"bitflip": bitflip, "overwrite": overwrite, "truncate": truncate, "insert": insert,
           "delete": delete, "duplicate": duplicate}
_GENERIC_WEIGHTS = {"bitflip": 4, "overwrite": 4, "truncate": 2, "insert": 1, "delete": 1, "duplicate": 1}


def _generic(data, rng):
    name = rng.choices(list(_GENERIC_WEIGHTS), weights=list(_GENERIC_WEIGHTS.values()))[0]
    return GENERIC[name](data, rng)


def mutate_case(family: str, files: dict[str, bytes], rng: random.Random, aware,
                finish=None) -> tuple[dict, list[str]]:
    """Damage *files* (name -> bytes) of one case; return the new files and what was done.

    ``aware(family, name, data, files, rng)`` is the format-aware mutator; it returns
    ``(bytes, text)`` or ``None`` when it has nothing for that file. ``finish(family, data, rng)``,
    if given, may repair the damage's side effects (PNG CRCs) the same way.
    """
    files = dict(files)
    done: list[str] = []
    names = sorted(files)
    if family == "wfdb":
        weights = [{"hea": 5, "dat": 2, "atr": 4}.get(n.rsplit(".", 1)[-1], 1) for n in names]
    else:
        weights = [1] * len(names)
    n_files = 2 if len(names) > 1 and rng.random() < 0.1 else 1
    for name in rng.choices(names, weights=weights, k=n_files):
        data = files[name]
        mode = rng.random()
        if mode < 0.55:
            got = aware(family, name, data, files, rng)
            if got is not None:
                data, text = got
                done.append(f"{name}: {text}")
            if got is None or rng.random() < 0.15:  # sometimes a byte mutation on top
                data, text = _generic(data, rng)
                done.append(f"{name}: {text}")
        else:
            for _ in range(1 if rng.random() < 0.8 else rng.choice((2, 3, 5))):
                data, text = _generic(data, rng)
                done.append(f"{name}: {text}")
        if finish is not None:
            got = finish(family, data, rng)
            if got is not None:
                data, text = got
                done.append(f"{name}: {text}")
        files[name] = data
    if len(names) > 1 and rng.random() < 0.03:
        gone = rng.choice(names)
        files.pop(gone)
        done.append(f"{gone}: removed")
    return files, done
