#!/usr/bin/env python3
"""Where one `profile_driver` workload's instructions go, by the API call they are inlined from.

    python3 benches/compare/breakdown.py WORKLOAD [N] [--depth D] [--asm] [--fn ADDR] [--lto]

Runs `target/release/profile_driver WORKLOAD N` (build it first: `cargo build --release --bin
profile_driver` in benches/compare) under callgrind with `--toggle-collect` on the workload's own
function, so only that loop is counted (set-up excluded; no baseline to subtract). Each executed
instruction is then attributed, through the binary's inline debug info (`addr2line -i`), to the
chain of functions it was inlined from below the driver's own functions: depth 1 is the public call
(`start_span`, `finish_span`, `with_label_values`...), depth 2 what that call inlined, and so on.
An out-of-line callee is counted at the call instruction's chain (inclusive of its cost).
Instructions with no inline frame below the workload are the workload's own loop (`loop`).
`--asm` also prints each executed instruction with its count per operation. `--fn ADDR` (a hex
address from `--asm`'s `call` lines) breaks down that out-of-line callee instead of the workload:
its instructions per workload operation, grouped by the chain below the callee. `--lto` reads
the thin-LTO build instead (`cargo build --profile release-lto --bin profile_driver`).

Needs valgrind and binutils (`addr2line`, `objdump`). Counts are instructions per operation
(total / N); they are exact for the binary measured, whatever machine runs it.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "target", "release-lto" if "--lto" in sys.argv else "release",
                   "profile_driver")


def parse_args(argv):
    args = [a for a in argv if not a.startswith("--")]
    depth, asm, fn = 2, "--asm" in argv, None
    if "--depth" in argv:
        depth = int(argv[argv.index("--depth") + 1])
        args.remove(str(depth))
    if "--fn" in argv:
        fn = argv[argv.index("--fn") + 1]
        args.remove(fn)
        fn = int(fn, 16)
    if not args:
        sys.exit(__doc__)
    workload = args[0]
    n = int(args[1]) if len(args) > 1 else 100_000
    return workload, n, depth, asm, fn


def run_callgrind(workload, n, out):
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes",
         f"--toggle-collect=profile_driver::{workload}",
         f"--callgrind-out-file={out}", BIN, workload, str(n)],
        check=True, capture_output=True)


def instruction_costs(path):
    """Ir per instruction address (self cost) plus, at each call site, the callee's inclusive
    cost, for every function in the profile (only the toggled region is in it)."""
    costs = collections.Counter()
    addr = 0
    pos = re.compile(r"^(0x[0-9a-f]+|[+-]\d+|\*)(?:\s+(?:[+-]?\d+|\*))?\s+(\d+)\s*$")
    for line in open(path):
        m = pos.match(line)
        if not m:
            continue
        a = m.group(1)
        if a.startswith("0x"):
            addr = int(a, 16)
        elif a != "*":
            addr += int(a)
        costs[addr] += int(m.group(2))
    return costs


def inline_chains(addrs):
    out = subprocess.run(
        ["addr2line", "-a", "-f", "-i", "-C", "-e", BIN] + [hex(a) for a in addrs],
        check=True, capture_output=True, text=True).stdout.splitlines()
    chains, cur = {}, None
    for line in out:
        if line.startswith("0x"):
            cur = int(line, 16)
            chains[cur] = []
        elif cur is not None and line and not line.startswith(("/", "??:")):
            chains[cur].append(line.replace("agentcore_telemetry::", ""))
    return chains


def main():
    workload, n, depth, asm, fn = parse_args(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        run_callgrind(workload, n, out)
        costs = instruction_costs(out)
    # Only addresses inside the workload function: callees' own lines are already counted
    # inclusively at their call sites.
    syms = subprocess.run(["nm", "-C", BIN], check=True, capture_output=True, text=True).stdout
    start = fn if fn is not None else next(
        int(l.split()[0], 16) for l in syms.splitlines()
        if l.endswith(f" profile_driver::{workload}"))
    ends = sorted(int(l.split()[0], 16) for l in syms.splitlines()
                  if l.split() and re.match(r"^[0-9a-f]+$", l.split()[0])
                  and int(l.split()[0], 16) > start)
    end = ends[0] if ends else float("inf")
    costs = {a: c for a, c in costs.items() if start <= a < end}
    chains = inline_chains(sorted(costs))
    groups = collections.Counter()
    for a, c in costs.items():
        # The driver's own frames (the workload function, a body it inlines) are the loop.
        below = [f for f in chains.get(a, []) if not f.startswith("profile_driver::")]
        if fn is not None:
            below = below[:-1]  # the callee itself
        key = " > ".join(reversed(below[-depth:])) if below else "loop"
        groups[key] += c
    total = sum(costs.values())
    print(f"{workload}: {total / n:.1f} instructions per operation (N = {n})")
    for key, c in groups.most_common():
        if c / n >= 0.5:
            print(f"{c / n:7.1f}  {key}")
    if asm:
        dis = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", "-C",
             f"--start-address={start}", f"--stop-address={end}", BIN],
            check=True, capture_output=True, text=True).stdout
        for line in dis.splitlines():
            m = re.match(r"^\s*([0-9a-f]+):\s*(.*)", line)
            if m and costs.get(int(m.group(1), 16), 0) / n >= 0.5:
                print(f"{costs[int(m.group(1), 16)] / n:6.1f}  {m.group(1)}  {m.group(2)}")


if __name__ == "__main__":
    main()
