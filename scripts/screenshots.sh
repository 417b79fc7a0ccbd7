#!/usr/bin/env bash
# Runs the browser test with screenshots on: a PNG of every page it visits, whole page, at
# 1280, 1024 and 390 px wide, each in the light and the dark colour scheme. It fails if, at
# any of them, a table is wider than its box (scrollWidth over clientWidth), the page is
# wider than the window, or the page scrolls more than 100 px past its footer.
# Output: target/screenshots/, or $1.
# Needs chromium and chromium-driver (apt-get install -y chromium chromium-driver).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="${1:-target/screenshots}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# Only the PNGs of an earlier run go: the folder may hold other things.
find "$out" -maxdepth 1 -name '*.png' -delete

KEYWARD_SCREENSHOTS="$out" cargo test --test browser
echo
echo "Screenshots in $out:"
ls -1 "$out"
