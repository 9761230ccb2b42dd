#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for TIME each (default 5m),
# one after another, and prints a summary. New failing inputs are written by
# `go test` to <package>/testdata/fuzz/<target>/ : commit them as seeds once
# the bug is fixed.
#
#   bash tests/fuzz.sh 5m            # every target, 5 minutes each
#   bash tests/fuzz.sh 30s FuzzRoute # only targets whose name contains FuzzRoute
#
# FUZZ_PARALLEL sets the number of fuzzing workers (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

time=${1:-5m}
filter=${2:-}
parallel=()
[ -n "${FUZZ_PARALLEL:-}" ] && parallel=(-parallel "$FUZZ_PARALLEL")

# "package-dir target" for every func FuzzX(f *testing.F) in a _test.go file.
mapfile -t targets < <(grep -rEo --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' . \
  | sed -E 's#^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+).*#\1 \2#' | sort -u)
if ((${#targets[@]} == 0)); then echo "fuzz: no targets found" >&2; exit 1; fi

failed=0
summary=()
for t in "${targets[@]}"; do
  dir=${t% *}
  name=${t#* }
  [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
  echo "== $name (./$dir) for $time"
  log=$(mktemp)
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" "${parallel[@]}" "./$dir" 2>&1 | tee "$log" | grep -E '^(fuzz: elapsed|---|ok|FAIL|PASS|    )' | tail -n 15; then :; fi
  if grep -q '^ok' "$log"; then
    execs=$(grep -Eo 'execs: [0-9]+' "$log" | tail -n1 | grep -Eo '[0-9]+' || echo '?')
    summary+=("ok    $name  $time  ${execs} execs")
  else
    failed=1
    summary+=("FAIL  $name  $time  (see the failing input under $dir/testdata/fuzz/$name/)")
  fi
  rm -f "$log"
done

echo
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $failed
