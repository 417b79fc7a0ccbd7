#!/usr/bin/env bash
# The guard at scale, in one run. Seeds a database with 1,000,000 tokens
# (bench/seed_million.sql in one transaction, through the seed_million example), then
# measures on a release server started on it:
# - start time, from launch to listening (the server reads every key at start);
# - resident memory after start and after the load;
# - guarded throughput with a valid token, and with a flood of unknown credentials;
# and the same throughput on a server with an almost empty database, for comparison.
# Bounded: each load runs DURATION seconds, and the loads are repeated ROUNDS times,
# alternating between the two servers.
#
#   bench/seed_million.sh                 # 1,000,000 tokens, 2 rounds of 10 s per load
#   COUNT=100000 ROUNDS=1 DURATION=5 bench/seed_million.sh
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

# serve NAME DB AUTH: starts a server on DB, reports its start, checks AUTH works.
serve() {
    local name="$1" db="$2" auth="$3"
    start_server "$db" "$name"
    echo "$name: listening $STARTUP_MS ms after launch ($STARTUP_CPU_MS ms of CPU); RSS $(rss_mib) MiB"
    curl -sf -H "Authorization: $auth" "$URL/plans" >/dev/null || { echo "token was refused" >&2; exit 1; }
    # Its own header, then the unknown ones, held but not sent (see rotate_auth.lua).
    cat <(echo "$auth") "$WORK/unknown.headers" >"$WORK/$name.headers"
}

serve million "$BIG" "$BIG_AUTH"
MILLION_PID="$SERVER_PID" MILLION_URL="$URL"
serve small "$SMALL" "$SMALL_AUTH"
SMALL_PID="$SERVER_PID" SMALL_URL="$URL"
machine

# Both servers run side by side, idle but for the load of the moment, which alternates.
for _ in $(seq 1 "$ROUNDS"); do
    for name in small million; do
        url="$SMALL_URL" SERVER_PID="$SMALL_PID"
        [ "$name" = million ] && url="$MILLION_URL" SERVER_PID="$MILLION_PID"
        AUTH_FILE="$WORK/$name.headers" AUTH_SENT=1 \
            run "$name-valid" "$name: GET /plans (valid token)" -s "$BENCH/rotate_auth.lua" "$url/plans"
        AUTH_FILE="$WORK/unknown.headers" \
            run "$name-unknown" "$name: GET /plans (unknown keys: 401)" -s "$BENCH/rotate_auth.lua" "$url/plans"
    done
done
SERVER_PID="$MILLION_PID"
echo "million: RSS after load $(rss_mib) MiB (peak $(peak_rss_mib) MiB)"
SERVER_PID="$SMALL_PID"
echo "small: RSS after load $(rss_mib) MiB (peak $(peak_rss_mib) MiB)"
ratio "valid token, million / small:" small-valid million-valid
ratio "unknown keys, million / small:" small-unknown million-unknown
ratio "million: unknown keys / valid token:" million-valid million-unknown
ratio "small: unknown keys / valid token:" small-valid small-unknown
