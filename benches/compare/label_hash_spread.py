#!/usr/bin/env python3
"""How evenly the label hash spreads label-value lists over the lookup cache's entries, for
random family seeds (benches/HISTORY.md, "The label hash: one `lea` fewer, one finishing
multiply more").

    python3 benches/compare/label_hash_spread.py [SEEDS] [--variants]

The arithmetic of `src/registry/label_hash.rs` (`Key::of`, `mix`, `mix_long`, the finishing
multiply) in Python, with and without the finishing multiply, and the entry the cache takes
(bits 5..12 of the hash: `lookup_cache::entry_of`). For each pattern of 50 lists and each of
SEEDS random seed pairs (default 3,000): how many lists are displaced from the entry they
prefer, and whether a set (eight entries) gets more keys than it has ways. A random placement
is the reference row. `--variants` adds, for `agent-NNN`, the unfinished hash read at other
bits (54..61, 32..39), with a byte-swapped last word, and finished with `h ^ h >> 32` instead of
the multiply.
"""
import collections
import random
import struct
import sys

M = (1 << 64) - 1


def key(b):
    n = len(b)
    if n >= 8:
        return n, struct.unpack("<Q", b[:8])[0], struct.unpack("<Q", b[-8:])[0]
    if n >= 4:
        return n, struct.unpack("<I", b[:4])[0], struct.unpack("<I", b[-4:])[0]
    if n > 0:
        return n, b[0] | b[n // 2] << 8 | b[-1] << 16, 0
    return 0, 0, 0


def fold_mul(x, y):
    p = x * y
    return (p & M) ^ (p >> 64)


def bswap(x):
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def label_hash(values, s0, s1, finish, swap=False):
    h = s0
    for v in values:
        b = v.encode()
        if len(b) > 16:
            for i in range(0, len(b), 16):
                n, a, c = key(b[i:i + 16])
                h = fold_mul(h ^ a, ((c + n) & M) ^ s1)
        n, a, c = key(b)
        h = fold_mul(h ^ a, (((bswap(c) if swap else c) + n) & M) ^ s1)
    if finish == "xorshift":
        return h ^ h >> 32
    return fold_mul(h, s1) if finish else h


PATTERNS = {
    "agent-NNN": [[f"agent-{i:03}"] for i in range(50)],
    "worker-N": [[f"worker-{i}"] for i in range(50)],
    "abN": [[f"ab{i}"] for i in range(50)],
    "N": [[f"{i}"] for i in range(50)],
    "model, agent-NN": [["gpt-4o-mini", f"agent-{i:02}"] for i in range(50)],
    "tool_NN, status": [[f"tool_{i % 25:02}", "success" if i < 25 else "error"] for i in range(50)],
    "long path": [[f"/api/v1/items/{i}/details"] for i in range(50)],
    "uuid": [[f"{i:08x}-0000-4000-8000-000000000000"] for i in range(50)],
}


def summary(placements):
    displaced, fullest = [], []
    for entries in placements:
        displaced.append(sum(k - 1 for k in collections.Counter(entries).values()))
        fullest.append(max(collections.Counter(e // 8 for e in entries).values()))
    t = len(placements)
    displaced.sort()
    return (f"displaced mean {sum(displaced) / t:5.2f}, p99 {displaced[int(t * .99)]:3}, "
            f"> 14 in {100 * sum(d > 14 for d in displaced) / t:4.1f}%; "
            f"a set past 8 ways in {100 * sum(f > 8 for f in fullest) / t:4.1f}%")


def main():
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    seeds = int(numbers[0]) if numbers else 3000
    rng = random.Random(16)
    print(f"{'random placement':36}", summary([[rng.randrange(256) for _ in range(50)]
                                               for _ in range(seeds)]))
    for name, lists in PATTERNS.items():
        for finish in (False, True):
            rows = []
            for _ in range(seeds):
                s0, s1 = rng.getrandbits(64) | 1, rng.getrandbits(64) | 1
                rows.append([label_hash(v, s0, s1, finish) >> 5 & 255 for v in lists])
            label = f"{name} ({'finished' if finish else 'unfinished'})"
            print(f"{label:36}", summary(rows))
    if "--variants" in sys.argv:
        lists = PATTERNS["agent-NNN"]
        variants = {
            "bits 54..61": lambda v, s0, s1: label_hash(v, s0, s1, False) >> 54 & 255,
            "bits 32..39": lambda v, s0, s1: label_hash(v, s0, s1, False) >> 32 & 255,
            "last word byte-swapped": lambda v, s0, s1: label_hash(v, s0, s1, False, True) >> 5 & 255,
            "finished by h ^ h >> 32": lambda v, s0, s1: label_hash(v, s0, s1, "xorshift") >> 5 & 255,
        }
        for name, entry in variants.items():
            rows = []
            for _ in range(seeds):
                s0, s1 = rng.getrandbits(64) | 1, rng.getrandbits(64) | 1
                rows.append([entry(v, s0, s1) for v in lists])
            print(f"{'agent-NNN, ' + name:36}", summary(rows))


if __name__ == "__main__":
    main()
