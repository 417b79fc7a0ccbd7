#!/usr/bin/env bash
# What the guard itself costs on /plans: the same route served with the guard (this build)
# and without it (a build with bench/unguarded_plans.patch applied), side by side on one
# database, each against its own /healthz. Every round runs the four loads back to back.
#
#   git apply bench/unguarded_plans.patch && cargo build --release --bin keyward \
#     && cp target/release/keyward /tmp/keyward-unguarded; git apply -R bench/unguarded_plans.patch
#   OPEN_BIN=/tmp/keyward-unguarded ROUNDS=4 DURATION=3 bench/guard_split.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OPEN_BIN="${OPEN_BIN:?set OPEN_BIN to a build with bench/unguarded_plans.patch applied}"
cargo build --release --quiet --bin keyward --example bench_credentials
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"
source bench/lib.sh

DB="$WORK/bench.db"
new_token "$DB" "Bench Inc"
start_server "$DB" guarded
GUARDED_PID=$SERVER_PID GUARDED_URL=$URL
BIN="$OPEN_BIN" start_server "$DB" open
OPEN_PID=$SERVER_PID OPEN_URL=$URL
machine
for _ in $(seq 1 "$ROUNDS"); do
    SERVER_PID=$GUARDED_PID run healthz "GET /healthz (this build)" "$GUARDED_URL/healthz"
    SERVER_PID=$GUARDED_PID run plans "GET /plans (guarded)" -H "Authorization: $AUTH" "$GUARDED_URL/plans"
    SERVER_PID=$OPEN_PID run open_healthz "GET /healthz (unguarded build)" "$OPEN_URL/healthz"
    SERVER_PID=$OPEN_PID run open_plans "GET /plans (unguarded)" -H "Authorization: $AUTH" "$OPEN_URL/plans"
done
ratio "guarded /plans / /healthz:" healthz plans
ratio "unguarded /plans / /healthz:" open_healthz open_plans
ratio "guarded / unguarded /plans:" open_plans plans
