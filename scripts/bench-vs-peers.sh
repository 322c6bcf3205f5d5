#!/usr/bin/env bash
# Times modewise and the peer scripts of bench/peers (PyTorch, numpy) back to back on this
# machine, each pinned to one core with one thread, and prints a table of the ratios against the
# goals of the performance issue, with each network workload's GFLOP/s as a fraction of one
# core's f32 peak, measured first on the same core (`modewise bench --peak`: an FMA loop at the
# widest vector width the CPU has, and at AVX2 width). Then it times `modewise run demo` and
# prints where its time went. Both sides print one JSON line; their `per_second` fields are
# compared.
#
#   scripts/bench-vs-peers.sh                  # everything
#   WORKLOADS="w1 sde" scripts/bench-vs-peers.sh
#
# Environment: PEERS (the peer scripts, default bench/peers), PEER_PYTHON (default
# .venv-peer/bin/python; when that default is missing the script creates the venv with numpy and
# CPU-only torch from TORCH_INDEX, default https://download.pytorch.org/whl/cpu; see
# bench/peers/README.md), PEER_DEVICE (cpu or cuda for the torch peers, default cpu), CORE (the
# core to pin to, default 0), SECONDS_PER (modewise measuring time, default 5), BACKEND (modewise
# backend, default flex), REPEATS (alternating runs of each side; the medians are compared;
# default 3: shared machines drift by tens of percent between minutes), PEAK_SECONDS (time for
# measuring the peak, default 4), MODEWISE_BIN (a modewise binary to time instead of building
# target/release/modewise), SKIP_DEMO (set: do not time the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS:-bench/peers}
PY=${PEER_PYTHON:-.venv-peer/bin/python}
PEER_DEVICE=${PEER_DEVICE:-cpu}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
CORE=${CORE:-0}
SECONDS_PER=${SECONDS_PER:-5}
BACKEND=${BACKEND:-flex}
WORKLOADS=${WORKLOADS:-w1 w2 w1e w2e w3 sde}
REPEATS=${REPEATS:-3}
PEAK_SECONDS=${PEAK_SECONDS:-4}
BIN=${MODEWISE_BIN:-target/release/modewise}

# The peers' Python: create the default venv on first use (numpy, and torch's CPU-only build).
if [ -z "${PEER_PYTHON:-}" ] && [ ! -x "$PY" ]; then
  echo "creating .venv-peer for the peer scripts (numpy, torch from $TORCH_INDEX; see bench/peers/README.md)"
  python3 -m venv .venv-peer
  .venv-peer/bin/pip install --quiet torch --index-url "$TORCH_INDEX"
  .venv-peer/bin/pip install --quiet -r bench/peers/requirements.txt
fi
if [ ! -x "$PY" ]; then
  echo "error: PEER_PYTHON: $PY is not an executable Python (see bench/peers/README.md)" >&2
  exit 2
fi

if [ -z "${MODEWISE_BIN:-}" ]; then cargo build --release --quiet; fi
pin() { taskset -c "$CORE" "$@"; }

# The `per_second` field of a one-line JSON report (modewise's and the peers' alike).
per_second() { sed -nE 's/.*"per_second": *([0-9.eE+-]+).*/\1/p'; }

# modewise per-second figure of one workload, one thread.
ours() {
  local backend=(--backend "$BACKEND")
  [ "$1" = sde ] && backend=()
  pin "$BIN" bench --workload "$1" "${backend[@]}" --threads 1 --seconds "$SECONDS_PER" --json | per_second
}

# The peer's figure for the same workload.
peer() {
  case $1 in
    w1 | w2 | w3 | w1e | w2e) pin "$PY" "$PEERS/torch_dln.py" --workload "$1" --threads 1 --device "$PEER_DEVICE" ;;
    sde) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 pin "$PY" "$PEERS/numpy_sde.py" --paths 100000 --steps 100 ;;
  esac | per_second
}

goal() {
  case $1 in w1) echo 10 ;; w2) echo 3 ;; w1e) echo 5 ;; w2e) echo 1.5 ;; w3) echo 1.2 ;; sde) echo 5 ;; esac
}

# Flops of one member's step with the closed-form gradient (modewise_bench::Workload::
# flops_per_member_step: labels 2·d_L·d_0·B, the first layer 2 products of 2·d_1·d_0·B, every
# other layer 3 of 2·d_l·d_{l−1}·B); none for the SDE.
flops() {
  case $1 in w1 | w1e) echo 130200 ;; w2 | w2e) echo 7680000 ;; w3) echo 805306368 ;; *) echo 0 ;; esac
}

unit() {
  case $1 in w1e | w2e) echo member-steps/s ;; sde) echo path-steps/s ;; *) echo steps/s ;; esac
}

# One core's measured f32 peak: {"peak": {"avx512": …, "avx2": …}, "widest": …, "cpu": …}.
peak_json=$(pin "$BIN" bench --peak --seconds "$PEAK_SECONDS" --json)
field() { sed -nE "s/.*\"$1\": *(\"([^\"]*)\"|([^,}]*)).*/\2\3/p" <<<"$peak_json"; }
gflops() { awk -v g="$(field "$1")" 'BEGIN { if (g == "null") print "n/a"; else printf "%.1f", g }'; }
widest=$(field widest)
PEAK=$(field "$widest")
echo "machine: $(field cpu), $(nproc) cores; pinned to core $CORE, 1 thread"
echo "f32 peak of one core (modewise bench --peak, FMA loop): avx512 $(gflops avx512), avx2 $(gflops avx2) GFLOP/s; fractions below are of the $widest figure"
echo "modewise: $BIN bench --backend $BACKEND (default gradient path: fused on the CPU); peers: $("$PY" -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)')"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "medians of $REPEATS alternating runs per side"
printf '%-8s %-15s %12s %12s %8s %6s %-4s %s\n' workload unit modewise peer ratio goal met "GFLOP/s (of peak): modewise, peer"
for w in $WORKLOADS; do
  as=() bs=()
  for _ in $(seq "$REPEATS"); do
    as+=("$(ours "$w")")
    bs+=("$(peer "$w")")
  done
  a=$(printf '%s\n' "${as[@]}" | median)
  b=$(printf '%s\n' "${bs[@]}" | median)
  note=$(awk -v a="$a" -v b="$b" -v f="$(flops "$w")" -v p="$PEAK" 'BEGIN {
    if (f > 0) printf "%.1f (%.0f%%), %.1f (%.0f%%)", a * f / 1e9, 100 * a * f / 1e9 / p, b * f / 1e9, 100 * b * f / 1e9 / p }')
  awk -v w="$w" -v u="$(unit "$w")" -v a="$a" -v b="$b" -v g="$(goal "$w")" -v n="$note" 'BEGIN {
    r = a / b; printf "%-8s %-15s %12.4g %12.4g %7.2fx %5gx %-4s %s\n", w, u, a, b, r, g, (r >= g ? "yes" : "no"), n
  }'
done

if [ -z "${SKIP_DEMO:-}" ]; then
  out=$(mktemp -d)
  echo
  echo "modewise run demo (1 thread), where the time goes:"
  pin "$BIN" --threads 1 run demo --out "$out/demo" 2>&1 >/dev/null | grep -E '^(time|peak memory):'
  rm -rf "$out"
fi
