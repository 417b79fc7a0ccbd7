#!/usr/bin/env bash
# The guard at scale, in one run. Seeds a database with 1,000,000 tokens
# (bench/seed_million.sql in one transaction, through the seed_million example), then
# measures on a release server started on it:
# - start time, from launch to listening (the server reads every key at start);
# - resident memory after start and after the load;
# - guarded throughput with a valid token, and with a flood of unknown credentials;
# and the same throughput on a server with an almost empty database, for comparison.
# Bounded: each load runs DURATION seconds.
#
#   bench/seed_million.sh                 # 1,000,000 tokens, 10 s per load
#   COUNT=100000 DURATION=5 bench/seed_million.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-1000000}"

cargo build --release --quiet --bin keyward --example seed_million --example bench_credentials
source bench/lib.sh

BIG="$WORK/million.db"
new_token "$BIG" "Scale Inc"
BIG_AUTH="$AUTH"
"$PWD/target/release/examples/seed_million" "$BIG" "$SLUG" "$COUNT"
SMALL="$WORK/small.db"
new_token "$SMALL" "Small Inc"
SMALL_AUTH="$AUTH"
unknown_headers 50000 "$WORK/unknown.headers"
echo "database with $COUNT tokens: $(du -m "$BIG" | cut -f1) MiB"

# measure NAME DB AUTH: starts a server on DB and loads it with AUTH, then with the flood.
measure() {
    local name="$1" db="$2" auth="$3"
    start_server "$db" "$name"
    machine
    echo "$name: listening $STARTUP_MS ms after launch ($STARTUP_CPU_MS ms of CPU); RSS $(rss_mib) MiB"
    curl -sf -H "Authorization: $auth" "$URL/plans" >/dev/null || { echo "token was refused" >&2; exit 1; }
    echo "$auth" >"$WORK/$name.headers"
    export AUTH_FILE="$WORK/$name.headers"
    run "$name-valid" "$name: GET /plans (valid token)" -s "$BENCH/rotate_auth.lua" "$URL/plans"
    export AUTH_FILE="$WORK/unknown.headers"
    run "$name-unknown" "$name: GET /plans (unknown keys: 401)" -s "$BENCH/rotate_auth.lua" "$URL/plans"
    echo "$name: RSS after load $(rss_mib) MiB (peak $(peak_rss_mib) MiB)"
    stop_server
}

measure million "$BIG" "$BIG_AUTH"
measure small "$SMALL" "$SMALL_AUTH"
ratio "valid token, million / small:" small-valid million-valid
ratio "unknown keys, million / small:" small-unknown million-unknown
ratio "million: unknown keys / valid token:" million-valid million-unknown
