#!/usr/bin/env bash
# Instruction counts per operation of agentcore-telemetry's hot paths under callgrind (repeatable,
# unlike timings on a shared machine), with a breakdown of the inlined code by source file.
#   bash benches/compare/profile.sh [floor_load_store] [counter_inc] [labeled_inc] [histogram_observe] [span_basic] [encode_span_proto] [encode_span_json]
set -euo pipefail
cd "$(dirname "$0")"
command -v valgrind >/dev/null || { echo "profile.sh needs valgrind (apt-get install valgrind)"; exit 1; }
cargo build --release --bin profile_driver -q
N=1000000
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$1" target/release/profile_driver "$2" "$N" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
base=$(ir "$out/none" none)
workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(floor_load_store counter_inc labeled_inc histogram_observe span_basic encode_span_proto encode_span_json)
for w in "${workloads[@]}"; do
  total=$(ir "$out/$w" "$w")
  echo "== $w: $(( (total - base) / N )) instructions per operation (N = $N, set-up baseline subtracted)"
  callgrind_annotate "$out/$w" 2>/dev/null | python3 -c '
import re, sys
n = int(sys.argv[1])
rows = []
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+?):(\S+)", line)
    if not m or "PROGRAM TOTALS" in line:
        continue
    ir = int(m.group(1).replace(",", "")) / n
    if ir >= 0.5:
        src = re.sub(r".*/(registry/src/[^/]+/|rustc/[0-9a-f]+/library/|rust/deps/|wt-bench/|sysdeps/)", "", m.group(2))
        rows.append((ir, src, m.group(3)))
seen = set()
for ir, src, fn in rows[:24]:
    if (src, fn) in seen: continue
    seen.add((src, fn))
    short = fn.split("::")[-1]
    print(f"  {ir:6.1f}  {src}  (in {short})")
' "$N"
done
