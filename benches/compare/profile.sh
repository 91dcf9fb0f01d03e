#!/usr/bin/env bash
# Instruction counts per operation under callgrind: repeatable on a noisy machine, and the same on
# any x86-64 machine for a given binary (issue 16). Two parts, each for both builds: the default
# release profile (`release`: no LTO, 16 codegen units, what users build) and `release-lto` (thin
# LTO, one codegen unit).
#
#   bash benches/compare/profile.sh                      # both parts, both profiles
#   bash benches/compare/profile.sh --ours [WORKLOAD..]  # part 1 only: ours, with a per-file breakdown
#   bash benches/compare/profile.sh --peers [--filter S] # part 2 only: every library, one table
#   PROFILES=release bash benches/compare/profile.sh ... # one profile only
#
# Part 1 (`profile_driver`): our hot paths, each run N times; per operation = (Ir - Ir of the
#   set-up alone) / N, with the inlined code broken down by source file. Workloads:
#   floor_load_store counter_inc labeled_inc histogram_observe labeled_histogram_observe
#   span_basic encode_span_proto encode_span_json.
# Part 2 (`agentcore-telemetry-compare --instructions`): every arm of every single-threaded
#   workload of the comparison (ours, prometheus, prometheus-client, metrics, fastrace,
#   opentelemetry, tracing, the floors), the very closures the timing comparison runs, each
#   under callgrind at n and 2n operations; per operation = (Ir(2n) - Ir(n)) / n.
set -euo pipefail
cd "$(dirname "$0")"
command -v valgrind >/dev/null || { echo "profile.sh needs valgrind (apt-get install valgrind)"; exit 1; }
ours=1
peers=1
filter=()
workloads=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ours) peers=0 ;;
    --peers) ours=0 ;;
    --filter) filter=(--filter "$2"); shift ;;
    *) workloads+=("$1") ;;
  esac
  shift
done
[ ${#workloads[@]} -eq 0 ] && workloads=(floor_load_store counter_inc labeled_inc histogram_observe labeled_histogram_observe span_basic encode_span_proto encode_span_json)
read -r -a profiles <<<"${PROFILES:-release release-lto}"
N=1000000
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for profile in "${profiles[@]}"; do
  if [ "$ours" = 1 ]; then
    cargo build --profile "$profile" --bin profile_driver -q
    driver="target/$profile/profile_driver"
    ir() {
      valgrind --tool=callgrind --callgrind-out-file="$1" "$driver" "$2" "$N" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    }
    echo "## profile $profile: agentcore-telemetry's hot paths (profile_driver)"
    base=$(ir "$out/none" none)
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
  fi
  if [ "$peers" = 1 ]; then
    cargo build --profile "$profile" --bin agentcore-telemetry-compare -q
    echo "## profile $profile: every library (agentcore-telemetry-compare --instructions)"
    "target/$profile/agentcore-telemetry-compare" --instructions "${filter[@]}" \
      --json "../../target/compare-$profile.json"
  fi
done
