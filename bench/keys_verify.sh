#!/usr/bin/env bash
# Is POST /keys/verify answered from memory, as fast as the guard? One pinned server (one
# worker), one account with a verifier token (scope verify) and a key to ask about. Each
# round runs, in an order that turns around every round: guarded GET /plans (14 KB, the
# whole catalogue), guarded GET /plans/{slug} (one plan, 0.6 KB), POST /keys/verify of a
# cached key (VALID), and GET /plans again (the A/A control). The bar: verification at
# least 0.9x the throughput of guarded GET /plans; the small plan is the stricter twin.
#
#   bench/keys_verify.sh
#   ROUNDS=7 DURATION=3 bench/keys_verify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"
source bench/lib.sh

db="$WORK/verify.db"
slug="$(KEYWARD_DATABASE_URL="$db" "$BIN" account create --name "Bench Verify")"
token() { KEYWARD_DATABASE_URL="$db" "$BIN" token create --account "$slug" --name "$1" --scopes "$2"; }
verifier="$(token verifier verify,read)"
asked="$(token customer read)"
field() { sed -n "s/^$1: //p" <<<"$2"; }
AUTH="$(basic_header "$(field key "$verifier")" "$(field secret "$verifier")")"
export VERIFY_BODY="{\"key\":\"$(field key "$asked")\",\"secret\":\"$(field secret "$asked")\"}"
start_server "$db" verify
answer="$(curl -sf -H "Authorization: $AUTH" -H 'Content-Type: application/json' -d "$VERIFY_BODY" "$URL/keys/verify")"
grep -q '"code":"VALID"' <<<"$answer" || { echo "the key did not verify: $answer" >&2; exit 1; }
machine

load() {
    case "$1" in
        plans*) run "$1" "guarded GET /plans" -H "Authorization: $AUTH" "$URL/plans" ;;
        one_plan) run one_plan "guarded GET /plans/{slug}" -H "Authorization: $AUTH" "$URL/plans/sandbox-aws-us-east-1" ;;
        verify) run verify "POST /keys/verify (VALID)" -s bench/verify_post.lua -H "Authorization: $AUTH" "$URL/keys/verify" ;;
    esac
}
for i in $(seq 1 "$ROUNDS"); do
    if [ $((i % 2)) = 1 ]; then order="plans one_plan verify plans_control"; else order="plans_control verify one_plan plans"; fi
    for name in $order; do load "$name"; done
done >"$WORK/rounds.txt"
cat "$WORK/rounds.txt"

echo
ratio "A/A control, /plans again / /plans:" plans plans_control
ratio "/keys/verify / guarded /plans:" plans verify
ratio "/keys/verify / guarded /plans/{slug}:" one_plan verify
