#!/usr/bin/env bash
# Runs the browser test with screenshots on: a PNG of every page it visits, at desktop
# (1280x900) and phone (390x844) sizes, whole page. Output: target/screenshots/, or $1.
# Needs chromium and chromium-driver (apt-get install -y chromium chromium-driver).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="${1:-target/screenshots}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# Only the PNGs of an earlier run go: the folder may hold other things.
find "$out" -maxdepth 1 -name '*.png' -delete

KEYWARD_SCREENSHOTS="$out" cargo test --test browser -- --ignored
echo
echo "Screenshots in $out:"
ls -1 "$out"
