#!/usr/bin/env bash
# The guard ratio (guarded /plans over /healthz) measured finely, with a control that shows
# how far this machine lets a ratio be trusted: guarded GET /plans against the same server's GET /healthz, and /healthz against
# itself (an A/A pair: the same work twice, so any distance from 100% is noise).
#
# bench/guard.sh runs each route for DURATION seconds with other loads between them. On a
# virtual machine whose speed changes from one second to the next, two routes measured
# seconds apart differ by more than the guard costs: its own A/A-like pair (a token with a
# rate limit it never reaches against one without) spreads over 88-117% from run to run.
# Here every slice lasts SLICE seconds and the three loads follow each other directly, PAIRS
# times, in an order that turns around each time (healthz, plans, control; then control,
# plans, healthz), so a slow second weighs on all three alike. Each ratio is the median of
# the slices' own ratios, with the quartiles beside it.
#
#   bench/g32.sh                          # 20 slices of 1 s per load, 2 wrk threads, 64 connections
#   PAIRS=30 METRICS=1 bench/g32.sh       # with Prometheus metrics on
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
machine
echo "$PAIRS slices of ${DURATION} s per load${KEYWARD_METRICS_BIND:+, metrics on $KEYWARD_METRICS_BIND}"

healthz() { run healthz "GET /healthz" "$URL/healthz"; }
control() { run control "GET /healthz (control)" "$URL/healthz"; }
plans() { run plans "GET /plans (guarded, valid token)" -H "Authorization: $AUTH" "$URL/plans"; }
for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) = 1 ]; then healthz; plans; control; else control; plans; healthz; fi
done >"$WORK/slices.txt"

# quartiles A B: the slices' ratios of B to A, in percent: first quartile, median, third.
quartiles() {
    round_ratios "$1" "$2" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.1f%% (quartiles %.1f%%, %.1f%%; %d slices)", v[int((NR + 1) / 2)], v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)], NR }'
}
echo "RSS after load: $(rss_mib) MiB"
echo "A/A control, /healthz / /healthz:       $(quartiles healthz control)"
echo "guard ratio, guarded /plans / /healthz:        $(quartiles healthz plans)"
echo "mean throughput: /healthz $(mean healthz), control $(mean control), /plans $(mean plans) req/s;" \
    "server CPU per request (median): /healthz $(median "$WORK/healthz.cpu"), /plans $(median "$WORK/plans.cpu") µs"
