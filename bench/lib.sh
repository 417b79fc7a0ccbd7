# Shared by the benchmarks (sourced, not run): a release server started on a database,
# its memory, and one bounded wrk run summarised on a line. Every server started here is
# killed on exit. Servers listen on 127.0.0.1 only.

DURATION="${DURATION:-5}"
# Loads are repeated ROUNDS times, alternating, so a machine that gets busier or quieter
# during the run weighs on every route alike; a ratio is the median of the rounds' own.
ROUNDS="${ROUNDS:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
# Pinned by default (PIN=0 to turn it off): the server, with one worker, and nginx, with
# one worker, share SERVER_CPU; wrk, with one thread, runs alone on LOAD_CPU. Unpinned,
# wrk and the server trade cores and one run swings by 15%.
PIN="${PIN:-1}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
if [ "$PIN" = 1 ]; then
    THREADS="${THREADS:-1}"
    export KEYWARD_WORKERS=1
    ON_SERVER_CPU=(taskset -c "$SERVER_CPU")
    ON_LOAD_CPU=(taskset -c "$LOAD_CPU")
    NGINX_WORKERS=1
else
    THREADS="${THREADS:-2}"
    ON_SERVER_CPU=()
    ON_LOAD_CPU=()
    NGINX_WORKERS="$(nproc)"
fi
BIN="${BIN:-$PWD/target/release/keyward}"
BENCH="$PWD/bench"
export KEYWARD_BIND="127.0.0.1:0"
export KEYWARD_SUPPORT_EMAIL="support@keyward.test"
export KEYWARD_LOG="${KEYWARD_LOG:-info}"

if ! command -v wrk >/dev/null; then
    echo "wrk is needed: apt-get update && apt-get install -y wrk" >&2
    exit 1
fi

WORK="$(mktemp -d)"
# Every background process a benchmark starts (servers, floods, wrk): killed on exit.
SERVER_PIDS=()
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# A signal ends the script through `exit`, so the cleanup above runs then too.
trap 'exit 1' INT TERM HUP PIPE

# track PID: kill PID on exit too (a flood or a wrk run in the background).
track() { SERVER_PIDS+=("$1"); }

# start_server DB NAME: starts `keyward serve` on DB and waits (at most 60 s) until it
# listens. Sets SERVER_PID, URL, STARTUP_MS (launch to the listening line) and
# STARTUP_CPU_MS (the CPU time it took, which other work on the machine doesn't inflate).
start_server() {
    local db="$1" name="$2" started
    started="$(date +%s%N)"
    KEYWARD_DATABASE_URL="$db" "${ON_SERVER_CPU[@]}" "${SERVER_BIN:-$BIN}" serve \
        >"$WORK/$name.out" 2>"$WORK/$name.log" &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    for _ in $(seq 1 6000); do
        grep -q 'http://127.0.0.1:' "$WORK/$name.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.01
    done
    STARTUP_MS=$((($(date +%s%N) - started) / 1000000))
    STARTUP_CPU_MS="$(awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' \
        "/proc/$SERVER_PID/stat" 2>/dev/null || echo '?')"
    URL="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/$name.out" | head -1 || true)"
    if [ -z "$URL" ]; then
        echo "server $name did not start" >&2
        cat "$WORK/$name.log" >&2
        exit 1
    fi
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# The machine: cores and how busy it is, since wrk and the server share it.
machine() {
    local pinning="unpinned"
    [ "$PIN" = 1 ] && pinning="pinned: server (1 worker) and nginx (1 worker) on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU"
    echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $pinning; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; server log level $KEYWARD_LOG"
}

# Resident memory now, and its peak so far, in MiB.
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER_PID/status"; }
peak_rss_mib() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER_PID/status"; }

# basic_header KEY SECRET
basic_header() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }

# new_token DB NAME: makes an account and a token on DB with the CLI; sets AUTH.
new_token() {
    local db="$1" name="$2" slug creds
    slug="$(KEYWARD_DATABASE_URL="$db" "$BIN" account create --name "$name")"
    creds="$(KEYWARD_DATABASE_URL="$db" "$BIN" token create --account "$slug" --name bench)"
    AUTH="$(basic_header "$(sed -n 's/^key: //p' <<<"$creds")" "$(sed -n 's/^secret: //p' <<<"$creds")")"
    SLUG="$slug"
}

# The server's CPU time so far, in clock ticks: SERVER_PID's, or the sum over CPU_PIDS
# when set (nginx's master and workers).
cpu_ticks() {
    local pid total=0
    for pid in ${CPU_PIDS:-$SERVER_PID}; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

# start_nginx FILE HTPASSWD: nginx on a free loopback port, serving FILE at /static.json
# behind auth_basic with HTPASSWD, one worker per core, no access log. Sets NGINX_URL and
# NGINX_PIDS (master and workers). Needs nginx: apt-get install -y nginx-light.
start_nginx() {
    local file="$1" htpasswd="$2" dir="$WORK/nginx" port
    if ! command -v nginx >/dev/null; then
        echo "nginx is needed: apt-get update && apt-get install -y nginx-light" >&2
        exit 1
    fi
    mkdir -p "$dir/root"
    cp "$file" "$dir/root/static.json"
    cp "$htpasswd" "$dir/htpasswd"
    # The workers run as nobody; the work directory is root's and private.
    chmod 755 "$WORK" "$dir" "$dir/root"
    chmod 644 "$dir/root/static.json" "$dir/htpasswd"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$port;
        root $dir/root;
        default_type application/json;
        location / {
            auth_basic "keyward";
            auth_basic_user_file $dir/htpasswd;
        }
    }
}
EOF
    "${ON_SERVER_CPU[@]}" nginx -c "$dir/nginx.conf" -p "$dir" -g 'daemon off;' 2>"$dir/stderr" &
    NGINX_PID=$!
    track "$NGINX_PID"
    NGINX_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 500); do
        curl -s -o /dev/null "$NGINX_URL/" && break
        sleep 0.01
    done
    NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
}

# sha_htpasswd USER PASSWORD: an htpasswd line in nginx's {SHA} form.
sha_htpasswd() {
    printf '%s:{SHA}%s\n' "$1" "$(printf '%s' "$2" | openssl dgst -sha1 -binary | base64 -w0)"
}

# run NAME LABEL WRK-ARGS...: one wrk run of DURATION seconds against the server
# SERVER_PID, summarised on one line: throughput, p99 latency, answers other than 2xx, and
# the server's CPU time per request, which a busy machine inflates less than throughput.
# Adds its requests per second to $WORK/NAME.rps and its CPU µs per request to
# $WORK/NAME.cpu, one line a run.
run() {
    local name="$1" label="$2" before
    shift 2
    before="$(cpu_ticks)"
    "${ON_LOAD_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" >"$WORK/$name.wrk"
    local rps p99 non2xx requests us
    rps="$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.wrk")"
    p99="$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")"
    non2xx="$(awk '/Non-2xx/ {print $NF}' "$WORK/$name.wrk")"
    requests="$(awk '/requests in/ {print $1}' "$WORK/$name.wrk")"
    us="$(awk -v t="$(($(cpu_ticks) - before))" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
        'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
    printf '%-44s %10s req/s   p99 %8s   server CPU %5s µs/req   non-2xx %s\n' \
        "$label" "$rps" "$p99" "$us" "${non2xx:-0}"
    echo "$rps" >>"$WORK/$name.rps"
    echo "$us" >>"$WORK/$name.cpu"
}

# mean NAME: the mean requests per second of NAME's runs.
mean() { awk '{ sum += $1 } END { printf "%.0f", sum / NR }' "$WORK/$1.rps"; }

# median FILE...: the median of the numbers in the files, one a line.
median() { sort -g "$@" | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# round_ratios A B: B's throughput as a share of A's in percent, one line per round (or slice).
round_ratios() {
    paste "$WORK/$1.rps" "$WORK/$2.rps" | awk 'NF == 2 && $1 > 0 { printf "%.4f\n", 100 * $2 / $1 }'
}

# ratio LABEL A B: B's throughput as a share of A's: the ratio of the means, then the
# median of the rounds' own ratios (each round runs A and B back to back, so a round that
# the rest of the machine slowed down slows both), then the median server CPU per request
# of each, the cost that other work on the machine distorts least.
ratio() {
    local pairs="$WORK/$2-$3.ratios"
    round_ratios "$2" "$3" >"$pairs"
    awk -v label="$1" -v a="$(mean "$2")" -v b="$(mean "$3")" -v m="$(median "$pairs")" \
        -v ca="$(median "$WORK/$2.cpu")" -v cb="$(median "$WORK/$3.cpu")" -v n="$(wc -l <"$pairs")" \
        'BEGIN { printf "%-44s %.1f%%  (%d vs %d req/s; median of %d rounds %.1f%%; CPU %.1f vs %.1f µs/req)\n", label, 100 * b / a, b, a, n, m, cb, ca }'
}

# unknown_headers N FILE: N Authorization headers of well-formed credentials no database holds.
unknown_headers() {
    "$PWD/target/release/examples/bench_credentials" "$1" >"$2"
}
