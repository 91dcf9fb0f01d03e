#!/usr/bin/env bash
# The timing comparison in both builds (issue 16: measure the way users build): first the
# default release profile (`release`: no LTO, 16 codegen units, what `cargo build --release`
# gives a user), then `release-lto` (thin LTO, one codegen unit). Arguments go to both runs
# (`--quick`, `--filter S`, `--realtime`, ...); each run prints its own tables, headed by a
# machine line that names its profile, and writes target/compare-<profile>.json.
#
#   bash benches/compare/run.sh --quick
#   bash benches/compare/run.sh --realtime        # the full run (41 rounds per profile)
set -euo pipefail
cd "$(dirname "$0")"
read -r -a profiles <<<"${PROFILES:-release release-lto}"
for profile in "${profiles[@]}"; do
  cargo build --profile "$profile" --bin agentcore-telemetry-compare -q
done
for profile in "${profiles[@]}"; do
  echo "### Profile \`$profile\`"
  echo
  "target/$profile/agentcore-telemetry-compare" --json "../../target/compare-$profile.json" "$@"
  echo
done
