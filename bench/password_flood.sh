#!/usr/bin/env bash
# Floods the release server with anonymous sign-ups and sign-ins (each asks for an argon2
# hash, which holds 19 MiB while it runs), and meanwhile measures the guarded GET /plans
# with a valid token. Reports the server's peak resident memory (VmHWM) and /plans' p99.
#
# The flood is examples/password_flood.rs, one process of async clients. Each wave sends
# CLIENTS POSTs at once, half sign-ups and half sign-ins (for existing users with a wrong
# password, and for unknown emails). Every client fetches its form first with a cookie jar,
# for the CSRF token, then posts with it. Every client comes from its own loopback address
# (127.x.y.z), as a distributed attack would, so the per-address sign-up and sign-in limits
# don't stop the flood before argon2 does: this measures the hashing limit itself.
# Bounded: at most WAVES waves, and no more than DURATION seconds.
#
#   bench/password_flood.sh                       # 200 clients a wave, 10 s
#   CLIENTS=100 DURATION=5 bench/password_flood.sh
#   BIN=/path/to/other/keyward bench/password_flood.sh   # the same flood against another build
#   SMAPS=10 bench/password_flood.sh              # also list the 10 largest resident mappings
set -euo pipefail

CLIENTS="${CLIENTS:-200}"
DURATION="${DURATION:-10}"
WAVES="${WAVES:-20}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-8}"
cd "$(dirname "$0")/.."

for tool in wrk curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool is needed: apt-get update && apt-get install -y $tool" >&2
        exit 1
    fi
done
if [ "$CLIENTS" -gt 1000 ] || [ "$WAVES" -gt 50 ] || [ "$DURATION" -gt 60 ] || [ "$DURATION" -lt 2 ]; then
    echo "keep CLIENTS <= 1000, WAVES <= 50 and DURATION between 2 and 60" >&2
    exit 1
fi

cargo build --release --quiet --example password_flood
FLOOD="$PWD/target/release/examples/password_flood"
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN="$PWD/target/release/keyward"
fi
WORK="$(mktemp -d)"
SERVER_PID=""
WRK_PID=""
cleanup() {
    [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export KEYWARD_DATABASE_URL="$WORK/bench.db"
export KEYWARD_BIND="127.0.0.1:0"
export KEYWARD_SUPPORT_EMAIL="support@keyward.test"
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"

SLUG="$("$BIN" account create --name "Bench Inc")"
CREDS="$("$BIN" token create --account "$SLUG" --name bench 2>/dev/null)"
KEY="$(sed -n 's/^key: //p' <<<"$CREDS")"
SECRET="$(sed -n 's/^secret: //p' <<<"$CREDS")"
AUTH="Basic $(printf '%s:%s' "$KEY" "$SECRET" | base64 -w0)"
# Existing users for the sign-ins to guess at (operators, made with the command line).
SEEDED=10
for i in $(seq 1 "$SEEDED"); do
    printf 'bench password 0123456789\n' | "$BIN" operator create --email "user$i@bench.test" >/dev/null
done

"$BIN" serve >"$WORK/stdout" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    grep -q 'http://127.0.0.1:' "$WORK/stdout" 2>/dev/null && break
    sleep 0.1
done
URL="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/stdout" | head -1)"
[ -n "$URL" ] || { echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
curl -sf -H "Authorization: $AUTH" "$URL/plans" >/dev/null || { echo "token was refused" >&2; exit 1; }

memory() { awk -v f="$1" '$1 == f":" {print $2}' "/proc/$SERVER_PID/status"; }
sleep 0.5
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $CLIENTS clients a wave, at most $WAVES waves in ${DURATION}s; wrk -t1 -c$WRK_CONNECTIONS"
echo "before the flood: VmRSS $(memory VmRSS) KiB, VmHWM $(memory VmHWM) KiB"

# latency FILE: /plans' throughput and percentiles from a wrk report.
latency() {
    awk '/Requests\/sec/ {print "   " $0} /Non-2xx/ {print "   " $0}' "$1"
    awk '$1 ~ /^(50|90|99)%$/ {print "   p" substr($1, 1, length($1) - 1) " " $2}' "$1"
}

wrk -t1 -c"$WRK_CONNECTIONS" -d3s --latency -H "Authorization: $AUTH" "$URL/plans" >"$WORK/quiet.txt"
echo "guarded GET /plans, no flood (3 s):"
latency "$WORK/quiet.txt"

wrk -t1 -c"$WRK_CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: $AUTH" "$URL/plans" \
    >"$WORK/wrk.txt" &
WRK_PID=$!
"$FLOOD" "$URL" "$CLIENTS" "$((DURATION - 1))" "$WAVES" "$SEEDED"
wait "$WRK_PID"
WRK_PID=""

echo "guarded GET /plans during the flood (${DURATION} s):"
latency "$WORK/wrk.txt"
sleep 1
HWM="$(memory VmHWM)"
if [ -n "${SMAPS:-}" ]; then
    echo "largest resident mappings (KiB):"
    awk '/^[0-9a-f]+-[0-9a-f]+ / {m=$1" "$6} /^Rss:/ {print "   " $2, m}' "/proc/$SERVER_PID/smaps" \
        | sort -rn | head -"$SMAPS"
fi
echo "after the flood: VmRSS $(memory VmRSS) KiB (anonymous $(memory RssAnon) KiB), $(memory Threads) threads"
echo "peak resident memory: VmHWM $HWM KiB ($((HWM / 1024)) MiB)"
