# Clearway — the two commands a new machine needs are `just demo` and `just test` (README.md).
# Each runs `setup` first, which installs what is missing and verifies every pinned artefact.

set shell := ["bash", "-euo", "pipefail", "-c"]

export CLEARWAY_CACHE := env_var_or_default("CLEARWAY_CACHE", "/var/tmp/clearway-cache")
# The build cache lives outside the checkout so fresh clones (and CI) reuse it.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", "/var/tmp/clearway-target")
export ORT_DYLIB_PATH := env_var_or_default("ORT_DYLIB_PATH", justfile_directory() / "assets/onnxruntime/libonnxruntime.so.1.31.1")
export CLEARWAY_ASSETS := env_var_or_default("CLEARWAY_ASSETS", justfile_directory() / "assets")

# The console's browser code (wasm) is built by Debian's rustc-web into its own target dir (the
# two compilers would otherwise invalidate each other's artefacts), and served from this site dir.
export CLEARWAY_CONSOLE_SITE := env_var_or_default("CLEARWAY_CONSOLE_SITE", CLEARWAY_CACHE / "console-site")
web_target := CLEARWAY_CACHE / "web-target"
# cargo-fuzz, pinned; the fuzz build has its own target dir (instrumented artefacts).
cargo_fuzz_version := "0.13.1"
fuzz_target_dir := env_var_or_default("CLEARWAY_FUZZ_TARGET", "/var/tmp/fuzz-target")
# cargo-deny, pinned, built `--locked` (its own lock file) into $CLEARWAY_CACHE/tools (`just deny`).
cargo_deny_version := "0.20.2"

bin := CARGO_TARGET_DIR / "release/clearway-node"
console_bin := CARGO_TARGET_DIR / "release/clearway-console"
demo_bin := CARGO_TARGET_DIR / "release/clearway-demo"

default:
    @just --list

# Install Debian packages, ONNX Runtime, models and photos (idempotent, hash-checked).
setup:
    bash deploy/setup.sh

# Build the node binary and the console (release).
build: setup console
    cargo build --release --locked -p clearway-node

# The console's browser code (hydrate, wasm32, with Debian's rustc-web as
# ../shared/wasm-toolchain.md describes) into $CLEARWAY_CONSOLE_SITE/pkg.
console-site: setup
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="{{web_target}}" \
      CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
      /usr/bin/cargo build --locked -p clearway-console --lib --release --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort --no-default-features --features hydrate
    mkdir -p "$CLEARWAY_CONSOLE_SITE/pkg"
    "$CLEARWAY_CACHE/tools/bin/wasm-bindgen" --target web --no-typescript --remove-name-section \
      --out-dir "$CLEARWAY_CONSOLE_SITE/pkg" "{{web_target}}/wasm32-unknown-unknown/release/clearway_console.wasm"

# The supervisor console: its browser code and its server.
console: console-site
    cargo build --release --locked -p clearway-console

# Run the console, e.g. `just serve-console --config deploy/console/hengqin.toml`.
serve-console *args: console
    cd "{{invocation_directory()}}" && "{{console_bin}}" serve {{args}}

# Run the whole test suite: unit, fidelity against OpenCV, real-photo CLI tests, the console,
# and the deploy files. Every binary, test and bench is built by one cargo run, so with one
# feature resolution (dev-dependencies included): separate `cargo build -p` runs resolve shared
# crates' features differently and compiled the node and the console up to three times each
# (BENCHMARKS.md, "Build"). The tests then run what that build made.
test: setup deny console-site check-layers check-deploy
    cargo build --release --locked --workspace --all-targets
    cargo test --release --locked --workspace --lib --bins --tests

# The advisory database is a git repository on GitHub, which this machine and CI cannot reach, so
# `just test` leaves advisories out; with that network: `just deny advisories` (README, "Supply chain").
# Check the dependency tree against deny.toml: licences, bans (duplicate versions), sources.
deny *checks="licenses bans sources": setup
    #!/usr/bin/env bash
    set -euo pipefail
    tools="$CLEARWAY_CACHE/tools"
    if [ "$("$tools/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny {{cargo_deny_version}}" ]; then
      echo "deny: installing cargo-deny {{cargo_deny_version}} into $tools (a few minutes, once)"
      # A temporary target dir: the build's is locked while a build runs there.
      (cd "$CLEARWAY_CACHE" && env -u CARGO_TARGET_DIR cargo install -q --locked cargo-deny \
        --version "{{cargo_deny_version}}" --root "$tools" --force)
    fi
    # Duplicate versions are warnings (deny.toml); their inclusion graphs would fill the CI log:
    # `cargo deny check bans` shows them.
    PATH="$tools/bin:$PATH" cargo deny --locked --manifest-path Cargo.toml check --hide-inclusion-graph {{checks}}

# The console builds without the node (ARCHITECTURE.md, "layers"): no clearway-node, GStreamer,
# ONNX Runtime or lane device crate among its build dependencies; clearway-wire holds what it needs.
check-layers:
    #!/usr/bin/env bash
    set -euo pipefail
    tree=$(cargo tree --locked -p clearway-console -e normal,build --prefix none)
    grep -q '^clearway-wire ' <<<"$tree" || { echo "check-layers: the console no longer uses clearway-wire?" >&2; exit 1; }
    if bad=$(grep -E '^(clearway-node|gstreamer|gstreamer-app|gstreamer-rtsp-server|ort|tokio-modbus|reqwest|image) ' <<<"$tree"); then
      echo "check-layers: the console's build depends on node-only crates:" >&2
      sort -u <<<"$bad" >&2
      exit 1
    fi
    echo "check-layers: the console builds without the node ($(sort -u <<<"$tree" | wc -l) crates)"

# Check deploy/: the Prometheus config, alert rules and their unit tests (promtool), the dashboard.
check-deploy:
    bash deploy/prometheus/check.sh
    python3 -m json.tool deploy/grafana/clearway-port.json >/dev/null

# Hengqin Port on this machine: 3 voters and 4 lanes (`clearway-node` processes) fed by simulated
# RTSP cameras, gates, readers and both authorities, a seeded registry, the console and
# Prometheus, travellers walking through. Data in $CLEARWAY_DEMO_DIR (default
# /var/tmp/clearway-demo); a second run resumes; options: `just demo --help`.
# The main job: a whole port on this machine; prints the console's URL and login; Ctrl-C stops it.
demo *args: build
    cargo build --release --locked -p clearway-tests --bin clearway-demo
    "{{demo_bin}}" {{args}}

# The command-line walk-through: enrol real photos into a local gallery and match faces.
demo-cli: build
    bash deploy/demo-cli.sh "{{bin}}"

# Run the node CLI, e.g. `just node identify --db /tmp/g photo.jpg`.
node *args: build
    cd "{{invocation_directory()}}" && "{{bin}}" {{args}}

# Benchmarks: 1:N search (beside FAISS) and frame→embedding (beside OpenCV's), each in the same run;
# figures go into BENCHMARKS.md by hand. `just bench` takes about 15 minutes (up to 18 on a slow
# VM: the cluster bench's shred section, 2–3 minutes); `just bench 10m` adds the 10M-template 1:N
# runs (about 4 minutes and 8 GiB more) and runs the cluster bench at 10M persons instead of 1M
# (36 to 80 minutes more, and about 40 GB of disk for its four nodes).
bench scale="1m": setup
    @case "{{scale}}" in 1m|10m) ;; *) echo "bench: the scale is 1m or 10m, not {{scale}}" >&2; exit 2 ;; esac
    CLEARWAY_BENCH_SIZES={{ if scale == "10m" { "1000000,10000000" } else { "1000000" } }} cargo bench --locked -p clearway-gallery
    CLEARWAY_BENCH_SIZES={{ if scale == "10m" { "1000000,10000000" } else { "1000000" } }} cargo bench --locked -p clearway-node
    cargo build --release --locked -p clearway-node
    cargo bench --locked -p clearway-tests --bench cluster {{ if scale == "10m" { "-- 10000000" } else { "" } }}
    cargo bench --locked -p clearway-tests --bench lane
    cargo bench --locked -p clearway-tests --bench flood

# fuzz/ is a cargo-fuzz (libFuzzer) project built by the stable compiler with RUSTC_BOOTSTRAP=1,
# no sanitizer (`-s none`: the node has no unsafe code, and it builds and runs far faster). New
# inputs go into fuzz/corpus/<target> (minimise with `cargo fuzz cmin` before committing);
# crashes into fuzz/artifacts/. CI replays the corpora instead (node/tests/fuzz_corpus.rs).
# Figures go into BENCHMARKS.md by hand.
# Fuzz the parsers of untrusted bytes for `seconds` each: every target, or the named ones.
fuzz seconds="60" *targets:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-fuzz >/dev/null && cargo fuzz --version | grep -q "{{cargo_fuzz_version}}" \
      || cargo install cargo-fuzz --version "{{cargo_fuzz_version}}" --locked
    export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="{{fuzz_target_dir}}"
    targets="{{targets}}"
    [ -n "$targets" ] || targets=$(ls fuzz/fuzz_targets | sed 's/\.rs$//')
    cargo fuzz build -s none
    for t in $targets; do
      mkdir -p "fuzz/corpus/$t"
      cargo fuzz run -s none "$t" "fuzz/corpus/$t" -- \
        -max_total_time={{seconds}} -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
    done

# Regenerate the OpenCV reference fixture (tests/fixtures/opencv_reference.json).
fixtures: setup
    "$CLEARWAY_CACHE/venv/bin/python" tests/fixtures/make_reference.py assets tests/fixtures/opencv_reference.json
