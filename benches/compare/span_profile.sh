#!/usr/bin/env bash
# Instructions per operation of the span workloads under callgrind, in the two builds of
# Cargo.toml: `release` (Cargo's default release profile: no LTO, 16 codegen units, what users
# get) and `release-lto` (thin LTO, 1 codegen unit). Workloads are `profile_future`'s (see its
# doc):
#   bash benches/compare/span_profile.sh [N]
# Prints a markdown table, set-up baseline (`none`) subtracted, and the issue 16 span targets.
set -euo pipefail
cd "$(dirname "$0")"
command -v valgrind >/dev/null || { echo "span_profile.sh needs valgrind (apt-get install valgrind)"; exit 1; }
N=${1:-200000}
workloads=(span_basic span_unsampled span_nested macro_call span_in_future)
declare -A ir
for build in no-lto lto; do
  # The LTO column once built `--release` too, after the workspace's LTO profile moved to
  # `release-lto`, and so printed the default build twice.
  if [ "$build" = no-lto ]; then profile=release; else profile=release-lto; fi
  cargo build --profile "$profile" --bin profile_future -q
  run() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "target/$profile/profile_future" "$1" "$N" 2>&1 \
      | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  }
  base=$(run none)
  for w in "${workloads[@]}"; do
    ir[$build.$w]=$(( ($(run "$w") - base) / N ))
  done
done
echo "| workload (instructions per operation, N = $N) | no LTO | LTO |"
echo "| --- | ---: | ---: |"
for w in "${workloads[@]}"; do
  echo "| \`$w\` | ${ir[no-lto.$w]} | ${ir[lto.$w]} |"
done
verdict() { if [ "$1" -le "$2" ] && [ "$3" -le "$2" ]; then echo met; else echo "**missed**"; fi; }
echo
echo "| target | no LTO | LTO | |"
echo "| --- | ---: | ---: | --- |"
echo "| span + 2 attributes + event + finish (\`span_basic\`) ≤ 350 instructions | ${ir[no-lto.span_basic]} | ${ir[lto.span_basic]} | $(verdict "${ir[no-lto.span_basic]}" 350 "${ir[lto.span_basic]}") |"
echo "| unsampled span (\`span_unsampled\`) ≤ 30 instructions | ${ir[no-lto.span_unsampled]} | ${ir[lto.span_unsampled]} | $(verdict "${ir[no-lto.span_unsampled]}" 30 "${ir[lto.span_unsampled]}") |"
