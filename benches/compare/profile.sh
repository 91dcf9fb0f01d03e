#!/usr/bin/env bash
# Instruction counts per operation under callgrind: repeatable on a noisy machine, and the same on
# any x86-64 machine for a given binary (issue 16). Two parts, each for both builds: the default
# release profile (`release`: no LTO, 16 codegen units, what users build) and `release-lto` (thin
# LTO, one codegen unit).
#
#   bash benches/compare/profile.sh                      # both parts, both profiles
#   bash benches/compare/profile.sh --ours [WORKLOAD..]  # part 1 only: ours, with a per-file breakdown
#   bash benches/compare/profile.sh --peers [--filter S] # part 2 only: every library, one table
#   bash benches/compare/profile.sh --peers --cache-model # and each arm's misses on a modeled older core
#   PROFILES=release bash benches/compare/profile.sh ... # one profile only
#
# Part 1 (`profile_driver`): our hot paths, each run N and 2N times; per operation =
#   (Ir(2N) - Ir(N)) / N, so the set-up cancels exactly (subtracting a set-up-only run did not:
#   the driver's set-up differs between workloads, and labeled_histogram_observe read 407 that
#   way against 242 by difference), with the inlined code broken down by source file (the
#   same difference per function). Workloads:
#   floor_load_store counter_inc labeled_inc labeled_inc_loop histogram_observe labeled_histogram_observe
#   labeled_histogram_observe_loop (the `_loop` ones: the labeled workloads' own loops, no lookup)
#   span_basic span_start_attributes span_event_attributes span_unsampled span_dropped span_unsampled_dropped
#   macro_call encode_span_proto encode_span_json.
# Part 2 (`agentcore-telemetry-compare --instructions`): every arm of every single-threaded
#   workload of the comparison (ours, prometheus, prometheus-client, metrics, fastrace,
#   opentelemetry, tracing, the floors), the very closures the timing comparison runs, each
#   under callgrind at n and 2n operations; per operation = (Ir(2n) - Ir(n)) / n, where Ir is
#   the count of the measured region only (the one call of the arm's closure, all threads; the
#   main thread alone for export_recording): the child zeroes callgrind's counts just before it
#   and dumps them just after it (client requests, src/callgrind.rs), and the parent reads that
#   dump's file. Not the process total, because the set-up runs clock calibrations whose count
#   follows wall time under valgrind (quanta::Clock::new 7.8 M vs 10.9 M instructions in two
#   runs, fastant's TSC calibration 3.2 M vs 4.2 M): four runs of counter_inc at n, n, 2n, 2n
#   read 24.5 M, 29.1 M, 41.1 M, 34.1 M in all, i.e. 3 to 10 instructions per increment; the
#   region reads 11,000,604 at n every time. See src/instructions.rs.
set -euo pipefail
cd "$(dirname "$0")"
command -v valgrind >/dev/null || { echo "profile.sh needs valgrind (apt-get install valgrind)"; exit 1; }
ours=1
peers=1
filter=()
model=()
workloads=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ours) peers=0 ;;
    --peers) ours=0 ;;
    --filter) filter=(--filter "$2"); shift ;;
    --cache-model) model=(--cache-model) ;;
    *) workloads+=("$1") ;;
  esac
  shift
done
[ ${#workloads[@]} -eq 0 ] && workloads=(floor_load_store counter_inc labeled_inc labeled_inc_loop histogram_observe labeled_histogram_observe labeled_histogram_observe_loop span_basic span_start_attributes span_event_attributes span_unsampled span_dropped span_unsampled_dropped macro_call encode_span_proto encode_span_json)
read -r -a profiles <<<"${PROFILES:-release release-lto}"
N=200000
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
    for w in "${workloads[@]}"; do
      one=$(ir "$out/$w.1" "$w")
      two=$(N=$((2 * N)); ir "$out/$w.2" "$w")
      # One decimal: shell arithmetic floored it, and a loop of exactly 12 instructions read
      # 11 or 12 from one build to the next (counter_inc, 2026-12-07: the same listing).
      per_op=$(awk -v a="$one" -v b="$two" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
      echo "== $w: $per_op instructions per operation (runs of N = $N and 2N: the difference, so set-up cancels)"
      callgrind_annotate "$out/$w.1" >"$out/$w.1.txt" 2>/dev/null
      callgrind_annotate "$out/$w.2" >"$out/$w.2.txt" 2>/dev/null
      python3 - "$out/$w.1.txt" "$out/$w.2.txt" "$N" <<'PY'
import re, sys
def rows(path):
    d = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+?):(\S+)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        src = re.sub(r".*/(registry/src/[^/]+/|rustc/[0-9a-f]+/library/|rust/deps/|wt-bench/|sysdeps/)", "", m.group(2))
        key = (src, m.group(3).split("::")[-1])
        d[key] = d.get(key, 0) + int(m.group(1).replace(",", ""))
    return d
one, two, n = rows(sys.argv[1]), rows(sys.argv[2]), int(sys.argv[3])
diff = sorted(((two.get(k, 0) - one.get(k, 0)) / n, k) for k in set(one) | set(two))
for ir, (src, fn) in sorted(diff, reverse=True)[:20]:
    if ir >= 0.5:
        print(f"  {ir:6.1f}  {src}  (in {fn})")
PY
    done
  fi
  if [ "$peers" = 1 ]; then
    cargo build --profile "$profile" --bin agentcore-telemetry-compare -q
    echo "## profile $profile: every library (agentcore-telemetry-compare --instructions)"
    "target/$profile/agentcore-telemetry-compare" --instructions "${model[@]}" "${filter[@]}" \
      --json "../../target/compare-$profile.json"
  fi
done
