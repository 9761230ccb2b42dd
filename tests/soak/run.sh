#!/usr/bin/env bash
# jwtgate soak run (not in CI): builds the gateway, the fake auth service and
# loadkit, starts them on 127.0.0.1 with a tiny upstream, and sends a steady
# mix for --minutes: cached tokens, never-seen tokens (one call home each),
# garbage and forged tokens, anonymous calls, an auth: none route and logins.
# Every 10s it samples the gateway's RSS, goroutines (go_goroutines from its
# /metrics), OS threads and open file descriptors (/proc/PID), and at the
# end prints the first and last samples. It fails on any unexpected answer.
#
#   bash tests/soak/run.sh                  # 10 minutes at 200 requests/s
#   bash tests/soak/run.sh --minutes 1 --rate 100
#
# The verdict cache is 1 000 entries, so it is full within the first minute
# and memory should be flat from then on; compare "after the first minute"
# with "last".
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"

minutes=10 rate=200
while (($#)); do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "soak: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/jwtgate-soak.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "soak: $*" >&2; exit 1; }

echo "soak: building into $work" >&2
go build -tags nomsgpack -o "$work/jwtgate" .
go build -o "$work/fakeauth" ./tests/fakeauth/cmd/fakeauth
go build -o "$work/loadkit" ./tests/load/loadkit

# start NAME CMD...: a server that prints its URL on stdout's first line.
declare -A url
start() {
  local name=$1 i; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for i in $(seq 1 200); do
    [ -s "$work/$name.out" ] && { url[$name]=$(head -n1 "$work/$name.out"); return 0; }
    kill -0 "$!" 2>/dev/null || break
    sleep 0.05
  done
  die "$name did not start: $(cat "$work/$name.err")"
}

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export LOADKIT_SECRET=$secret FAKEAUTH_SECRET=$secret
start upstream "$work/loadkit" upstream -listen 127.0.0.1:0
start fakeauth "$work/fakeauth" -listen 127.0.0.1:0 -users 1000 -access-ttl 3h

mport=$("$work/loadkit" freeport)
cat >"$work/settings.yaml" <<EOF
metrics_listen: "127.0.0.1:$mport"
auth_service:
  url: "${url[fakeauth]}"
auth:
  cache:
    size: 1000
database:
  dsn: "$work/jwtgate.db"
log:
  level: warn
throttle:
  login_rate: "off"
  # One machine plays every client: no per-client bound on calls home.
  calls_home_per_client: "off"
routes:
  - path: "/open/"
    upstream: "${url[upstream]}"
    auth: none
  - path: "/api/"
    upstream: "${url[upstream]}"
EOF
port=$("$work/loadkit" freeport)
JWTGATE_LISTEN=127.0.0.1:$port "$work/jwtgate" serve --config "$work/settings.yaml" >"$work/gateway.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
gw=http://127.0.0.1:$port
for i in $(seq 1 200); do
  curl -fsS -o /dev/null "$gw/healthz" 2>/dev/null && break
  kill -0 $gw_pid 2>/dev/null || die "gateway exited: $(cat "$work/gateway.log")"
  [ "$i" = 200 ] && die "gateway did not answer /healthz"
  sleep 0.1
done
metrics=""
# (Read whole first: grep -q would stop early and pipefail would blame curl.)
body=$(curl -fsS "http://127.0.0.1:$mport/metrics" 2>/dev/null || true)
grep -q '^go_goroutines ' <<<"$body" && metrics=http://127.0.0.1:$mport/metrics

echo "soak: $minutes minute(s) at $rate requests/s against $gw (pid $gw_pid); samples every 10s" >&2
status=0
"$work/loadkit" soak -gateway "$gw" -pid $gw_pid -metrics "$metrics" -duration "${minutes}m" -rate "$rate" -users 1000 || status=$?
if grep -qiE 'panic|level=ERROR' "$work/gateway.log"; then
  echo "soak: the gateway logged errors:" >&2
  grep -iE 'panic|level=ERROR' "$work/gateway.log" | head -n 20 >&2
  status=1
fi
exit $status
