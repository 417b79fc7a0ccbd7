#!/usr/bin/env bash
# Two builds of the server in one pinned run: does the code that differs between them pay?
# Both servers run at once on CPU 0 (one worker each, each on a database of its own) and
# take turns under wrk on CPU 1. Each round runs guarded GET /plans on A, on B, and on A
# again (the A/A control), in an order that turns around every round, and the same for
# GET /healthz. A piece of speed machinery stays only if B/A (A with it, B without)
# moves the /plans ratio or its server CPU per request by 3% or more, beyond the control.
#
#   BASE=/tmp/keyward-tuned NEW=target/release/keyward bench/compare.sh
#   ROUNDS=7 DURATION=3 BASE=... NEW=... bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BASE:?BASE=path to build A (with the machinery)}" "${NEW:?NEW=path to build B (without)}"
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"
source bench/lib.sh

# serve NAME BINARY: a server of BINARY on a database of its own, with one token; sets
# NAME_URL, NAME_PID and NAME_AUTH.
serve() {
    local name="$1" bin="$2"
    BIN="$bin" new_token "$WORK/$name.db" "Bench $name"
    SERVER_BIN="$bin" start_server "$WORK/$name.db" "$name"
    curl -sf -H "Authorization: $AUTH" "$URL/plans" >/dev/null || { echo "$name refused its token" >&2; exit 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/plans")" = 401 ] || { echo "$name serves /plans unguarded" >&2; exit 1; }
    printf -v "${name}_URL" '%s' "$URL"
    printf -v "${name}_PID" '%s' "$SERVER_PID"
    printf -v "${name}_AUTH" '%s' "$AUTH"
}
serve a "$BASE"
serve b "$NEW"
machine
echo "A: $BASE"
echo "B: $NEW"

# load NAME SERVER: one run of NAME's route against SERVER (a or b), its CPU counted.
load() {
    local name="$1" server="$2" url pid auth
    url="${server}_URL"; pid="${server}_PID"; auth="${server}_AUTH"
    case "$name" in
        plans*) SERVER_PID="${!pid}" run "$name" "GET /plans on $server" -H "Authorization: ${!auth}" "${!url}/plans" ;;
        healthz*) SERVER_PID="${!pid}" run "$name" "GET /healthz on $server" "${!url}/healthz" ;;
    esac
}
for i in $(seq 1 "$ROUNDS"); do
    if [ $((i % 2)) = 1 ]; then order="a b c"; else order="c b a"; fi
    for route in plans healthz; do
        for who in $order; do
            case "$who" in
                a) load "${route}_a" a ;;
                b) load "${route}_b" b ;;
                c) load "${route}_control" a ;;
            esac
        done
    done
done >"$WORK/rounds.txt"
cat "$WORK/rounds.txt"

echo
ratio "A/A control, /plans on A again / A:" plans_a plans_control
ratio "B / A, guarded /plans:" plans_a plans_b
ratio "A/A control, /healthz on A again / A:" healthz_a healthz_control
ratio "B / A, /healthz:" healthz_a healthz_b
ratio "guard ratio of A, /plans / /healthz:" healthz_a plans_a
ratio "guard ratio of B, /plans / /healthz:" healthz_b plans_b
