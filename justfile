# Clearway — the two commands a new machine needs are `just demo` and `just test` (README.md).
# Each runs `setup` first, which installs what is missing and verifies every pinned artefact.

set shell := ["bash", "-euo", "pipefail", "-c"]

export CLEARWAY_CACHE := env_var_or_default("CLEARWAY_CACHE", "/var/tmp/clearway-cache")
# The build cache lives outside the checkout so fresh clones (and CI) reuse it.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", "/var/tmp/clearway-target")
export ORT_DYLIB_PATH := env_var_or_default("ORT_DYLIB_PATH", justfile_directory() / "assets/onnxruntime/libonnxruntime.so.1.31.1")
export CLEARWAY_ASSETS := env_var_or_default("CLEARWAY_ASSETS", justfile_directory() / "assets")

bin := CARGO_TARGET_DIR / "release/clearway-node"

default:
    @just --list

# Install Debian packages, ONNX Runtime, models and photos (idempotent, hash-checked).
setup:
    bash deploy/setup.sh

# Build the node binary (release).
build: setup
    cargo build --release --locked -p clearway-node

# Run the whole test suite: unit, fidelity against OpenCV, real-photo CLI tests.
test: setup
    cargo build --release --locked -p clearway-node
    cargo test --release --locked --workspace --lib --bins --tests
    cargo build --release --locked --workspace --benches

# The main job: enrol real photos into a local gallery and match real faces against it.
demo: build
    bash deploy/demo.sh "{{bin}}"

# Run the node CLI, e.g. `just node identify --db /tmp/g photo.jpg`.
node *args: build
    cd "{{invocation_directory()}}" && "{{bin}}" {{args}}

# Benchmarks: 1:N search and frame→embedding; figures go into BENCHMARKS.md by hand.
bench: setup
    cargo bench --locked -p clearway-gallery
    cargo bench --locked -p clearway-node
    cargo build --release --locked -p clearway-node
    cargo bench --locked -p clearway-tests --bench cluster
    cargo bench --locked -p clearway-tests --bench lane
    "$CLEARWAY_CACHE/venv/bin/python" tests/fixtures/bench_opencv.py assets

# Regenerate the OpenCV reference fixture (tests/fixtures/opencv_reference.json).
fixtures: setup
    "$CLEARWAY_CACHE/venv/bin/python" tests/fixtures/make_reference.py assets tests/fixtures/opencv_reference.json
