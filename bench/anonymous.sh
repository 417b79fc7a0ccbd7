#!/usr/bin/env bash
# Anonymous traffic against the dashboard: floods GET /login (no cookies, as wrk sends them)
# and counts the rows it adds to every table, then times a dashboard token revoke while a
# second flood runs and while the server is quiet. Bounded: each flood runs DURATION seconds,
# and REVOKES revokes are timed each way.
#
#   bench/anonymous.sh            # 6 s flood, 2 wrk threads, 64 connections, 5 revokes each way
#   DURATION=10 REVOKES=10 bench/anonymous.sh
set -euo pipefail

DURATION="${DURATION:-6}"
REVOKES="${REVOKES:-5}"
cd "$(dirname "$0")/.."

for tool in sqlite3 curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool is needed: apt-get update && apt-get install -y $tool" >&2
        exit 1
    fi
done

cargo build --release --quiet
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"
source bench/lib.sh
export KEYWARD_DATABASE_URL="$WORK/bench.db"
start_server "$KEYWARD_DATABASE_URL" anonymous

JAR="$WORK/cookies"
# field NAME < page: the value of the form field NAME.
field() { grep -o "name=\"$1\" value=\"[^\"]*\"" | head -1 | sed 's/.*value="//; s/"$//'; }
get() { curl -sf -b "$JAR" -c "$JAR" "$URL$1"; }
post() { local path="$1"; shift; curl -sf -o /dev/null -b "$JAR" -c "$JAR" "$@" "$URL$path"; }

# Sign up, then make the tokens to revoke, through the dashboard as a person would.
CSRF="$(get /signup | field csrf_token)"
post /signup --data-urlencode "csrf_token=$CSRF" --data-urlencode "account_name=Bench Inc" \
    --data-urlencode "email=bench@example.test" \
    --data-urlencode "password=correct horse battery staple" \
    --data-urlencode "password_confirmation=correct horse battery staple"
IDS=()
for i in $(seq 1 $((2 * REVOKES))); do
    FORM="$(get /tokens/new)"
    CREATED="$(curl -sf -b "$JAR" -c "$JAR" "$URL/tokens" \
        --data-urlencode "csrf_token=$(field csrf_token <<<"$FORM")" \
        --data-urlencode "nonce=$(field nonce <<<"$FORM")" \
        --data-urlencode "name=bench $i" --data-urlencode "read=1" \
        --data-urlencode "expires_in_days=")"
    IDS+=("$(grep -o 'href="/tokens/[0-9]*"' <<<"$CREATED" | head -1 | grep -o '[0-9]*')")
done

# revoke ID: the seconds one revoke POST takes, as curl measures it.
revoke() {
    local csrf
    csrf="$(get "/tokens/$1/confirm-revoke" | field csrf_token)"
    curl -sf -o /dev/null -w '%{time_total}\n' -b "$JAR" -c "$JAR" "$URL/tokens/$1/revoke" \
        --data-urlencode "csrf_token=$csrf" --data-urlencode "reason=bench"
}
# summary FILE: median and worst of the times in FILE, in ms.
summary() {
    sort -n "$1" | awk '{ t[NR] = $1 * 1000 } END { printf "median %.1f ms, worst %.1f ms (%d revokes)", t[int((NR + 1) / 2)], t[NR], NR }'
}
# rows: the number of rows in every table, summed, and in sessions.
rows() {
    local total=0 n
    for table in $(sqlite3 "$KEYWARD_DATABASE_URL" "SELECT name FROM sqlite_master WHERE type = 'table'"); do
        n="$(sqlite3 "$KEYWARD_DATABASE_URL" "SELECT count(*) FROM \"$table\"")"
        total=$((total + n))
    done
    echo "$total $(sqlite3 "$KEYWARD_DATABASE_URL" 'SELECT count(*) FROM sessions')"
}

for id in "${IDS[@]:0:$REVOKES}"; do revoke "$id"; done >"$WORK/quiet.txt"

# flood FILE: GET /login for DURATION seconds, in the background; the summary goes to FILE.
flood() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL/login" >"$1" &
    FLOOD_PID=$!
    track "$FLOOD_PID"
}

# First a flood alone, to count what it writes; then another, with revokes timed during it.
read -r TOTAL_BEFORE SESSIONS_BEFORE <<<"$(rows)"
flood "$WORK/flood.txt"
wait "$FLOOD_PID"
FLOOD_PID=""
read -r TOTAL_AFTER SESSIONS_AFTER <<<"$(rows)"

flood "$WORK/flood2.txt"
sleep 1
for id in "${IDS[@]:$REVOKES}"; do revoke "$id"; sleep 0.3; done >"$WORK/flooded.txt"
wait "$FLOOD_PID"
FLOOD_PID=""

echo "machine: $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s GET /login; server log level $KEYWARD_LOG"
echo "GET /login (anonymous):      $(awk '/Requests\/sec/ {print $2}' "$WORK/flood.txt") req/s, $(awk '/requests in/ {print $1}' "$WORK/flood.txt") requests, p99 $(awk '$1 == "99%" {print $2}' "$WORK/flood.txt")"
echo "rows the flood added:        $((TOTAL_AFTER - TOTAL_BEFORE)) in all tables, $((SESSIONS_AFTER - SESSIONS_BEFORE)) in sessions"
echo "dashboard revoke, quiet:     $(summary "$WORK/quiet.txt")"
echo "dashboard revoke, flooded:   $(summary "$WORK/flooded.txt")"
