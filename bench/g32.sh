#!/usr/bin/env bash
# The guard ratio (G3.2) measured finely, with a control that shows how far this machine
# lets a ratio be trusted: a guarded route (by default one release, an answer as small as
# /healthz's; ROUTE=/plans or ROUTE=/token for another) against the same server's GET
# /healthz, and /healthz against itself (an A/A pair: the same work twice, so any distance
# from 100% is noise).
#
# bench/guard.sh runs each route for DURATION seconds with other loads between them. On a
# virtual machine whose speed changes from one second to the next, two routes measured
# seconds apart differ by more than the guard costs: its own A/A-like pair (a token with a
# rate limit it never reaches against one without) spreads over 88-117% from run to run.
# Here every slice lasts SLICE seconds and the three loads follow each other directly, PAIRS
# times, in an order that turns around each time (healthz, guarded, control; then control,
# guarded, healthz), so a slow second weighs on all three alike. Each ratio is the median of
# the slices' own ratios, with the quartiles beside it.
#
#   bench/g32.sh                          # 20 slices of 1 s per load, pinned, 1 wrk thread, 32 connections
#   PAIRS=30 METRICS=1 bench/g32.sh       # with Prometheus metrics on
#   KEYWARD_LOG=info PAIRS=30 ROUTE=/token bench/g32.sh   # the server's default log level
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin keyward
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"
DURATION="${SLICE:-1}"
PAIRS="${PAIRS:-20}"
source bench/lib.sh
if [ "${METRICS:-0}" = 1 ]; then
    export KEYWARD_METRICS_BIND="127.0.0.1:$((20000 + RANDOM % 40000))"
fi

DB="$WORK/bench.db"
new_token "$DB" "Bench Inc"
start_server "$DB" g32
curl -sf -H "Authorization: $AUTH" "$URL/plans" >/dev/null || { echo "token was refused" >&2; exit 1; }
# The guarded route: by default one release of the catalogue, an answer about as small as
# /healthz's, as guard.sh's G3.2 takes; ROUTE=/plans or ROUTE=/token for another.
if [ -z "${ROUTE:-}" ]; then
    ROUTE="/releases/$(curl -sf -H "Authorization: $AUTH" "$URL/releases" | grep -o '"slug":"[^"]*"' | head -1 | cut -d'"' -f4)"
fi
curl -sf -o /dev/null -H "Authorization: $AUTH" "$URL$ROUTE" || { echo "GET $ROUTE was refused" >&2; exit 1; }
echo "GET $ROUTE answers $(curl -sf -H "Authorization: $AUTH" "$URL$ROUTE" | wc -c) bytes, /healthz $(curl -sf "$URL/healthz" | wc -c)"
machine
echo "$PAIRS slices of ${DURATION} s per load${KEYWARD_METRICS_BIND:+, metrics on $KEYWARD_METRICS_BIND}"

healthz() { run healthz "GET /healthz" "$URL/healthz"; }
control() { run control "GET /healthz (control)" "$URL/healthz"; }
guarded() { run guarded "GET $ROUTE (guarded, valid token)" -H "Authorization: $AUTH" "$URL$ROUTE"; }
for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) = 1 ]; then healthz; guarded; control; else control; guarded; healthz; fi
done >"$WORK/slices.txt"

# quartiles A B: the slices' ratios of B to A, in percent: first quartile, median, third.
quartiles() {
    round_ratios "$1" "$2" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.1f%% (quartiles %.1f%%, %.1f%%; %d slices)", v[int((NR + 1) / 2)], v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)], NR }'
}
echo "RSS after load: $(rss_mib) MiB"
# Each slice's guarded run sits between its two /healthz runs, so it is also compared with
# their mean: a machine that speeds up or slows down during the slice weighs on both sides.
paste "$WORK/healthz.rps" "$WORK/control.rps" >"$WORK/both.rps"
awk '{ print ($1 + $2) / 2 }' "$WORK/both.rps" >"$WORK/around.rps"
echo "A/A control, /healthz / /healthz:            $(quartiles healthz control)"
echo "guard ratio, guarded / its slice's /healthz: $(quartiles healthz guarded)"
echo "guard ratio, guarded / the /healthz around:  $(quartiles around guarded)"
echo "mean throughput: /healthz $(mean healthz), control $(mean control), $ROUTE $(mean guarded) req/s;" \
    "server CPU per request (median): /healthz $(median "$WORK/healthz.cpu" "$WORK/control.cpu"), $ROUTE $(median "$WORK/guarded.cpu") µs"
