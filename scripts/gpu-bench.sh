#!/usr/bin/env bash
# The GPU table of the README, measured in one run on one machine: modewise on wgpu and on cuda
# against torch on CUDA (eager for one network, batched bmm for an ensemble) and against
# modewise on one CPU core, for W3, W2 × 1024 and W1 × 4096, then `modewise run demo` on the
# GPU and on the CPU. It first builds modewise (release, with the cuda feature) and checks the
# device path briefly: the batch kernel draws the CPU's Philox stream bit for bit on wgpu and
# cuda, and training on wgpu matches the CPU (the `device::` unit tests and `backends.rs`).
#
#   scripts/gpu-bench.sh            # everything, about 10 minutes on an H100 after the build
#   CUDA=0 scripts/gpu-bench.sh     # without the cuda backend
#
# The cuda feature needs no CUDA toolkit, but its first build downloads a prebuilt LLVM
# (tracel-llvm-bundler, into ~/.local/share/tracel); where that fails (offline) the script goes
# on without the cuda column and says so.
#
# Timing: after the build, 15 bench figures of SECONDS_PER (5) s plus a fifth of warm-up and the
# process start each, 4 W3 gradient-path figures, 3 demo runs (CPU ~10 s; GPU ~10–45 s) and the
# correctness tests: about 5–10 minutes on an H100. On a machine without network give it a
# binary built elsewhere (BIN=…, SKIP_CHECKS=1) and a python with torch (PEER_PYTHON=…).
#
# Environment: BIN (a prebuilt modewise binary: no build), CUDA (1 default; 0: no cuda feature,
# no cuda column), SECONDS_PER (measuring time
# per figure, default 5), CORE (the CPU core of the one-core figures, default 0), PEER_PYTHON
# (default .venv-gpu/bin/python; when that default is missing the script creates the venv with
# torch's default (CUDA) build and bench/peers/requirements.txt), SKIP_CHECKS (set: do not run
# the correctness tests), SKIP_DEMO (set: do not time the demo).
#
# Output: a header (GPU, driver, CPU, versions), then a Markdown table to paste into the README
# (rows W3, W2 × 1024, W1 × 4096; columns modewise wgpu, modewise cuda, torch CUDA eager, torch
# CUDA bmm, modewise one CPU core, in steps/s or member-steps/s), the W3 gradient paths on the
# GPU (closed-form against autodiff), and the demo's wall-clock time on each backend.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA=${CUDA:-1}
SECONDS_PER=${SECONDS_PER:-5}
CORE=${CORE:-0}
PY=${PEER_PYTHON:-.venv-gpu/bin/python}
features=()
backends=(wgpu)
if [ "$CUDA" = 1 ]; then
  features=(--features cuda)
  backends=(wgpu cuda)
fi

if [ -n "${BIN:-}" ]; then
  echo "using $BIN (no build); its cuda backend, if any, is measured when CUDA=1"
elif echo "building modewise (release${features[*]:+, ${features[*]}})" && ! cargo build --release --quiet "${features[@]}"; then
  [ "$CUDA" = 1 ] || exit 1
  # The cuda feature's first build downloads a prebuilt LLVM (tracel-llvm-bundler); offline,
  # or without it, go on with wgpu alone and say so.
  echo "warning: the build with --features cuda failed (see above); measuring without the cuda backend" >&2
  CUDA=0
  features=()
  backends=(wgpu)
  cargo build --release --quiet
fi
BIN=${BIN:-target/release/modewise}

if [ -z "${SKIP_CHECKS:-}" ]; then
  echo "checking the device path (batch kernel bit for bit, device probes and the fused update against the host, training against the CPU)"
  cargo test --release --quiet "${features[@]}" --workspace --lib -- device step_kernel 2>&1 | grep -E '^test result|FAILED|panicked' || true
  cargo test --release --quiet "${features[@]}" --workspace --test backends 2>&1 | grep -E '^test result|FAILED|panicked' || true
fi

if [ -z "${PEER_PYTHON:-}" ] && [ ! -x "$PY" ]; then
  echo "creating .venv-gpu for the torch peer (torch with CUDA, numpy)"
  python3 -m venv .venv-gpu
  .venv-gpu/bin/pip install --quiet torch
  .venv-gpu/bin/pip install --quiet -r bench/peers/requirements.txt
fi

per_second() { sed -nE 's/.*"per_second": *([0-9.eE+-]+).*/\1/p'; }
fmt() { awk -v v="$1" 'BEGIN { if (v == "") print "—"; else printf "%.4g", v }'; }

# modewise bench: workload, members, backend, [extra flags].
ours() {
  local w=$1 m=$2 b=$3
  shift 3
  local pin=()
  [ "$b" = flex ] && pin=(taskset -c "$CORE")
  "${pin[@]}" "$BIN" bench --workload "$w" --members "$m" --backend "$b" --threads 1 --seconds "$SECONDS_PER" --json "$@" 2>/dev/null | per_second || true
}

# torch peer on CUDA: workload, members, form.
torch() {
  "$PY" bench/peers/torch_dln.py --workload "$1" --members "$2" --form "$3" --device cuda 2>/dev/null | per_second || true
}

echo
echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo unknown)"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), one core (core $CORE) for the CPU column"
echo "modewise $(git rev-parse --short HEAD) ($BIN); peer: $("$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null || echo "no torch in $PY (the torch columns stay empty)")"
echo "each figure: modewise bench --seconds $SECONDS_PER (after a warm-up of a fifth), torch_dln.py defaults"
echo
echo "| workload | unit | modewise wgpu | modewise cuda | torch CUDA eager | torch CUDA bmm | modewise 1 CPU core (flex) |"
echo "|---|---|---|---|---|---|---|"
for row in "w3 1 W3 512 wide, batch 128" "w2 1024 W2 × 1024" "w1 4096 W1 × 4096"; do
  read -r w m label <<<"$row"
  unit=steps/s
  [ "$m" -gt 1 ] && unit=member-steps/s
  wgpu=$(ours "$w" "$m" wgpu)
  cuda=""
  [ "$CUDA" = 1 ] && cuda=$(ours "$w" "$m" cuda)
  eager=""
  [ "$m" = 1 ] && eager=$(torch "$w" 1 eager)
  bmm=$(torch "$w" "$m" bmm)
  cpu=$(ours "$w" "$m" flex)
  echo "| $label | $unit | $(fmt "$wgpu") | $(fmt "$cuda") | $(fmt "$eager") | $(fmt "$bmm") | $(fmt "$cpu") |"
done

echo
echo "W3 on the GPU by gradient path (steps/s):"
for b in "${backends[@]}"; do
  echo "  $b: closed-form $(fmt "$(ours w3 1 "$b" --gradient closed-form)"), autodiff $(fmt "$(ours w3 1 "$b" --gradient autodiff)")"
done

if [ -z "${SKIP_DEMO:-}" ]; then
  out=$(mktemp -d)
  echo
  echo "modewise run demo, wall-clock seconds (and where the time went):"
  for b in flex "${backends[@]}"; do
    start=$(date +%s.%N)
    times=$("$BIN" run demo --backend "$b" --out "$out/$b" 2>&1 >/dev/null | grep -E '^time:' || true)
    end=$(date +%s.%N)
    awk -v b="$b" -v s="$start" -v e="$end" -v t="$times" 'BEGIN { printf "  %-5s %6.1f s  %s\n", b, e - s, t }'
  done
  rm -rf "$out"
fi
