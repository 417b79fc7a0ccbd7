#!/usr/bin/env bash
# What the Keyward-Token-Expires header costs the guard: GET /plans with a token that never
# expires (no header) against one that expires in 30 days (the header on every answer), on
# one release server, in alternating rounds so a machine that changes weighs on both alike.
# Bounded: each load runs DURATION seconds, ROUNDS times.
#
#   bench/expiry_header.sh               # 2 rounds of 10 s per load
#   ROUNDS=3 DURATION=5 bench/expiry_header.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin keyward
source bench/lib.sh

DB="$WORK/bench.db"
new_token "$DB" "Bench Inc"
FOREVER="$AUTH"
creds="$(KEYWARD_DATABASE_URL="$DB" "$BIN" token create --account "$SLUG" --name expiring --expires-in-days 30)"
EXPIRING="$(basic_header "$(sed -n 's/^key: //p' <<<"$creds")" "$(sed -n 's/^secret: //p' <<<"$creds")")"

start_server "$DB" expiry
curl -sf -H "Authorization: $FOREVER" "$URL/plans" >/dev/null || { echo "token was refused" >&2; exit 1; }
header="$(curl -sf -D - -o /dev/null -H "Authorization: $EXPIRING" "$URL/plans" | grep -i '^keyward-token-expires:' || true)"
[ -n "$header" ] || { echo "the expiring token got no Keyward-Token-Expires header" >&2; exit 1; }
echo "expiring token answers with: $header"
machine

for _ in $(seq 1 "$ROUNDS"); do
    run forever "GET /plans (token without expiry)" -H "Authorization: $FOREVER" "$URL/plans"
    run expiring "GET /plans (expiring token: header)" -H "Authorization: $EXPIRING" "$URL/plans"
done

ratio "expiring / never-expiring throughput:" forever expiring
