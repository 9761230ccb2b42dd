#!/usr/bin/env bash
# jwtgate load benchmark: one command builds the gateway, the fake auth
# service and loadkit, starts them on 127.0.0.1 with a tiny upstream, and
# measures with wrk, in alternating order, each of:
#   1  a bare httputil.ReverseProxy to the upstream (the floor)
#   2  jwtgate, route with auth: none
#   3  jwtgate, remote verification, warm cache (one token)
#   4  jwtgate, remote verification, 10 000 tokens of 1 000 users (warm)
#   5  jwtgate, remote verification, cold: every request a never-seen token
#   6  jwtgate, local verification RS256, every request's signature checked
#   7  jwtgate, local verification HS256, every request's signature checked
# then the gateway's RSS after 100 000 distinct tokens of 10 000 users are
# cached. It prints a markdown table (median of the rounds) and writes it
# with the machine's description to tests/load/RESULTS.md.
#
#   bash tests/load/run.sh                       # 3 rounds of 10s per row, memory step
#   bash tests/load/run.sh --rounds 5 --duration 30s
#   bash tests/load/run.sh --smoke               # ~5s of measuring, no thresholds, no RESULTS.md
#   bash tests/load/run.sh --memory-only
#   bash tests/load/run.sh --cpuprofile /tmp/prof   # gateways under pprof: /tmp/prof/NAME.pprof, NAME.heap
#
# Options: --rounds N, --duration D (wrk's: 10s, 1m), --threads N and
# --connections N (wrk's -t/-c; default one thread per core and 8
# connections per core: enough to keep every core busy without measuring
# mostly queueing), --cold-rate N (tokens minted per second of
# a cold row; raise it if the report says tokens were reused), --no-memory,
# --memory-only, --out FILE (default tests/load/RESULTS.md; --smoke writes none).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"

cores=$(nproc)
rounds=3 duration=10s threads=$cores conns=$((8 * cores)) cold_rate=20000 warmup=2s
memory=1 rows_on=1 smoke=0 out=tests/load/RESULTS.md profdir=""
mem_tokens=100000 mem_users=10000 local_tokens=2000
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --cold-rate) cold_rate=$2; shift 2 ;;
    --no-memory) memory=0; shift ;;
    --memory-only) rows_on=0; shift ;;
    --out) out=$2; shift 2 ;;
    --cpuprofile) profdir=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ((smoke)); then
  rounds=1 duration=1s warmup="" cold_rate=20000 mem_tokens=2000 mem_users=200 local_tokens=200
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

log() { echo "load: $*" >&2; }
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
log "building into $work"
go build -o "$work/jwtgate" .
go build -o "$work/fakeauth" ./tests/fakeauth/cmd/fakeauth
go build -o "$work/loadkit" ./tests/load/loadkit
kit="$work/loadkit"

# wait_lines FILE N PID: until FILE has N lines (bounded), or PID died.
wait_lines() {
  local i
  for i in $(seq 1 200); do
    [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# start NAME CMD...: run a server that prints its URL first; sets url[NAME].
declare -A url pid metrics_url
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
start bare "$kit" proxy -listen 127.0.0.1:0 -target "${url[upstream]}"
start fakeauth "$work/fakeauth" -listen 127.0.0.1:0 -users "$fa_users" -access-ttl 3h -stats-listen 127.0.0.1:0
wait_lines "$work/fakeauth.out" 2 "${pid[fakeauth]}" || die "fakeauth printed no stats URL"
stats=$(sed -n '2s/^stats //p' "$work/fakeauth.out")
calls_home() { curl -fsS "$stats" | sed -E 's/.*"total":([0-9]+).*/\1/'; }

# gateway NAME [CACHE_SIZE [LOCAL_ALG]]: write the settings of one gateway
# and start it; LOCAL_ALG (RS256 or HS256) selects verify: local. Returns 1
# if it does not serve.
gateway() {
  local name=$1 size=${2:-100000} alg=${3:-} verify=""
  case $alg in
    RS256) verify="  verify: local
  local:
    keys: [\"$work/public.pem\"]
    algorithms: [RS256]" ;;
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
  url: "${url[fakeauth]}"
auth:
  cache:
    size: $size
    ttl: 1h
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
routes:
  - path: "/open/"
    upstream: "${url[upstream]}"
    auth: none
  - path: "/api/"
    upstream: "${url[upstream]}"
EOF
  local cmd=("$work/jwtgate")
  [ -n "$profdir" ] && cmd=("$kit" gateway -cpuprofile "$profdir/$name.pprof" -memprofile "$profdir/$name.heap" --)
  JWTGATE_LISTEN=127.0.0.1:$port "${cmd[@]}" serve --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  pid[$name]=$!
  pids+=($!)
  url[$name]=http://127.0.0.1:$port
  for i in $(seq 1 200); do
    curl -fsS -o /dev/null "${url[$name]}/healthz" 2>/dev/null && return 0
    kill -0 "${pid[$name]}" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

mint() { "$kit" mint "$@"; }
warm() { "$kit" warm -url "$1/api/warm" -tokens "$2" -c 16 >&2; }

# measure ROW ROUND: one wrk run of a row; appends its RESULT line and the
# calls home it caused to $work/res/ROW.
mkdir -p "$work/res"
measure() {
  local row=$1 round=$2 file=${rowfile[$1]} before after outp line
  [ "${rowmode[$row]}" = once ] && file=$file.$round
  before=$(calls_home)
  outp=$(wrk -t"$threads" -c"$conns" -d"$duration" --timeout 5s -s tests/load/tokens.lua "${rowurl[$row]}" -- "$file" "${rowmode[$row]}" 2>&1) \
    || die "wrk failed for row $row: $outp"
  after=$(calls_home)
  line=$(grep '^RESULT ' <<<"$outp") || die "no RESULT from wrk for row $row: $outp"
  echo "$round ${line#RESULT } calls=$((after - before))" >>"$work/res/$row"
}

rowname=(
  ""
  "bare httputil.ReverseProxy (no auth)"
  "jwtgate, auth: none"
  "jwtgate, remote, warm (1 token)"
  "jwtgate, remote, 10 000 tokens of 1 000 users (warm)"
  "jwtgate, remote, cold (every token new)"
  "jwtgate, local RS256 (every signature checked)"
  "jwtgate, local HS256 (every signature checked)"
)
declare -A rowurl rowfile rowmode
rows=()
local_note=""

if ((rows_on)); then
  log "starting gateways and minting tokens"
  gateway remote || die "gateway did not start: $(cat "$work/remote.log")"
  gateway cold || die "gateway did not start: $(cat "$work/cold.log")"
  mint -users 1 -count 1 -out "$work/warm1"
  mint -users 1000 -count 10000 -out "$work/warm10k"
  mint -users 1000 -count 1000 -out "$work/coldusers"
  for r in $(seq 1 "$rounds"); do
    mint -users 1000 -count $((cold_rate * secs)) -split "$threads" -out "$work/cold.$r"
  done
  rows=(1 2 3 4 5)
  rowurl=([1]=${url[bare]}/api/bench [2]=${url[remote]}/open/bench [3]=${url[remote]}/api/bench
    [4]=${url[remote]}/api/bench [5]=${url[cold]}/api/bench)
  rowfile=([1]=$work/warm1 [2]=$work/warm1 [3]=$work/warm1 [4]=$work/warm10k [5]=$work/cold)
  rowmode=([1]=random [2]=random [3]=random [4]=random [5]=once)

  # Local verification: a verdict cache of one entry, so every request's
  # signature is checked; users are already in the mirror (the fake auth
  # service cannot read RS256 tokens to serve their records).
  "$kit" keygen -dir "$work"
  mint -users 1000 -count "$local_tokens" -rsa-key "$work/private.pem" -out "$work/RS256.tok"
  mint -users 1000 -count "$local_tokens" -out "$work/HS256.tok"
  for alg in RS256 HS256; do
    "$kit" seed -db "$work/$alg.db" -users 1000
    if ! gateway "$alg" 1 "$alg"; then
      local_note="Rows 6 and 7 not measured: the gateway refused verify: local ($(grep -m1 -i 'settings' "$work/$alg.log" | cut -c1-200))."
      break
    fi
    # A build without local verification still starts (verify: local is a
    # known value there) but calls home: tell by the answers and the calls.
    before=$(calls_home) code=""
    for t in $(head -n3 "$work/$alg.tok"); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "${url[$alg]}/api/check")
      [ "$code" = 200 ] || break
    done
    if [ "$code" != 200 ] || (($(calls_home) - before >= 3)); then
      local_note="Rows 6 and 7 not measured: this build has no local verification (a local $alg token got $code, or called home)."
      break
    fi
  done
  if [ -n "$local_note" ]; then
    log "$local_note"
  else
    rows+=(6 7)
    rowurl[6]=${url[RS256]}/api/bench rowurl[7]=${url[HS256]}/api/bench
    rowfile[6]=$work/RS256.tok rowfile[7]=$work/HS256.tok
    rowmode[6]=random rowmode[7]=random
  fi

  log "warming caches"
  warm "${url[remote]}" "$work/warm1"
  warm "${url[remote]}" "$work/warm10k"
  warm "${url[cold]}" "$work/coldusers" # users cached: a cold request calls home for its token only
  if [ -z "$local_note" ]; then
    warm "${url[RS256]}" "$work/RS256.tok"
    warm "${url[HS256]}" "$work/HS256.tok"
  fi
  if [ -n "$warmup" ]; then
    log "warm-up: $warmup per row"
    for row in "${rows[@]}"; do
      [ "$row" = 5 ] && continue # its tokens must stay unseen
      wrk -t"$threads" -c"$conns" -d"$warmup" -s tests/load/tokens.lua "${rowurl[$row]}" -- "${rowfile[$row]}" random >/dev/null 2>&1 || true
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
      sleep 1
    done
  done
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
  # The Go runtime's own account, from /metrics on metrics_listen.
  gostats=$(curl -fsS "${metrics_url[mem]}" 2>/dev/null | awk '
    /^go_memstats_heap_inuse_bytes / { inuse = $2 } /^go_memstats_heap_idle_bytes / { idle = $2 }
    /^go_memstats_heap_released_bytes / { rel = $2 } /^go_memstats_sys_bytes / { sys = $2 }
    END { if (sys) printf "; Go heap in use %.1f MB, idle not yet returned %.1f MB, from the OS %.1f MB", inuse/1048576, (idle-rel)/1048576, sys/1048576 }' || true)
  mem_line=$(awk -v r="$rss" -v h="$hwm" -v t="$mem_tokens" -v u="$mem_users" -v c=$((after - before)) \
    -v g="$gostats" 'BEGIN { printf "RSS of the gateway after %d distinct tokens of %d users were cached: **%.1f MB** (peak %.1f MB%s; %d calls home: one verify per token, one fetch per user)", t, u, r/1024, h/1024, g, c }')
fi

# ---- report -----------------------------------------------------------
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print 0 } else if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'; }
field() { # field ROW NAME: that field of every round, one per line
  sed -nE "s/.* $2=([0-9.]+).*/\1/p" "$work/res/$1"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }

table=""
targets=""
rounds_table=""
if ((rows_on)); then
  base_rps=$(field 1 rps | median)
  base_p99=$(field 1 p99_us | median)
  table="| # | Setup | Requests/s | p50 | p99 | × row 1 | Calls home / request |
|---|---|---:|---:|---:|---:|---:|"
  rounds_table="| # | Requests/s in each round |
|---|---|"
  warnings=""
  for row in "${rows[@]}"; do
    rps=$(field "$row" rps | median)
    p50=$(field "$row" p50_us | median)
    p99=$(field "$row" p99_us | median)
    reqs=$(field "$row" sent | awk '{ s += $1 } END { print s }')
    calls=$(field "$row" calls | awk '{ s += $1 } END { print s }')
    bad=$(field "$row" non2xx | awk '{ s += $1 } END { print s }')
    errs=$(field "$row" errors | awk '{ s += $1 } END { print s }')
    wraps=$(field "$row" wrapped | awk '{ s += $1 } END { print s }')
    ratio=$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    perreq=$(awk -v c="$calls" -v n="$reqs" 'BEGIN { printf "%.2f", (n > 0 ? c / n : 0) }')
    table+="
| $row | ${rowname[$row]} | $(printf '%.0f' "$rps") | $(ms "$p50") | $(ms "$p99") | $ratio | $perreq |"
    rounds_table+="
| $row | $(field "$row" rps | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }') |"
    ((bad + errs > 0)) && warnings+="
- Row $row: $bad non-2xx answers and $errs socket errors."
    ((wraps > 0)) && warnings+="
- Row $row: the cold tokens ran out and were reused ($wraps times); raise --cold-rate."
    case $row in
      3) r3=$ratio p99_3=$p99 ;;
      4) r4=$ratio ;;
    esac
  done
  targets="Targets (rows 3 and 4 against row 1, measured side by side in this run):
- row 3 ≥ 0.85 × row 1 requests/s: $(awk -v r="$r3" 'BEGIN { print (r >= 0.85 ? "met" : "MISSED") }') ($r3)
- row 3 p99 ≤ row 1 p99 + 1 ms: $(awk -v a="$p99_3" -v b="$base_p99" 'BEGIN { print (a <= b + 1000 ? "met" : "MISSED") }') ($(ms "$p99_3") vs $(ms "$base_p99"))
- row 4 ≥ 0.80 × row 1 requests/s: $(awk -v r="$r4" 'BEGIN { print (r >= 0.80 ? "met" : "MISSED") }') ($r4)"
  [ -n "$warnings" ] && targets+="

Warnings:$warnings"
fi
if [ -n "$mem_line" ]; then
  mem_line+=": $(awk -v r="$rss" 'BEGIN { print (r <= 150 * 1024 ? "within" : "OVER") }') the 150 MB target."
fi

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
report="# jwtgate load benchmark

Measured by \`bash tests/load/run.sh$( ((smoke)) && echo " --smoke")\` on $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown):
**$cores cores** (${cpu:-unknown CPU}), $(go version | cut -d' ' -f3), $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2).
wrk -t$threads -c$conns -d$duration per row, $rounds round(s) in alternating order (forwards, backwards, ...), median of the rounds.
Everything runs on 127.0.0.1 and shares those cores: wrk, the upstream (200, $(printf '%s' '{"ok":true,"items":[1,2,3]}' | wc -c)-byte JSON),
the fake auth service and the gateway (log level warn). Every row sends the same wrk Lua script with a bearer token.
Calls home are counted by the fake auth service.
${local_note:+
$local_note
}"
((rows_on)) && report+="
$table

$targets

Requests/s of each round:

$rounds_table
"
[ -n "$mem_line" ] && report+="
Memory: $mem_line
"
echo
echo "$report"
if [ -n "$out" ]; then
  echo "$report" >"$out"
  log "wrote $out"
fi
