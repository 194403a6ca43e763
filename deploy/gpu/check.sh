#!/usr/bin/env bash
# The GPU checks of issue 17 §4, for a machine with an NVIDIA GPU (driver for CUDA 13): run from the
# repository root as `bash deploy/gpu/check.sh`, after `just test` has built everything once.
#
#   1. setup installs the CUDA build of ONNX Runtime and the CUDA libraries (deploy/assets.lock,
#      `gpu` lines) into assets/onnxruntime-gpu/, because it finds a GPU;
#   2. the 1:N search graph's tests on the CUDA provider, rows resident on the device
#      (tests/tests/search_graph.rs: hits and scores equal to the CPU scan's, after removals and
#      growth; the test asserts the graph runs on CUDA);
#   3. the real-photo fidelity tests with the face models on CUDA (provider `auto` picks CUDA when
#      it registers; the test compares embeddings with OpenCV's on real photos);
#   4. benchmarks: frame→embedding (node/benches/pipeline.rs, it prints the provider) and 1:N at
#      1M and 10M, single probe p50/p99 and batches of 64, beside the CPU scan in the same run
#      (node/benches/search_graph.rs).
#
# Output goes to stdout and to $CLEARWAY_GPU_OUT (default /var/tmp/clearway-gpu), one log per step;
# the figures go into BENCHMARKS.md ("GPU") by hand, with the machine's `nvidia-smi -L`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${CLEARWAY_GPU_OUT:-/var/tmp/clearway-gpu}
cd "$root"
die() { printf 'gpu check: error: %s\n' "$*" >&2; exit 1; }

nvidia-smi -L 2>/dev/null | grep -q '^GPU' || die "no NVIDIA GPU here (nvidia-smi -L lists none)"
mkdir -p "$out"
nvidia-smi -L | tee "$out/gpu.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$out/gpu.txt"

bash deploy/setup.sh
gpu="$root/assets/onnxruntime-gpu"
[ -f "$gpu/.complete" ] || die "setup did not install $gpu"
export ORT_DYLIB_PATH="$gpu/libonnxruntime.so.1.31.1"
export LD_LIBRARY_PATH="$gpu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/clearway-target}
export CLEARWAY_CACHE=${CLEARWAY_CACHE:-/var/tmp/clearway-cache}
export CLEARWAY_ASSETS=${CLEARWAY_ASSETS:-$root/assets}

step() { # name command...
  local name=$1; shift
  printf '\n== %s\n' "$name"
  "$@" 2>&1 | tee "$out/$name.log"
}

step search-graph-tests env CLEARWAY_SEARCH_PROVIDER=cuda \
  cargo test --release --locked -p clearway-tests --test search_graph
step fidelity-tests cargo test --release --locked -p clearway-tests --test fidelity
step pipeline-bench cargo bench --locked -p clearway-node --bench pipeline
step search-graph-bench env CLEARWAY_SEARCH_PROVIDER=cuda CLEARWAY_BENCH_SIZES=1000000,10000000 \
  cargo bench --locked -p clearway-node --bench search_graph
printf '\ngpu check: done; logs in %s\n' "$out"
