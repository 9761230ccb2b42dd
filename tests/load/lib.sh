# Shared by tests/load/run.sh and tests/load/replicas.sh (sourced after they
# define log, die and work).

# build_kit: one go build for jwtgate, the fake auth service and loadkit
# into $work (their links run in parallel); sets kit.
build_kit() {
  log "building into $work"
  go build -tags nomsgpack -o "$work/" . ./tests/fakeauth/cmd/fakeauth ./tests/load/loadkit
  [ -x "$work/jwtgate" ] && [ -x "$work/fakeauth" ] && [ -x "$work/loadkit" ] || die "build: expected jwtgate, fakeauth and loadkit in $work"
  kit="$work/loadkit"
}

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
