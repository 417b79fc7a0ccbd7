#!/usr/bin/env bash
# How long a revocation through one instance takes to be refused by another (the bound
# is 1 s). Two release servers, A and B, on one store. For each of COUNT
# tokens (made with the command line): B is called until it lets the token in (so it is
# warm in B's cache), the token revokes itself through A's API (DELETE /token), and from
# the moment A answers, B is called in a loop until it answers 401. The lag is that
# moment to B's 401, so it includes one curl round trip (a few ms): an upper bound. Each
# revocation starts at a random point of B's poll interval.
# Prints min, median, p90, p99 and max in ms. Bounded: COUNT revocations, each polled at
# most 5 s.
#
#   bench/propagation.sh                      # SQLite, 100 revocations
#   COUNT=20 bench/propagation.sh
#   DATABASE=postgres://postgres@127.0.0.1:5432/bench bench/propagation.sh   # an empty database
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin keyward
source bench/lib.sh

COUNT="${COUNT:-100}"
DB="${DATABASE:-$WORK/bench.db}"

# Migrated once by the first start; the second finds nothing to do.
start_server "$DB" a
A="$URL"
start_server "$DB" b
B="$URL"
STORE=SQLite
[ -z "${DATABASE:-}" ] || STORE=PostgreSQL
echo "$(machine | cut -d';' -f1); store: $STORE; $COUNT revocations"

slug="$(KEYWARD_DATABASE_URL="$DB" "$BIN" account create --name "Propagation Bench")"
declare -a CREDS=()
for i in $(seq 1 "$COUNT"); do
    out="$(KEYWARD_DATABASE_URL="$DB" "$BIN" token create --account "$slug" --name "lag-$i" 2>/dev/null)"
    CREDS+=("$(sed -n 's/^key: //p' <<<"$out"):$(sed -n 's/^secret: //p' <<<"$out")")
done

status() { curl -s -o /dev/null -w '%{http_code}' -u "$2" "$1/token"; }
now_ns() { date +%s%N; }

: >"$WORK/lags"
for creds in "${CREDS[@]}"; do
    # B learns of a new key at its next poll; wait until it lets the token in.
    for _ in $(seq 1 500); do
        [ "$(status "$B" "$creds")" = 200 ] && break
        sleep 0.01
    done
    [ "$(status "$B" "$creds")" = 200 ] || { echo "B never let a new token in" >&2; exit 1; }

    # B has just polled (it learned the key); revoking at once would always land just
    # after a poll, so start at a random point of B's 250 ms interval, as real changes do.
    sleep "0.$(printf '%03d' $((RANDOM % 300)))"
    code="$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -u "$creds" "$A/token")"
    revoked="$(now_ns)"
    [ "$code" = 200 ] || [ "$code" = 204 ] || { echo "DELETE /token on A answered $code" >&2; exit 1; }
    refused=""
    while [ $(($(now_ns) - revoked)) -lt 5000000000 ]; do
        if [ "$(status "$B" "$creds")" = 401 ]; then
            refused="$(now_ns)"
            break
        fi
    done
    [ -n "$refused" ] || { echo "B still let a revoked token in after 5 s" >&2; exit 1; }
    echo $(((refused - revoked) / 1000)) >>"$WORK/lags"
done

sort -n "$WORK/lags" | awk '
    { v[NR] = $1 / 1000 }
    function pct(p,   i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] }
    END {
        printf "revocation lag, A answered -> B refuses (ms, n=%d): min %.1f  median %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
            NR, v[1], pct(0.5), pct(0.9), pct(0.99), v[NR]
        over = 0; for (i = 1; i <= NR; i++) if (v[i] > 1000) over++
        printf "over 1 s: %d\n", over
    }'
