#!/usr/bin/env bash
# Kernel launches per SGD step on wgpu, by kernel, for one gradient path: runs
# crates/dln/examples/launch_count.rs for 2 and for 4 steps (after its warm-up) with cubecl's
# profiling log on and halves the difference of the logged launches.
#
#   scripts/launch-count.sh closed-form 32 8      # path, width, batch (W3's shape at that width)
#   scripts/launch-count.sh autodiff 512 128
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:-closed-form} width=${2:-32} batch=${3:-8}
cargo build --quiet --example launch_count
dir=$(mktemp -d)
count() {
  grep -E '^\| [0-9.]+(ns|µs|ms|s) +\|' "$1" | awk -F'|' '{ gsub(/ +/, "", $3); n[$3]++ } END { for (k in n) print k, n[k] }' | sort
}
for n in 2 4; do
  CUBECL_DEBUG_LOG="$dir/$n.log" CUBECL_DEBUG_OPTION=profile target/debug/examples/launch_count "$path" "$width" "$batch" "$n" 2>/dev/null
  count "$dir/$n.log" >"$dir/$n.txt"
done
join -a2 "$dir/2.txt" "$dir/4.txt" | awk '{ d = ($3 == "" ? $2 : $3 - $2) / 2; if (d > 0) { t += d; print "  " $1, d } } END { print "launches per step:", t }'
rm -rf "$dir"
