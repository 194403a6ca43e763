#!/usr/bin/env bash
# Checks the Prometheus files of deploy/prometheus with promtool (Debian package `prometheus`,
# installed by deploy/setup.sh): the config with its target files and rule files, the rules, and
# the rules' unit tests. Exits non-zero on the first failure. Run from anywhere:
#   bash deploy/prometheus/check.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf 'check: error: %s\n' "$*" >&2; exit 1; }

command -v promtool >/dev/null || die "promtool not found; run \`just setup\` (Debian package prometheus)"

# From the config's own directory, as Prometheus resolves rule_files and file_sd paths.
cd "$here"
shopt -s nullglob
rules=(rules/*.yml)
tests=(tests/*.test.yml)
targets=(targets/*.json)
((${#rules[@]})) || die "no rule files in $here/rules"
((${#tests[@]})) || die "no rule tests in $here/tests"
((${#targets[@]})) || die "no target files in $here/targets"

# promtool checks the file_sd target files only as far as their syntax; labels the jobs keep
# on must be there too.
for f in "${targets[@]}"; do
  python3 - "$f" <<'PY' || die "$f: bad target file"
import json, sys
path = sys.argv[1]
for i, group in enumerate(json.load(open(path))):
    labels = group.get("labels", {})
    role = labels.get("role")
    ok = group.get("targets") and (
        role == "console"
        or (role == "node" and labels.get("member") in ("voter", "learner")
            and "port" in labels and "node" in labels
            and (labels["member"] == "voter" or {"hall", "channel"} <= labels.keys())))
    if not ok:
        sys.exit(f"{path}: group {i}: needs targets and role=console, or role=node with port, "
                 f"node and member (voter, or learner with hall and channel): {group}")
PY
done

promtool check config prometheus.yml
promtool check rules "${rules[@]}"
promtool test rules "${tests[@]}"
echo "check: deploy/prometheus is valid"
