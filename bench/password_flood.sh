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

if ! command -v curl >/dev/null; then
    echo "curl is needed: apt-get update && apt-get install -y curl" >&2
    exit 1
fi
if [ "$CLIENTS" -gt 1000 ] || [ "$WAVES" -gt 50 ] || [ "$DURATION" -gt 60 ] || [ "$DURATION" -lt 2 ]; then
    echo "keep CLIENTS <= 1000, WAVES <= 50 and DURATION between 2 and 60" >&2
    exit 1
fi

cargo build --release --quiet --example password_flood
FLOOD="$PWD/target/release/examples/password_flood"
[ -n "${BIN:-}" ] || cargo build --release --quiet
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"
source bench/lib.sh
export KEYWARD_DATABASE_URL="$WORK/bench.db"

new_token "$KEYWARD_DATABASE_URL" "Bench Inc"
# Existing users for the sign-ins to guess at (operators, made with the command line).
SEEDED=10
for i in $(seq 1 "$SEEDED"); do
    printf 'bench password 0123456789\n' | "$BIN" operator create --email "user$i@bench.test" >/dev/null
done

start_server "$KEYWARD_DATABASE_URL" flood
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
track "$WRK_PID"
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
