#!/usr/bin/env bash
# What counting failed sign-ins in the database costs a sign-in: COUNT failed sign-ins
# (an existing user, a wrong password), one at a time, each from its own loopback address
# (127.0.1.x) so no limit refuses them, timed by curl from the POST to its answer. Run
# against this build and, when BEFORE names one, an older build that counted in memory;
# the rounds alternate. Each answer costs one argon2 check either way.
#
#   bench/sign_in_cost.sh                                          # this build alone
#   BEFORE=/work/main/target/release/keyward bench/sign_in_cost.sh  # against another build
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-50}"
ROUNDS="${ROUNDS:-2}"
[ "$COUNT" -le 250 ] || { echo "keep COUNT <= 250 (one loopback address each)" >&2; exit 1; }
cargo build --release --quiet --bin keyward
export KEYWARD_LOG="${KEYWARD_LOG:-warn}"
source bench/lib.sh
AFTER="$BIN"

csrf_of() { grep -o 'name="csrf_token" value="[^"]*"' "$1" | head -1 | sed 's/.*value="//; s/"$//'; }

# post_form URL PATH JAR SOURCE FIELDS...: GET the page for its CSRF token, then POST; prints
# the POST's status and time in ms.
post_form() {
    local url="$1" path="$2" jar="$3" source="$4"; shift 4
    local page="$WORK/page.html" csrf args=()
    curl -s --interface "$source" -c "$jar" -b "$jar" -o "$page" "$url$path"
    csrf="$(csrf_of "$page")"
    for field in "$@"; do args+=(--data-urlencode "$field"); done
    curl -s --interface "$source" -c "$jar" -b "$jar" -o /dev/null \
        -w '%{http_code} %{time_total}\n' --data-urlencode "csrf_token=$csrf" "${args[@]}" "$url$path" \
        | awk '{printf "%s %.2f\n", $1, $2 * 1000}'
}

measure() {
    local bin="$1" name="$2" db="$WORK/$2-$RANDOM.db"
    BIN="$bin" start_server "$db" "$name"
    local email="victim-$RANDOM@example.test"
    post_form "$URL" /signup "$WORK/jar-signup" 127.0.0.1 "account_name=Cost Co" "email=$email" \
        "password=correct horse battery staple" "password_confirmation=correct horse battery staple" >/dev/null
    : >"$WORK/$name.times"
    for i in $(seq 1 "$COUNT"); do
        rm -f "$WORK/jar"
        read -r code ms < <(post_form "$URL" /login "$WORK/jar" "127.0.1.$i" "email=$email" "password=wrong password $i")
        [ "$code" = 401 ] || { echo "$name: failed sign-in $i answered $code" >&2; exit 1; }
        echo "$ms" >>"$WORK/$name.times"
    done
    stop_server
    sort -n "$WORK/$name.times" | awk -v name="$name" '
        { v[NR] = $1; s += $1 }
        END { printf "%-7s %d failed sign-ins: median %.1f ms, mean %.1f ms, p90 %.1f ms, min %.1f ms\n",
              name, NR, v[int(NR / 2) + 1], s / NR, v[int(NR * 0.9)], v[1] }'
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    [ -z "${BEFORE:-}" ] || measure "$BEFORE" before
    measure "$AFTER" after
done
