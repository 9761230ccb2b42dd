#!/usr/bin/env bash
# jwtgate load benchmark: one command builds the gateway, the fake auth
# service and loadkit, starts them on 127.0.0.1 with a tiny upstream, and
# measures with wrk (one thread), in alternating order, these rows.
# Every gateway row is compared with a bare httputil.ReverseProxy row driven
# by the same wrk Lua script over the same kind of token set (same mode,
# same token length), so the client's cost is equal on both sides; the bare
# rows' proxy sends the upstream the headers the gateway adds (request id,
# identity headers: learned from the upstream's /_headers through both), so
# the upstream's cost is equal too. Rows 18 and 19 are the plain bare proxy:
#  18  plain bare proxy, 1 token           2 auth: none (it adds only X-Request-Id)
#  19  plain bare proxy, 10 000 tokens       (3 and 5 are also read against 18 and 19)
#   1  bare proxy, 1 token                 3 remote, warm (1 token)
#   4  bare proxy, 10 000 tokens           5 remote, 10 000 tokens of 1 000 users (warm)
#                                          6 the same, warm, with the auth service stopped
#   7  bare proxy, a new HS256 token each  8 remote, cold: every request a never-seen token
#                                          9 remote, cold, auth service 200 ms late, max_in_flight 8
#                                         14 local HS256, every request a new token
#  10  bare proxy, a new RS256 token each 11 local RS256, every request a new token
#  12  bare proxy, a new ES256 token each 13 local ES256, every request a new token
#  16  bare proxy, 10 000 tokens, 3 × ttl 15 remote, 10 000 tokens in steady use for
#                                             3 × cache.ttl (30 s): refresh-ahead at work
#                                         17 row 5's gateway (ttl 1h: nothing renewed), as long
#  20  bare proxy, 1 token in a cookie     21 browser mode: the token in the access cookie
#                                         22 remote, warm, a route rate limit never reached
#                                         23 remote, warm, a route rate limit exceeded (429s)
# Rows 15, 16 and 17 are measured once, after the rounds, each for 3 × ttl.
# For each row: requests/s (median and min-max of the rounds), p50, p99,
# × its bare row, the serving process's own CPU time per request
# (utime+stime from /proc/PID/stat over the row, divided by the requests)
# and × the bare row's, and calls home per request. Then the gateway's RSS
# after 100 000 distinct tokens of 10 000 users are cached, and the
# instructions per request of the bare proxy and the gateway counted by
# valgrind's callgrind in the serving process (a figure that, unlike req/s
# and CPU time, does not move with what else the machine is doing). It
# prints a markdown table and writes it with the machine's description to
# tests/load/RESULTS.md.
#
#   bash tests/load/run.sh                       # 3 rounds of 10s per row, memory step
#   bash tests/load/run.sh --rounds 1 --duration 3s   # a quick end-to-end run
#   bash tests/load/run.sh --smoke               # ~1s per row, no thresholds, no RESULTS.md (CI)
#   bash tests/load/run.sh --memory-only
#   bash tests/load/run.sh --instructions-only  # only the callgrind step (~2 min)
#   LOAD_SMAPS=/tmp/mem.smaps bash tests/load/run.sh --memory-only   # also keep the gateway's /proc/PID/smaps
#   LOAD_CALLGRIND=/tmp/cg bash tests/load/run.sh --instructions-only  # also keep the callgrind dumps (callgrind_annotate)
#   bash tests/load/run.sh --cpuprofile /tmp/prof   # gateways under pprof: /tmp/prof/NAME.pprof, NAME.heap
#
# Options: --rounds N, --duration D (wrk's: 10s, 1m), --threads N and
# --connections N (wrk's -t/-c; default one thread, so the client takes as
# little of the machine as it can, and 8 connections per core), --cold-rate
# N (tokens minted per second of a cold row; raise it if the report says
# tokens were reused), --local-rate N (the same for the local rows; RS256
# tokens are slow to mint), --no-memory, --memory-only, --no-instructions,
# --instructions-only, --out FILE (default tests/load/RESULTS.md; --smoke
# writes none).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"

cores=$(nproc)
rounds=3 duration=10s threads=1 conns=$((8 * cores)) cold_rate=20000 local_rate=6000 warmup=2s
memory=1 rows_on=1 instr=1 smoke=0 out=tests/load/RESULTS.md profdir="" gap=1
ahead_ttl=30 instr_n=2000 instr_tokens=2000 mem_tokens=100000 mem_users=10000 late_delay=200ms late_limit=8 limit_high=1000000/second limit_low=100/second access_cookie=access_token many_tokens=10000 many_users=1000 settle=2
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --cold-rate) cold_rate=$2; shift 2 ;;
    --local-rate) local_rate=$2; shift 2 ;;
    --no-memory) memory=0; shift ;;
    --memory-only) rows_on=0 instr=0; shift ;;
    --no-instructions) instr=0; shift ;;
    --instructions-only) rows_on=0 memory=0; shift ;;
    --out) out=$2; shift 2 ;;
    --cpuprofile) profdir=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ((smoke)); then
  rounds=1 duration=1s warmup="" cold_rate=20000 local_rate=300 mem_tokens=2000 mem_users=200 gap=0.2
  many_tokens=1000 many_users=100 settle=0.5 instr_n=100 instr_tokens=100 ahead_ttl=1
  [ "$out" = tests/load/RESULTS.md ] && out=""
fi
case $duration in
  *ms) echo "run.sh: --duration must be whole seconds or minutes" >&2; exit 2 ;;
  *s) secs=${duration%s} ;;
  *m) secs=$((${duration%m} * 60)) ;;
  *) secs=$duration; duration=${duration}s ;;
esac

work=$(mktemp -d /tmp/jwtgate-load.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "load [${SECONDS}s]: $*" >&2; }
die() { echo "load: $*" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends wrk >/dev/null \
    || { $sudo_cmd apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends wrk >/dev/null; }
fi
command -v curl >/dev/null || die "curl is needed"

[ -n "$profdir" ] && { mkdir -p "$profdir"; profdir=$(cd "$profdir" && pwd); }
. tests/load/lib.sh
build_kit

# start NAME CMD...: run a server that prints its URL first; sets url[NAME].
declare -A url pid metrics_url
gw_under=()
start() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid[$name]=$!
  pids+=($!)
  wait_lines "$work/$name.out" 1 "${pid[$name]}" || die "$name did not start: $(cat "$work/$name.err")"
  url[$name]=$(head -n1 "$work/$name.out")
}

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export LOADKIT_SECRET=$secret FAKEAUTH_SECRET=$secret LOAD_HS256_SECRET=$secret
fa_users=$((mem_users > 1000 ? mem_users : 1000))

start upstream "$kit" upstream -listen 127.0.0.1:0
start plain "$kit" proxy -listen 127.0.0.1:0 -target "${url[upstream]}"
start fakeauth "$work/fakeauth" -listen 127.0.0.1:0 -users "$fa_users" -access-ttl 3h -stats-listen 127.0.0.1:0
wait_lines "$work/fakeauth.out" 2 "${pid[fakeauth]}" || die "fakeauth printed no stats URL"
stats=$(sed -n '2s/^stats //p' "$work/fakeauth.out")
calls_home() { curl -fsS "$stats" | sed -E 's/.*"total":([0-9]+).*/\1/'; }

# added_headers GATEWAY_URL TOKEN_FILE: sets idh to -header flags for the
# headers gateway adds on its way upstream (its request id and the identity
# headers of the file's first token's user), with the gateway's values: the
# upstream (its /_headers) is asked what it receives through the gateway and
# through the plain bare proxy, with the same token. The bare rows' proxy
# sends these too, so the upstream reads requests of the same size from both
# sides of a ratio (its cost per request is not the gateway's).
idh=()
added_headers() {
  local tok gwh plainh line
  tok=$(head -n1 "$2")
  gwh=$(curl -fsS -H "Authorization: Bearer $tok" "$1/api/_headers") || die "could not read the headers the gateway sends upstream"
  plainh=$(curl -fsS -H "Authorization: Bearer $tok" "${url[plain]}/api/_headers") || die "could not read the headers the bare proxy sends upstream"
  idh=()
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    grep -qi "^${line%%:*}:" <<<"$plainh" || idh+=(-header "$line")
  done <<<"$gwh"
  ((${#idh[@]})) || die "the gateway added no headers on its way upstream: $gwh"
}

# gateway NAME [CACHE_SIZE [LOCAL_ALG [AUTH_URL [AUTH_EXTRA [TTL [TOP_EXTRA [ROUTES_EXTRA]]]]]]]:
# write the settings of one gateway and start it; LOCAL_ALG (RS256, ES256 or
# HS256) selects verify: local; AUTH_URL replaces the fake auth service's URL
# (a front that delays or can be stopped); AUTH_EXTRA is more auth_service
# YAML (indented two spaces); TTL is auth.cache.ttl (default 1h); TOP_EXTRA
# is more top-level YAML (a browser: block); ROUTES_EXTRA is YAML after the
# /api/ route: its own keys indented four spaces, or more routes. Returns 1
# if it does not serve.
gateway() {
  local name=$1 size=${2:-100000} alg=${3:-} auth=${4:-${url[fakeauth]}} extra=${5:-} ttl=${6:-1h} verify=""
  local top=${7:-} routes_extra=${8:-}
  case $alg in
    RS256) verify="  verify: local
  local:
    keys: [\"$work/public.pem\"]
    algorithms: [RS256]" ;;
    ES256) verify="  verify: local
  local:
    keys: [\"$work/es256-public.pem\"]
    algorithms: [ES256]" ;;
    HS256) verify="  verify: local
  local:
    keys: [\"env:LOAD_HS256_SECRET\"]
    algorithms: [HS256]" ;;
  esac
  local port mport i
  port=$("$kit" freeport)
  mport=$("$kit" freeport)
  metrics_url[$name]=http://127.0.0.1:$mport/metrics
  cat >"$work/$name.yaml" <<EOF
metrics_listen: "127.0.0.1:$mport"
auth_service:
  url: "$auth"
$extra
auth:
  cache:
    size: $size
    ttl: $ttl
$verify
database:
  dsn: "$work/$name.db"
users:
  refresh_after: 1h
log:
  level: warn
throttle:
  login_rate: "off"
  # One machine plays every client: no per-client bound on calls home.
  calls_home_per_client: "off"
$top
routes:
  - path: "/open/"
    upstream: "${url[upstream]}"
    auth: none
  - path: "/api/"
    upstream: "${url[upstream]}"
$routes_extra
EOF
  local cmd=("$work/jwtgate") tries=200
  [ -n "$profdir" ] && cmd=("$kit" gateway -cpuprofile "$profdir/$name.pprof" -memprofile "$profdir/$name.heap" --)
  # gw_under: a command the gateway runs under (callgrind), slow to start.
  ((${#gw_under[@]})) && cmd=("${gw_under[@]}" "$work/jwtgate") tries=900
  JWTGATE_LISTEN=127.0.0.1:$port "${cmd[@]}" serve --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  pid[$name]=$!
  pids+=($!)
  url[$name]=http://127.0.0.1:$port
  for i in $(seq 1 "$tries"); do
    curl -fsS -o /dev/null "${url[$name]}/healthz" 2>/dev/null && return 0
    kill -0 "${pid[$name]}" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

mint() { "$kit" mint "$@"; }
warm() { "$kit" warm -url "$1/api/warm" -tokens "$2" -c 16 >&2; }

# cpu_ticks PID: the process's utime+stime so far, in clock ticks (the
# fields after the command name, which may hold spaces, in /proc/PID/stat).
hz=$(getconf CLK_TCK)
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  awk '{ print $12 + $13 }' <<<"$stat"
}

# gw_requests NAME: requests gateway NAME has answered so far, by its
# /metrics (0 for a bare row: no NAME).
gw_requests() {
  [ -n "$1" ] || { echo 0; return; }
  curl -fsS "${metrics_url[$1]}" 2>/dev/null | awk '/^jwtgate_http_requests_total\{/ { s += $NF } END { printf "%d\n", s }'
}

# measure ROW ROUND: one wrk run of a row; appends its RESULT line, the
# calls home it caused, the CPU time its server used and the requests that
# reached the gateway to $work/res/ROW.
mkdir -p "$work/res"
measure() {
  local row=$1 round=$2 file=${rowfile[$1]} before after outp line t0 t1 g0 g1
  ((${rowround[$row]:-0})) && file=$file.$round
  before=$(calls_home)
  g0=$(gw_requests "${rowgw[$row]:-}")
  t0=$(cpu_ticks "${rowpid[$row]}")
  outp=$(wrk -t"$threads" -c"$conns" -d"${rowdur[$row]:-$duration}" --timeout 5s -s tests/load/tokens.lua "${rowurl[$row]}" -- "$file" "${rowmode[$row]}" "${rowcookie[$row]:-}" 2>&1) \
    || die "wrk failed for row $row: $outp"
  t1=$(cpu_ticks "${rowpid[$row]}")
  # Calls still queued or delayed when wrk stopped land at the auth service
  # a little later (a shared verify call outlives its client).
  [ -n "${rowsettle[$row]:-}" ] && sleep "${rowsettle[$row]}"
  after=$(calls_home)
  g1=$(gw_requests "${rowgw[$row]:-}")
  line=$(grep '^RESULT ' <<<"$outp") || die "no RESULT from wrk for row $row: $outp"
  echo "$round ${line#RESULT } calls=$((after - before)) cpu_ticks=$((t1 - t0)) arrived=$((g1 - g0))" >>"$work/res/$row"
}

field() { # field ROW NAME: that field of every round, one per line
  sed -nE "s/.* $2=([0-9.]+).*/\1/p" "$work/res/$1"
}
# total ROW NAME: that field summed over the rounds.
total() { field "$1" "$2" | awk '{ s += $1 } END { print s + 0 }'; }

rowname=(
  ""
  "bare httputil.ReverseProxy + the gateway's headers, 1 token"
  "jwtgate, auth: none"
  "jwtgate, remote, warm (1 token)"
  "bare httputil.ReverseProxy + the gateway's headers, $many_tokens tokens"
  "jwtgate, remote, $many_tokens tokens of $many_users users (warm)"
  "jwtgate, remote, $many_tokens tokens (warm), auth service stopped"
  "bare httputil.ReverseProxy + the gateway's headers, a new HS256 token per request"
  "jwtgate, remote, cold (every token new)"
  "jwtgate, remote, cold, auth service $late_delay late, max_in_flight $late_limit"
  "bare httputil.ReverseProxy + the gateway's headers, a new RS256 token per request"
  "jwtgate, local RS256, every request a new token"
  "bare httputil.ReverseProxy + the gateway's headers, a new ES256 token per request"
  "jwtgate, local ES256, every request a new token"
  "jwtgate, local HS256, every request a new token"
  "jwtgate, remote, $many_tokens tokens in steady use for 3 × cache.ttl (${ahead_ttl}s)"
  "bare httputil.ReverseProxy + the gateway's headers, $many_tokens tokens, for as long as row 15"
  "jwtgate, remote, $many_tokens tokens for as long as row 15, cache.ttl 1h (no renewals)"
  "bare httputil.ReverseProxy, plain (adds no headers), 1 token"
  "bare httputil.ReverseProxy, plain (adds no headers), $many_tokens tokens"
  "bare httputil.ReverseProxy + the gateway's headers, 1 token in a cookie"
  "jwtgate, browser mode, warm (1 token in the access cookie)"
  "jwtgate, remote, warm (1 token), route rate limit $limit_high per user (never reached)"
  "jwtgate, remote, warm (1 token), route rate limit $limit_low per user (exceeded: 429s)"
)
# rowbase: the bare row driven by the same Lua script over the same kind of
# token set; a bare row is its own.
declare -A rowurl rowfile rowmode rowround rowpid rowbase rowsettle rowgw rowdur rowcookie
# Rows 18 and 19 are the plain bare proxy, which adds no headers: row 2's
# base (auth: none adds only the request id), and for reading against rows 3
# and 5.
rowbase=([1]=1 [2]=18 [3]=1 [4]=4 [5]=4 [6]=4 [7]=7 [8]=7 [9]=7 [10]=10 [11]=10 [12]=12 [13]=12 [14]=7 [15]=16 [16]=16 [17]=16 [18]=18 [19]=19
  [20]=20 [21]=20 [22]=1 [23]=1)
rows=()
local_note=""

if ((rows_on)); then
  log "starting gateways and minting tokens"
  start authlate "$kit" proxy -listen 127.0.0.1:0 -target "${url[fakeauth]}" -delay "$late_delay"
  start authstop "$kit" proxy -listen 127.0.0.1:0 -target "${url[fakeauth]}"
  gateway remote || die "gateway did not start: $(cat "$work/remote.log")"
  gateway cold || die "gateway did not start: $(cat "$work/cold.log")"
  # Its users are in the mirror from the start: at 200 ms a call, fetching
  # 1 000 of them through 8 slots would take a minute.
  "$kit" seed -db "$work/late.db" -users 1000
  gateway late 100000 "" "${url[authlate]}" "  max_in_flight: $late_limit" || die "gateway did not start: $(cat "$work/late.log")"
  gateway stopped 100000 "" "${url[authstop]}" || die "gateway did not start: $(cat "$work/stopped.log")"
  mint -users 1 -count 1 -out "$work/warm1"
  mint -users "$many_users" -count "$many_tokens" -out "$work/warm10k"
  added_headers "${url[remote]}" "$work/warm1"
  start bare "$kit" proxy -listen 127.0.0.1:0 -target "${url[upstream]}" "${idh[@]}"
  log "the bare rows' proxy sends the $((${#idh[@]} / 2)) headers the gateway adds upstream: $(printf '%s\n' "${idh[@]}" | grep -v '^-header$' | cut -d: -f1 | paste -sd' ')"
  mint -users 1000 -count 1000 -out "$work/coldusers"
  for r in $(seq 1 "$rounds"); do
    mint -users 1000 -count $((cold_rate * secs)) -split "$threads" -out "$work/cold.$r"
  done
  # Measured in this order each round (the plain bare rows next to the rows
  # they are read against); reported by number.
  rows=(18 1 2 3 19 4 5 6 7 8 9)
  rowurl=([1]=${url[bare]}/api/bench [2]=${url[remote]}/open/bench [3]=${url[remote]}/api/bench
    [4]=${url[bare]}/api/bench [5]=${url[remote]}/api/bench [6]=${url[stopped]}/api/bench
    [7]=${url[bare]}/api/bench [8]=${url[cold]}/api/bench [9]=${url[late]}/api/bench
    [18]=${url[plain]}/api/bench [19]=${url[plain]}/api/bench)
  rowfile=([1]=$work/warm1 [2]=$work/warm1 [3]=$work/warm1 [4]=$work/warm10k [5]=$work/warm10k
    [6]=$work/warm10k [7]=$work/cold [8]=$work/cold [9]=$work/cold [18]=$work/warm1 [19]=$work/warm10k)
  rowmode=([1]=random [2]=random [3]=random [4]=random [5]=random [6]=random [7]=once [8]=once [9]=once
    [18]=random [19]=random)
  rowround=([7]=1 [8]=1 [9]=1) # a fresh token file each round
  rowpid=([1]=${pid[bare]} [2]=${pid[remote]} [3]=${pid[remote]} [4]=${pid[bare]} [5]=${pid[remote]}
    [6]=${pid[stopped]} [7]=${pid[bare]} [8]=${pid[cold]} [9]=${pid[late]} [18]=${pid[plain]} [19]=${pid[plain]})
  rowsettle=([9]=$settle)
  # The gateway whose /metrics count the requests that reached it: calls
  # home per request divide by those (wrk's own count of requests sent
  # includes some it generated but never wrote when it stopped).
  rowgw=([2]=remote [3]=remote [5]=remote [6]=stopped [8]=cold [9]=late)

  # Local verification, every request a new token: a verdict cache of one
  # entry, so every request's signature is checked even when a token file
  # wraps around; users are already in the mirror (the fake auth service
  # cannot read RS256/ES256 tokens to serve their records).
  "$kit" keygen -dir "$work"
  "$kit" keygen -dir "$work" -alg ES256
  local_count=$((local_rate * secs))
  mint -users 1000 -count "$local_count" -split "$threads" -key "$work/private.pem" -out "$work/RS256.tok"
  mint -users 1000 -count "$local_count" -split "$threads" -key "$work/es256-private.pem" -out "$work/ES256.tok"
  mint -users 1000 -count "$local_count" -split "$threads" -out "$work/HS256.tok"
  for alg in RS256 ES256 HS256; do
    "$kit" seed -db "$work/$alg.db" -users 1000
    if ! gateway "$alg" 1 "$alg"; then
      local_note="Local rows not measured: the gateway refused verify: local ($(grep -m1 -i 'settings' "$work/$alg.log" | cut -c1-200))."
      break
    fi
    # A build without local verification still starts (verify: local is a
    # known value there) but calls home: tell by the answers and the calls.
    before=$(calls_home) code=""
    for t in $(cat "$work/$alg.tok"* | head -n3); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "${url[$alg]}/api/check")
      [ "$code" = 200 ] || break
    done
    if [ "$code" != 200 ] || (($(calls_home) - before >= 3)); then
      local_note="Local rows not measured: this build has no local verification (a local $alg token got $code, or called home)."
      break
    fi
  done
  if [ -n "$local_note" ]; then
    log "$local_note"
  else
    rows+=(10 11 12 13 14)
    rowurl+=([10]=${url[bare]}/api/bench [11]=${url[RS256]}/api/bench [12]=${url[bare]}/api/bench
      [13]=${url[ES256]}/api/bench [14]=${url[HS256]}/api/bench)
    rowfile+=([10]=$work/RS256.tok [11]=$work/RS256.tok [12]=$work/ES256.tok [13]=$work/ES256.tok [14]=$work/HS256.tok)
    rowmode+=([10]=once [11]=once [12]=once [13]=once [14]=once)
    rowpid+=([10]=${pid[bare]} [11]=${pid[RS256]} [12]=${pid[bare]} [13]=${pid[ES256]} [14]=${pid[HS256]})
    rowgw+=([11]=RS256 [13]=ES256 [14]=HS256)
  fi

  # Browser mode (issue 13): the token in the access cookie, which the
  # gateway reads when no Authorization header is present and never sends
  # upstream; its bare row sends the same cookie through the bare proxy.
  # Rate limits (issue 14): row 22's route counts every request against a
  # limit the load never reaches (the limiter's cost on the warm path), row
  # 23's against one it exceeds at once (most answers are 429 throttled:
  # what refusing costs, with no upstream call).
  gateway browser 100000 "" "${url[fakeauth]}" "" 1h "browser:
  enabled: true
  access_cookie: true
  access_cookie_name: \"$access_cookie\"
  refresh_cookie: {secure: false}" || die "gateway did not start: $(cat "$work/browser.log")"
  gateway limits 100000 "" "${url[fakeauth]}" "" 1h "" "    rate_limit: {per_user: \"$limit_high\"}
  - path: \"/tight/\"
    upstream: \"${url[upstream]}\"
    rate_limit: {per_user: \"$limit_low\"}" || die "gateway did not start: $(cat "$work/limits.log")"
  rows+=(20 21 22 23)
  rowurl+=([20]=${url[bare]}/api/bench [21]=${url[browser]}/api/bench [22]=${url[limits]}/api/bench
    [23]=${url[limits]}/tight/bench)
  rowfile+=([20]=$work/warm1 [21]=$work/warm1 [22]=$work/warm1 [23]=$work/warm1)
  rowmode+=([20]=random [21]=random [22]=random [23]=random)
  rowcookie+=([20]=$access_cookie [21]=$access_cookie)
  rowpid+=([20]=${pid[bare]} [21]=${pid[browser]} [22]=${pid[limits]} [23]=${pid[limits]})
  rowgw+=([21]=browser [22]=limits [23]=limits)

  log "warming caches"
  warm "${url[browser]}" "$work/warm1"
  warm "${url[limits]}" "$work/warm1"
  # The rows must measure what they say: the cookie alone authenticates
  # (no Authorization header), and row 23's refusals are the limit's 429s.
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $access_cookie=$(head -n1 "$work/warm1")" "${url[browser]}/api/check")
  [ "$code" = 200 ] || die "browser mode: the access cookie got $code, not 200"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${url[browser]}/api/check")
  [ "$code" = 401 ] || die "browser mode: no cookie got $code, not 401"
  # 300 requests on one connection, faster than the limit refills.
  body=$(curl -s -w ' %{http_code}\n' -H "Authorization: Bearer $(head -n1 "$work/warm1")" $(printf "${url[limits]}/tight/check %.0s" $(seq 1 300)))
  grep -q '"code":"throttled"} 429$' <<<"$body" || die "rate limit: 300 requests over $limit_low got no 429 throttled: $(tail -n 2 <<<"$body")"
  warm "${url[remote]}" "$work/warm1"
  warm "${url[remote]}" "$work/warm10k"
  warm "${url[stopped]}" "$work/warm10k"
  warm "${url[cold]}" "$work/coldusers" # users cached: a cold request calls home for its token only
  log "stopping the auth service behind the 'stopped' gateway (row 6)"
  kill -KILL "${pid[authstop]}" # as a crash: connections reset, no graceful drain
  wait "${pid[authstop]}" 2>/dev/null || true
  if [ -n "$warmup" ]; then
    log "warm-up: $warmup per row"
    for row in "${rows[@]}"; do
      ((${rowround[$row]:-0})) && continue # its tokens must stay unseen
      wrk -t"$threads" -c"$conns" -d"$warmup" -s tests/load/tokens.lua "${rowurl[$row]}" -- "${rowfile[$row]}" "${rowmode[$row]}" "${rowcookie[$row]:-}" >/dev/null 2>&1 || true
    done
  fi

  for r in $(seq 1 "$rounds"); do
    order=("${rows[@]}")
    if ((r % 2 == 0)); then # alternate: forwards, backwards, forwards, ...
      order=()
      for ((i = ${#rows[@]} - 1; i >= 0; i--)); do order+=("${rows[$i]}"); done
    fi
    log "round $r of $rounds: rows ${order[*]}"
    for row in "${order[@]}"; do
      measure "$row" "$r"
      sleep "$gap"
    done
  done

  # Rows 20-22 send one warm token (as a cookie, or through a limit never
  # reached) and must be answered 200 every time; row 23 must be refused:
  # otherwise a row would measure something other than what it says (a
  # cookie tokens.lua failed to send, a limit that never applied).
  for row in 20 21 22; do
    bad=$(total "$row" non2xx)
    ((bad == 0)) || die "row $row: $bad answers not 2xx: ${rowname[$row]} should be answered 200"
  done
  bad=$(total 23 non2xx)
  ((bad > 0)) || die "row 23: no answer was refused: the $limit_low limit did not apply"

  # Refresh-ahead: a gateway whose cache.ttl is ahead_ttl, warmed with the
  # 10 000 tokens and then sent them for 3 × ttl, so every verdict comes up
  # for renewal three times while in use; its p99 is compared with the bare
  # proxy's over the same tokens for as long (row 16, measured just before),
  # and with row 5's gateway, whose verdicts (ttl 1h) never come up for
  # renewal (row 17, just after): row 15 - row 17 is what renewal costs.
  log "refresh-ahead: $many_tokens tokens for 3 × cache.ttl ($((3 * ahead_ttl))s), bare proxy as long first"
  gateway ahead 100000 "" "${url[fakeauth]}" "" "${ahead_ttl}s" || die "gateway did not start: $(cat "$work/ahead.log")"
  rowurl+=([15]=${url[ahead]}/api/bench [16]=${url[bare]}/api/bench [17]=${url[remote]}/api/bench)
  rowfile+=([15]=$work/warm10k [16]=$work/warm10k [17]=$work/warm10k)
  rowmode+=([15]=random [16]=random [17]=random)
  rowpid+=([15]=${pid[ahead]} [16]=${pid[bare]} [17]=${pid[remote]})
  rowgw+=([15]=ahead [17]=remote)
  rowdur+=([15]=$((3 * ahead_ttl))s [16]=$((3 * ahead_ttl))s [17]=$((3 * ahead_ttl))s)
  measure 16 1
  sleep "$gap"
  warm "${url[ahead]}" "$work/warm10k" # the ttl starts now
  measure 15 1
  sleep "$gap"
  measure 17 1
  rows+=(15 16 17)
  mapfile -t rows < <(printf '%s\n' "${rows[@]}" | sort -n)
fi

mem_line=""
if ((memory)); then
  log "memory: caching $mem_tokens tokens of $mem_users users"
  gateway mem || die "gateway did not start: $(cat "$work/mem.log")"
  mint -users "$mem_users" -count "$mem_tokens" -out "$work/mem.tok"
  before=$(calls_home)
  "$kit" warm -url "${url[mem]}/api/mem" -tokens "$work/mem.tok" -c 32 >&2
  after=$(calls_home)
  sleep 1
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/${pid[mem]}/status")
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/${pid[mem]}/status")
  # Anonymous (heap, stacks, C malloc) against file-backed (the binary's
  # pages touched, shared libraries) resident memory; the whole map is kept
  # in $LOAD_SMAPS when set, for reading where the rest goes.
  if [ -n "${LOAD_SMAPS:-}" ]; then cp "/proc/${pid[mem]}/smaps" "$LOAD_SMAPS" || true; fi
  anon=$(awk '/^Anonymous:/ {print $2}' "/proc/${pid[mem]}/smaps_rollup" 2>/dev/null || echo 0)
  # The Go runtime's own account, from /metrics on metrics_listen.
  gostats=$(curl -fsS "${metrics_url[mem]}" 2>/dev/null | awk '
    /^go_memstats_heap_inuse_bytes / { inuse = $2 } /^go_memstats_heap_idle_bytes / { idle = $2 }
    /^go_memstats_heap_released_bytes / { rel = $2 } /^go_memstats_sys_bytes / { sys = $2 }
    END { if (sys) printf "; Go heap in use %.1f MB, idle not yet returned %.1f MB, from the OS %.1f MB", inuse/1048576, (idle-rel)/1048576, sys/1048576 }' || true)
  mem_line=$(awk -v r="$rss" -v h="$hwm" -v a="${anon:-0}" -v t="$mem_tokens" -v u="$mem_users" -v c=$((after - before)) \
    -v g="$gostats" 'BEGIN { printf "RSS of the gateway after %d distinct tokens of %d users were cached: **%.1f MB** (peak %.1f MB; anonymous %.1f MB, file-backed %.1f MB%s; %d calls home: one verify per token, one fetch per user)", t, u, r/1024, h/1024, a/1024, (r-a)/1024, g, c }')
fi

# ---- instructions per request -------------------------------------------
# The bare proxy and one gateway (the settings of the rows' 'remote') each
# run under valgrind's callgrind with GOMAXPROCS=1, GOGC=off and
# GOMEMLIMIT=off (the work each request does, without the collector: the
# rows above run the bare proxy at Go's default GOGC=100 and the gateway at
# its own 400 under the memory limit serve derives from its cache sizes,
# which changes what a collection costs per request, not what a request
# does; without GOMEMLIMIT=off that limit would start collections in the
# gateway alone); each is warmed, its
# counters zeroed (callgrind_control -z), sent $instr_n requests by loadkit
# rr (4 at a time), and its counters dumped (-d): user-space instructions
# per request, in the serving process only. They do not depend on what else
# the machine is doing. The kernel's share (the socket system calls, the same
# for both: strace counts 2 writes and 4 reads per request on each) is not
# in them, so × bare here is larger than the CPU ratio above.
instr_table=""
if ((instr)); then
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null \
    || die "the instructions step needs valgrind (apt-get install valgrind), or pass --no-instructions"
  log "instructions: bare proxy and gateway under callgrind, $instr_n requests each"
  # cpu.rdtscp=off: valgrind 3.19 does not know RDTSCP, which the Go runtime
  # uses where the CPU has it (SIGILL otherwise).
  vg=(env GOGC=off GOMEMLIMIT=off GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind)
  # vg_proxy NAME [FLAG...]: start a bare proxy under callgrind (its flags
  # after -target); vg_wait NAME: until it serves (slow to start), or die.
  vg_proxy() {
    local name=$1 port
    shift
    port=$("$kit" freeport)
    "${vg[@]}" --callgrind-out-file="$work/$name.cg.%p" "$kit" proxy -listen "127.0.0.1:$port" -target "${url[upstream]}" "$@" \
      >"$work/$name.out" 2>"$work/$name.err" &
    pid[$name]=$!
    pids+=($!)
    url[$name]=http://127.0.0.1:$port
  }
  vg_wait() {
    local i
    for i in $(seq 1 900); do
      curl -fsS -o /dev/null "${url[$1]}/" 2>/dev/null && return 0
      kill -0 "${pid[$1]}" 2>/dev/null || die "the bare proxy did not start under valgrind: $(tail -n 5 "$work/$1.err")"
      sleep 0.1
    done
    die "the bare proxy did not answer under valgrind within 90 s"
  }
  vg_proxy vgbare
  gw_under=("${vg[@]}" --callgrind-out-file="$work/vggw.cg.%p")
  gateway vggw || die "the gateway did not start under valgrind: $(tail -n 5 "$work/vggw.log")"
  gw_under=()
  vg_wait vgbare
  mint -users 1 -count 1 -out "$work/instr1"
  mint -users 1000 -count "$instr_tokens" -out "$work/instrmany"
  # The bare proxy again, sending the headers the gateway adds (as the bare
  # rows' proxy does).
  ((${#idh[@]})) || added_headers "${url[vggw]}" "$work/instr1"
  vg_proxy vgbareh "${idh[@]}"
  vg_wait vgbareh
  # rr_ok URL TOKENS ROUNDS: send them, every answer a 200, or die.
  rr_ok() {
    local outp want
    want=$(($(grep -c . "$2") * $3))
    outp=$("$kit" rr -urls "$1" -tokens "$2" -rounds "$3" -c 4 2>&1) || die "loadkit rr $1: $outp"
    grep -q "map\[200:$want\]" <<<"$outp" || die "loadkit rr $1: not $want answers of 200: $outp"
  }
  # ndumps NAME: the counter dumps process NAME has written.
  ndumps() {
    local f c=0
    for f in "$work/$1.cg.${pid[$1]}".*; do [ -e "$f" ] && c=$((c + 1)); done
    echo "$c"
  }
  # instructions NAME URL TOKENS ROUNDS: the instructions per request of
  # process NAME serving TOKENS × ROUNDS requests to URL (warmed first).
  instructions() {
    local name=$1 n dumps i f
    rr_ok "$2" "$3" 1
    n=$(($(grep -c . "$3") * $4))
    callgrind_control -z "${pid[$name]}" >/dev/null || die "callgrind_control -z $name failed"
    rr_ok "$2" "$3" "$4"
    dumps=$(ndumps "$name")
    callgrind_control -d "${pid[$name]}" >/dev/null || die "callgrind_control -d $name failed"
    for i in $(seq 1 300); do
      (($(ndumps "$name") > dumps)) && break
      sleep 0.1
    done
    f="$work/$name.cg.${pid[$name]}.$((dumps + 1))"
    for i in $(seq 1 100); do grep -q '^summary:' "$f" 2>/dev/null && break; sleep 0.1; done
    awk -v n="$n" '/^summary:/ { printf "%.0f\n", $2 / n; found = 1 } END { if (!found) exit 1 }' "$f" \
      || die "no callgrind summary in $f"
  }
  ir_bare=$(instructions vgbare "${url[vgbare]}/api/bench" "$work/instr1" "$instr_n")
  ir_bareh=$(instructions vgbareh "${url[vgbareh]}/api/bench" "$work/instr1" "$instr_n")
  ir_none=$(instructions vggw "${url[vggw]}/open/bench" "$work/instr1" "$instr_n")
  ir_warm=$(instructions vggw "${url[vggw]}/api/bench" "$work/instr1" "$instr_n")
  ir_many=$(instructions vggw "${url[vggw]}/api/bench" "$work/instrmany" $(((instr_n + instr_tokens - 1) / instr_tokens)))
  irow() { awk -v s="$1" -v a="$2" -v b="$ir_bare" -v h="$ir_bareh" 'BEGIN { printf "| %s | %d | %.2f | %.2f |", s, a, a / b, a / h }'; }
  instr_table="| Setup (as rows 18, 1, 2, 3, 5) | Instructions / request | × plain bare | × bare + the gateway's headers |
|---|---:|---:|---:|
$(irow "bare httputil.ReverseProxy, plain (adds no headers), 1 token" "$ir_bare")
$(irow "bare httputil.ReverseProxy + the gateway's headers, 1 token" "$ir_bareh")
$(irow "jwtgate, auth: none" "$ir_none")
$(irow "jwtgate, remote, warm (1 token)" "$ir_warm")
$(irow "jwtgate, remote, warm ($instr_tokens tokens of 1000 users)" "$ir_many")"
  kill "${pid[vgbare]}" "${pid[vgbareh]}" "${pid[vggw]}" 2>/dev/null || true
  if [ -n "${LOAD_CALLGRIND:-}" ]; then
    mkdir -p "$LOAD_CALLGRIND" && cp "$work"/*.cg.* "$LOAD_CALLGRIND"/ && log "callgrind dumps kept in $LOAD_CALLGRIND"
  fi
fi

# ---- report -----------------------------------------------------------
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print 0 } else if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'; }
# cpu_us ROW: the server's CPU time per answered request, in µs, of every round.
cpu_us() {
  awk -v hz="$hz" '{ delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["requests"] > 0) printf "%.1f\n", v["cpu_ticks"] * 1e6 / hz / v["requests"] }' "$work/res/$1"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
# paired ROW BASE NAME: ROW's NAME (rps, or cpu for CPU per request) over
# BASE's in the same round, one per round: measured minutes apart at most,
# so a machine that speeds up or slows down between rounds moves both.
paired() {
  awk -v f="$3" -v hz="$hz" 'function val(   i, kv, v) { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      if (f == "cpu") return v["requests"] > 0 ? v["cpu_ticks"] * 1e6 / hz / v["requests"] : 0; return v[f] }
    FNR == NR { b[$1] = val(); next } ($1 in b) && b[$1] > 0 { printf "%.4f\n", val() / b[$1] }' "$work/res/$2" "$work/res/$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "met" : "MISSED") }'; }

table=""
targets=""
rounds_table=""
if ((rows_on)); then
  table="| # | Setup | Bare row | Requests/s | Rounds (min–max) | p50 | p99 | × bare req/s | × bare req/s, paired | CPU µs / request | × bare CPU | × bare CPU, paired | Calls home / request |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  rounds_table="| # | Requests/s in each round | CPU µs / request in each round |
|---|---|---|"
  warnings=""
  declare -A m_rps m_p99 m_cpu m_ratio m_cpur m_calls m_bad m_pair m_cpair
  for row in "${rows[@]}"; do
    m_rps[$row]=$(field "$row" rps | median)
    m_p99[$row]=$(field "$row" p99_us | median)
    m_cpu[$row]=$(cpu_us "$row" | median)
  done
  for row in "${rows[@]}"; do
    base=${rowbase[$row]}
    rps=${m_rps[$row]}
    p50=$(field "$row" p50_us | median)
    spread=$(field "$row" rps | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f–%.0f", lo, hi }')
    reqs=$(field "$row" sent | awk '{ s += $1 } END { print s }')
    [ -n "${rowgw[$row]:-}" ] && reqs=$(field "$row" arrived | awk '{ s += $1 } END { print s }')
    calls=$(field "$row" calls | awk '{ s += $1 } END { print s }')
    bad=$(field "$row" non2xx | awk '{ s += $1 } END { print s }')
    errs=$(field "$row" errors | awk '{ s += $1 } END { print s }')
    wraps=$(field "$row" wrapped | awk '{ s += $1 } END { print s }')
    m_ratio[$row]=$(ratio "$rps" "${m_rps[$base]}")
    m_cpur[$row]=$(ratio "${m_cpu[$row]}" "${m_cpu[$base]}")
    m_pair[$row]=$(paired "$row" "$base" rps | median | awk '{ printf "%.2f", $1 }')
    m_cpair[$row]=$(paired "$row" "$base" cpu | median | awk '{ printf "%.2f", $1 }')
    m_calls[$row]=$(awk -v c="$calls" -v n="$reqs" 'BEGIN { printf "%.2f", (n > 0 ? c / n : 0) }')
    m_bad[$row]=$((bad + errs))
    calls_cell=${m_calls[$row]}
    [ "$row" = 6 ] && calls_cell="— (stopped)"
    table+="
| $row | ${rowname[$row]} | $base | $(printf '%.0f' "$rps") | $spread | $(ms "$p50") | $(ms "${m_p99[$row]}") | ${m_ratio[$row]} | ${m_pair[$row]} | ${m_cpu[$row]} | ${m_cpur[$row]} | ${m_cpair[$row]} | $calls_cell |"
    rounds_table+="
| $row | $(field "$row" rps | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }') | $(cpu_us "$row" | paste -sd, | sed 's/,/, /g') |"
    # Row 23's 429s are what it measures: its reading line counts them.
    [ "$row" = 23 ] && bad=0
    ((bad + errs > 0)) && warnings+="
- Row $row: $bad non-2xx answers and $errs socket errors."
    if ((wraps > 0)); then
      if ((${rowround[$row]:-0})); then
        warnings+="
- Row $row: the cold tokens ran out and were reused ($wraps times); raise --cold-rate."
      elif [ "${rowmode[$row]}" = once ]; then
        warnings+="
- Row $row: the token file wrapped $wraps times (every signature is still checked: a verdict cache of one entry); raise --local-rate for tokens never sent before."
      fi
    fi
  done
  targets="Targets (each row against its bare row, measured side by side in this run):
- row 3 ≥ 0.95 × row 1 requests/s: $(verdict "$(awk -v r="${m_ratio[3]}" 'BEGIN { print r >= 0.95 }')") (${m_ratio[3]}; paired by round ${m_pair[3]})
- row 3 CPU per request ≤ 1.10 × row 1's: $(verdict "$(awk -v r="${m_cpur[3]}" 'BEGIN { print (r > 0 && r <= 1.10) }')") (${m_cpur[3]}: ${m_cpu[3]} vs ${m_cpu[1]} µs; paired by round ${m_cpair[3]})
- row 3 p99 ≤ row 1 p99 + 0.5 ms: $(verdict "$(awk -v a="${m_p99[3]}" -v b="${m_p99[1]}" 'BEGIN { print a <= b + 500 }')") ($(ms "${m_p99[3]}") vs $(ms "${m_p99[1]}"))
- row 5 ≥ 0.90 × row 4 requests/s: $(verdict "$(awk -v r="${m_ratio[5]}" 'BEGIN { print r >= 0.90 }')") (${m_ratio[5]}; paired by round ${m_pair[5]})
- row 9 (cold storm, auth service $late_delay late): 0 errors and 1.00 calls home per request: $(verdict "$(awk -v b="${m_bad[9]}" -v c="${m_calls[9]}" 'BEGIN { print b == 0 && c == 1.00 }')") (${m_bad[9]} errors, ${m_calls[9]} calls home per request)
- row 15 ($many_tokens tokens in steady use for 3 × cache.ttl, refresh-ahead) p99 ≤ row 16 p99 + 1 ms: $(verdict "$(awk -v a="${m_p99[15]}" -v b="${m_p99[16]}" 'BEGIN { print a <= b + 1000 }')") ($(ms "${m_p99[15]}") vs $(ms "${m_p99[16]}"); ${m_bad[15]} errors, ${m_calls[15]} calls home per request)"
  [ -z "$local_note" ] && targets+="
- row 11 (local RS256, every request a new token) ≥ 0.65 × row 10 requests/s: $(verdict "$(awk -v r="${m_ratio[11]}" 'BEGIN { print r >= 0.65 }')") (${m_ratio[11]}; paired by round ${m_pair[11]}; CPU ${m_cpur[11]} × row 10's)"
  targets+="
- no target, for reading: against the plain bare proxy, which adds no headers (the upstream then reads smaller requests), row 3 = $(ratio "${m_rps[3]}" "${m_rps[18]}") × row 18 requests/s and $(ratio "${m_cpu[3]}" "${m_cpu[18]}") × its CPU per request; row 5 = $(ratio "${m_rps[5]}" "${m_rps[19]}") × row 19 requests/s
- no target, for reading: row 15's p99 − row 17's (the same tokens, nothing renewed) = $(awk -v a="${m_p99[15]}" -v b="${m_p99[17]}" 'BEGIN { printf "%+.2f ms", (a - b) / 1000 }'): what renewing every verdict three times costs the tail
- no target, for reading: row 6 (auth service stopped) = $(ratio "${m_rps[6]}" "${m_rps[5]}") × row 5 requests/s with ${m_bad[6]} errors (cached tokens should keep full speed)"
  [ -n "${m_rps[21]:-}" ] && targets+="
- no target, for reading: browser mode (row 21, the token in the access cookie) = ${m_ratio[21]} × row 20 requests/s (the same cookie through the bare proxy) and ${m_cpur[21]} × its CPU per request; row 3 (Authorization header) = ${m_ratio[3]} and ${m_cpur[3]}
- no target, for reading: a route rate limit never reached (row 22): ${m_cpu[22]} µs CPU per request against row 3's ${m_cpu[3]} ($(awk -v a="${m_cpu[22]}" -v b="${m_cpu[3]}" 'BEGIN { printf "%+.1f", a - b }') µs; paired by round against row 1, ${m_cpair[22]} × its CPU against row 3's ${m_cpair[3]}), ${m_ratio[22]} × row 1 requests/s against row 3's ${m_ratio[3]}
- no target, for reading: an exceeded rate limit (row 23) answered $(printf '%.0f' "${m_rps[23]}") requests/s, $(total 23 non2xx) of $(total 23 requests) answers not 2xx (the route's 429 throttled), at ${m_cpu[23]} µs CPU per request (row 3, every request proxied: ${m_cpu[3]} µs)"
  [ -n "$warnings" ] && targets+="

Warnings:$warnings"
fi
if [ -n "$mem_line" ]; then
  mem_line+=": $(awk -v r="$rss" 'BEGIN { print (r <= 100 * 1024 ? "within" : "OVER") }') the 100 MB target (issue 16)."
fi

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
report="# jwtgate load benchmark

Measured by \`bash tests/load/run.sh$( ((smoke)) && echo " --smoke")\` on $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown):
**$cores cores** (${cpu:-unknown CPU}), $(go version | cut -d' ' -f3), $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2).
wrk -t$threads -c$conns -d$duration per row, $rounds round(s) in alternating order (forwards, backwards, ...), median of the rounds.
Everything runs on 127.0.0.1 and shares those cores: wrk, the upstream (200, $(printf '%s' '{"ok":true,"items":[1,2,3]}' | wc -c)-byte JSON),
the fake auth service and the gateway (log level warn). Every row sends the same wrk Lua script with a bearer token;
each gateway row's ratios are against its bare row (column \"Bare row\"): the bare proxy driven by the same script
over the same kind of token set, so the client's cost is the same on both sides, and sending the upstream the
headers the gateway adds ($(printf '%s\n' "${idh[@]}" | grep -v '^-header$' | cut -d: -f1 | paste -sd, | sed 's/,/, /g'), with the gateway's values for
user 1), so the upstream reads requests of the same size from both and its cost is the same too. Rows 18 and 19
are the plain bare proxy, which adds none: the base of row 2 (auth: none adds only X-Request-Id). CPU µs / request is the serving
process's own utime+stime (/proc/PID/stat) over the row divided by the requests answered: the gateway's for a
gateway row, the bare proxy's for a bare row. \"Paired\" is the median over the rounds of a row's figure over its bare row's
in the same round (a machine whose speed drifts between rounds moves both); the targets are judged on the ratio of the
medians. Calls home are counted by the fake auth service and divided by the
requests that reached the gateway (its jwtgate_http_requests_total, read after the row's calls have settled).
${local_note:+
$local_note
}"
((rows_on)) && report+="
$table

$targets

Each round:

$rounds_table
"
[ -n "$mem_line" ] && report+="
Memory: $mem_line
"
[ -n "$instr_table" ] && report+="
Instructions per request in the serving process (user space, valgrind callgrind, GOMAXPROCS=1, GOGC=off and GOMEMLIMIT=off in both,
$instr_n requests after a warm-up; kernel time and garbage collection not included), a figure that holds still
whatever else the machine does. valgrind 3.19 hides the CPU's SHA extensions, so under it the SHA-256 of the
token (the verdict cache's key) runs Go's AVX2 code, about 8 300 instructions a request, where this CPU$(grep -qw sha_ni /proc/cpuinfo && echo "'s SHA-NI code takes a fraction of that" || echo " has no SHA extensions either"):

$instr_table
"
echo
echo "$report"
if [ -n "$out" ]; then
  echo "$report" >"$out"
  log "wrote $out"
fi
