#!/usr/bin/env bash
# Measures the API guard in one run, on one release server and a temporary database, pinned
# as bench/README.md says (the server and nginx on CPU 0 with one worker each, wrk on CPU 1
# with one thread; PIN=0 turns that off):
# - an A/A control: /healthz against itself, the noise floor every other ratio is read against;
# - the unguarded /healthz (29 bytes) against a guarded answer as small, one release of the
#   catalogue (about 250 bytes, from memory), with a valid token: the guard's own cost, G3.2;
# - the unguarded /healthz against the guarded /plans (Bonsai's whole catalogue, 14 KB),
#   where sending the larger body weighs too;
# - /healthz against the guarded GET /token (about 250 bytes, a static path like /healthz's, its
#   body built per call), and against GET /verify (the guard alone, 204);
# - a flood of unknown credentials (random keys with checksum-valid secrets, a different
#   one each request) against the valid token, both sent through the same wrk script, so
#   the client does the same work; the target is at least 90% of the valid throughput;
# - the guarded GET /clusters/ (the first page of an account with 200 tokens and 50
#   clusters, from SQLite) against nginx's auth_basic ({SHA} htpasswd) serving the same
#   bytes as a static file, with the same credentials;
# - the idle server's resident memory, and after the load;
# - forward auth: GET /verify (204) with the same valid token, against guarded /plans;
# - a token with a rate limit it never reaches against the unlimited one.
# Each ratio is the median of the rounds' own ratios, with the server's CPU µs per request.
# The loads run in an order that turns around every round.
# Bounded: each load runs DURATION seconds, and the loads are repeated ROUNDS times.
#
#   bench/guard.sh            # 5 rounds of 5 s per load, 1 wrk thread, 32 connections
#   ROUNDS=7 DURATION=3 bench/guard.sh
#   ONLY=clusters bench/guard.sh   # just /clusters/ against nginx
#   METRICS=1 bench/guard.sh   # with Prometheus metrics on (KEYWARD_METRICS_BIND), scraped at the end
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin keyward --example bench_credentials
source bench/lib.sh

# METRICS=1 serves Prometheus metrics on a loopback port of their own, so every request
# also passes the latency timer and the guard's outcome counter.
if [ "${METRICS:-0}" = 1 ]; then
    export KEYWARD_METRICS_BIND="127.0.0.1:$((20000 + RANDOM % 40000))"
fi
metrics_report() {
    [ "${METRICS:-0}" = 1 ] || return 0
    local page
    page="$(curl -sf "http://$KEYWARD_METRICS_BIND/metrics")" \
        || { echo "metrics were not served on $KEYWARD_METRICS_BIND" >&2; exit 1; }
    echo "metrics on $KEYWARD_METRICS_BIND: $(grep -c '^keyward_' <<<"$page") series;" \
        "$(grep '^keyward_guard_outcomes_total{reason="ok"}' <<<"$page")"
}

DB="$WORK/bench.db"
new_token "$DB" "Bench Inc"
WRONG="$(basic_header "$(base64 -d <<<"${AUTH#Basic }" | cut -d: -f1)" "kws_wrong")"
unknown_headers 50000 "$WORK/unknown.headers"
# The valid run holds the unknown headers too and sends only its own (see rotate_auth.lua).
cat <(echo "$AUTH") "$WORK/unknown.headers" >"$WORK/valid.headers"

# Forward auth: a proxy's GET /verify with the valid token, answered 204 with the
# account, key and scopes; the same guard path as /plans, so the same throughput.
bench_verify() {
    run verify "GET /verify (forward auth, valid token: 204)" -H "Authorization: $AUTH" "$URL/verify"
}
# The account /clusters/ reads: 200 tokens in all, 50 clusters.
for i in $(seq 2 200); do
    KEYWARD_DATABASE_URL="$DB" "$BIN" token create --account "$SLUG" --name "bench-$i" >/dev/null 2>&1
done

# --- Rate limits ---------------------------------------------------------------------------
# The limiter's cost: GET /plans with a token limited to 100,000,000 requests a minute,
# which no run reaches, against the same call with the unlimited token. Kept in these
# three functions so other sections can grow beside it. LIMITED=0 skips it (for a build
# that has no rate limits).
LIMITED="${LIMITED:-1}"
limited_setup() {
    [ "$LIMITED" = 1 ] || return 0
    local creds
    creds="$(KEYWARD_DATABASE_URL="$DB" "$BIN" token create --account "$SLUG" --name limited \
        --rate-limit 100000000)"
    LIMITED_AUTH="$(basic_header "$(sed -n 's/^key: //p' <<<"$creds")" "$(sed -n 's/^secret: //p' <<<"$creds")")"
}
limited_check() {
    [ "$LIMITED" = 1 ] || return 0
    curl -sf -H "Authorization: $LIMITED_AUTH" "$URL/token" | grep -q '"requests_per_minute":100000000' \
        || { echo "the limited token was refused or shows no limit" >&2; exit 1; }
}
limited_round() {
    [ "$LIMITED" = 1 ] || return 0
    run limited "GET /plans (limited token, limit not reached)" -H "Authorization: $LIMITED_AUTH" "$URL/plans"
}
limited_report() {
    [ "$LIMITED" = 1 ] || return 0
    ratio "limited / unlimited token throughput:" plans limited
}
limited_setup

start_server "$DB" guard
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $AUTH" "$URL/verify")"
[ "$status" = 204 ] || { echo "/verify answered $status, not 204" >&2; exit 1; }
curl -sf -H "Authorization: $AUTH" "$URL/plans" >/dev/null || { echo "token was refused" >&2; exit 1; }
# A guarded answer about as small as /healthz's: one release, by its slug.
RELEASE="$(curl -sf -H "Authorization: $AUTH" "$URL/releases" | grep -o '"slug":"[^"]*"' | head -1 | cut -d'"' -f4)"
[ -n "$RELEASE" ] || { echo "no release to ask for" >&2; exit 1; }
echo "GET /releases/$RELEASE answers $(curl -sf -H "Authorization: $AUTH" "$URL/releases/$RELEASE" | wc -c) bytes, /healthz $(curl -sf "$URL/healthz" | wc -c)"
for i in $(seq 1 50); do
    curl -sf -o /dev/null -H "Authorization: $AUTH" -H 'Content-Type: application/json' \
        -d "{\"name\": \"Bench cluster $i\"}" "$URL/clusters" || { echo "cluster $i was refused" >&2; exit 1; }
done
# nginx serves the very bytes /clusters/ answers, behind the same key and secret.
curl -sf -H "Authorization: $AUTH" "$URL/clusters/" >"$WORK/clusters.json"
CREDENTIALS="$(base64 -d <<<"${AUTH#Basic }")"
sha_htpasswd "${CREDENTIALS%%:*}" "${CREDENTIALS#*:}" >"$WORK/htpasswd"
start_nginx "$WORK/clusters.json" "$WORK/htpasswd"
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $AUTH" "$NGINX_URL/static.json")"
[ "$status" = 200 ] || { echo "nginx answered $status to the token" >&2; exit 1; }
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $WRONG" "$NGINX_URL/static.json")"
[ "$status" = 401 ] || { echo "nginx answered $status to a wrong secret" >&2; exit 1; }
echo "GET /clusters/ answers $(wc -c <"$WORK/clusters.json") bytes ($(grep -o '"slug":"bench' "$WORK/clusters.json" | wc -l) clusters)"
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $(head -1 "$WORK/unknown.headers")" "$URL/plans")"
[ "$status" = 401 ] || { echo "an unknown key got $status, not 401" >&2; exit 1; }
limited_check
sleep 1
echo "idle RSS: $(rss_mib) MiB"
machine

# clusters_against_nginx: one round of the guarded /clusters/ and nginx's auth_basic.
clusters_against_nginx() {
    run clusters "GET /clusters/ (guarded, 50 clusters)" -H "Authorization: $AUTH" "$URL/clusters/"
    CPU_PIDS="$NGINX_PIDS" run nginx "nginx auth_basic, same bytes (static)" \
        -H "Authorization: $AUTH" "$NGINX_URL/static.json"
}

if [ "${ONLY:-}" = clusters ]; then
    for _ in $(seq 1 "$ROUNDS"); do clusters_against_nginx; done
    echo "RSS after load: $(rss_mib) MiB (peak $(peak_rss_mib) MiB)"
    ratio "guarded /clusters/ / nginx auth_basic:" nginx clusters
    exit 0
fi

run wrong "GET /plans (wrong secret: 401)" -H "Authorization: $WRONG" "$URL/plans"
# load NAME: one run of one load.
load() {
    case "$1" in
        clusters) clusters_against_nginx ;;
        healthz) run healthz "GET /healthz (unguarded)" "$URL/healthz" ;;
        small) run small "GET /releases/{slug} (guarded, small)" -H "Authorization: $AUTH" "$URL/releases/$RELEASE" ;;
        token) run token "GET /token (guarded, small, static path)" -H "Authorization: $AUTH" "$URL/token" ;;
        plans) run plans "GET /plans (guarded, valid token)" -H "Authorization: $AUTH" "$URL/plans" ;;
        control) run control "GET /healthz (A/A control)" "$URL/healthz" ;;
        verify) bench_verify ;;
        limited) limited_round ;;
        valid) AUTH_FILE="$WORK/valid.headers" AUTH_SENT=1 \
            run valid "GET /plans (valid token, via script)" -s "$BENCH/rotate_auth.lua" "$URL/plans" ;;
        unknown) AUTH_FILE="$WORK/unknown.headers" \
            run unknown "GET /plans (50,000 unknown keys: 401)" -s "$BENCH/rotate_auth.lua" "$URL/plans" ;;
    esac
}
# Each ratio's two loads run side by side, and the order turns around every round: a load
# that runs later in a round (after the floods, say) is not always the same one.
ORDER="clusters healthz small token control verify plans limited valid unknown"
for i in $(seq 1 "$ROUNDS"); do
    order="$ORDER"
    [ $((i % 2)) = 1 ] || order="$(tr ' ' '\n' <<<"$ORDER" | tac | tr '\n' ' ')"
    for name in $order; do load "$name"; done
done

echo "RSS after load: $(rss_mib) MiB (peak $(peak_rss_mib) MiB)"
ratio "A/A control, /healthz / /healthz:" healthz control
ratio "G3.2, guarded small answer / unguarded:" healthz small
ratio "guarded /plans (14 KB) / unguarded:" healthz plans
ratio "guarded /token / unguarded:" healthz token
ratio "/verify / unguarded:" healthz verify
ratio "unknown keys / valid token throughput:" valid unknown
ratio "/verify / guarded /plans throughput:" plans verify
ratio "guarded /clusters/ / nginx auth_basic:" nginx clusters
limited_report
metrics_report
