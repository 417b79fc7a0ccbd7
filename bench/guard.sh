#!/usr/bin/env bash
# Measures the API guard: requests per second for the unguarded /healthz against the
# guarded /plans (valid Basic-Auth token), on the same release server, in one run.
# Also prints the idle server's resident memory. Bounded: each load runs DURATION seconds.
#
#   bench/guard.sh            # 10 s per route, 2 wrk threads, 64 connections
#   DURATION=5 CONNECTIONS=32 bench/guard.sh
set -euo pipefail

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "wrk is needed: apt-get update && apt-get install -y wrk" >&2
    exit 1
fi

cargo build --release --quiet
BIN="$PWD/target/release/keyward"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export KEYWARD_DATABASE_URL="$WORK/bench.db"
export KEYWARD_BIND="127.0.0.1:0"
export KEYWARD_SUPPORT_EMAIL="support@keyward.test"
export KEYWARD_LOG="${KEYWARD_LOG:-info}"

SLUG="$("$BIN" account create --name "Bench Inc")"
CREDS="$("$BIN" token create --account "$SLUG" --name bench 2>/dev/null)"
KEY="$(sed -n 's/^key: //p' <<<"$CREDS")"
SECRET="$(sed -n 's/^secret: //p' <<<"$CREDS")"
AUTH="Basic $(printf '%s:%s' "$KEY" "$SECRET" | base64 -w0)"

"$BIN" serve >"$WORK/stdout" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    grep -q 'http://127.0.0.1:' "$WORK/stdout" 2>/dev/null && break
    sleep 0.1
done
URL="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/stdout" | head -1)"
[ -n "$URL" ] || { echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }

curl -sf -H "Authorization: $AUTH" "$URL/plans" >/dev/null || { echo "token was refused" >&2; exit 1; }
sleep 1
echo "idle RSS: $(ps -o rss= -p "$SERVER_PID" | tr -d ' ') KiB"
echo "machine: $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; server log level $KEYWARD_LOG"

# run NAME LABEL WRK-ARGS...: one bounded wrk run, summarised on one line.
run() {
    local name="$1" label="$2"; shift 2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" >"$WORK/$name.txt"
    local rps p99 non2xx
    rps="$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.txt")"
    p99="$(awk '$1 == "99%" {print $2}' "$WORK/$name.txt")"
    non2xx="$(awk '/Non-2xx/ {print $NF}' "$WORK/$name.txt")"
    printf '%-34s %10s req/s   p99 %8s   non-2xx %s\n' "$label" "$rps" "$p99" "${non2xx:-0}"
    echo "$rps" >"$WORK/$name.rps"
}

WRONG="Basic $(printf '%s:%s' "$KEY" "kws_wrong" | base64 -w0)"
run healthz "GET /healthz (unguarded)" "$URL/healthz"
run plans "GET /plans (guarded, valid token)" -H "Authorization: $AUTH" "$URL/plans"
run wrong "GET /plans (wrong secret: 401)" -H "Authorization: $WRONG" "$URL/plans"

echo "RSS after load: $(ps -o rss= -p "$SERVER_PID" | tr -d ' ') KiB"
awk -v a="$(cat "$WORK/healthz.rps")" -v b="$(cat "$WORK/plans.rps")" \
    'BEGIN { printf "guarded / unguarded throughput: %.1f%%\n", 100 * b / a }'
