#!/usr/bin/env bash
# Quickstart: the example auth service (Django REST framework + SimpleJWT,
# tests/djangoauth/project) and an example upstream, for jwtgate's README
# walk-through. Installs what is missing (Debian packages), migrates, creates
# two example users, serves until Ctrl-C, then stops both.
#
#   bash tests/djangoauth/run.sh
#
# Environment (all optional):
#   AUTH_LISTEN      auth service address        (default 127.0.0.1:8000)
#   UPSTREAM_LISTEN  example upstream address    (default 127.0.0.1:9001)
#   JWTGATE_DEMO_DIR state directory             (default .demo in the repository, gitignored)
#   DJANGOAUTH_DB    the auth service's SQLite   (default $JWTGATE_DEMO_DIR/auth.sqlite3)
#   DJANGOAUTH_*     the rest of tests/djangoauth/README.md's variables (algorithm, token lifetimes, ...)
#
# Test-only service: passwords are hashed with MD5. Never put real accounts in it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
project="$here/project"
python=/usr/bin/python3 # Debian's python, which sees Debian's Django (never a pyenv python3)

AUTH_LISTEN="${AUTH_LISTEN:-127.0.0.1:8000}"
UPSTREAM_LISTEN="${UPSTREAM_LISTEN:-127.0.0.1:9001}"
JWTGATE_DEMO_DIR="${JWTGATE_DEMO_DIR:-$repo/.demo}"
export DJANGOAUTH_DB="${DJANGOAUTH_DB:-$JWTGATE_DEMO_DIR/auth.sqlite3}"
export DJANGO_SETTINGS_MODULE=djangoauth_project.settings
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
unset PYTHONPATH PYTHONHOME

say() { echo "quickstart: $*"; }

# 1. Debian packages, only those missing (as tests/setup.sh does).
packages=(python3 python3-django python3-djangorestframework python3-djangorestframework-simplejwt gunicorn curl jq)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. Free ports: say which is taken rather than let gunicorn retry for a minute.
port_taken() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$AUTH_LISTEN" "$UPSTREAM_LISTEN"; do
  if port_taken "$addr"; then
    say "$addr is already in use (another quickstart running?); set AUTH_LISTEN / UPSTREAM_LISTEN to use other ports" >&2
    exit 1
  fi
done

# 3. Database and example users.
mkdir -p "$(dirname "$DJANGOAUTH_DB")"
say "auth service database: $DJANGOAUTH_DB"
(cd "$project" && "$python" manage.py migrate --no-input -v 0)
(cd "$project" && "$python" manage.py createdemousers) | sed 's/^/quickstart: /'

# 4. Serve both until Ctrl-C.
pids=()
stop() {
  trap - INT TERM EXIT
  ((${#pids[@]})) || exit 0
  say "stopping"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  exit 0
}
trap stop INT TERM EXIT

"$python" -m gunicorn --bind "$AUTH_LISTEN" --workers 2 --graceful-timeout 4 --chdir "$project" \
  --error-logfile - --log-level warning djangoauth_project.wsgi:application &
pids+=($!)
"$python" "$here/echo_upstream.py" "$UPSTREAM_LISTEN" &
pids+=($!)

for addr in "$AUTH_LISTEN" "$UPSTREAM_LISTEN"; do
  for ((i = 0; i < 100; i++)); do # at most 20 s
    port_taken "$addr" && break
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { say "a server exited at start (see above)" >&2; exit 1; }
    done
    sleep 0.2
  done
  port_taken "$addr" || { say "nothing answers on $addr after 20 s" >&2; exit 1; }
done

serve="go run . serve"
[ "$AUTH_LISTEN" = 127.0.0.1:8000 ] || serve="JWTGATE_AUTH_SERVICE_URL=http://$AUTH_LISTEN $serve"
[ "$UPSTREAM_LISTEN" = 127.0.0.1:9001 ] ||
  say "the example route in settings.yaml sends to http://127.0.0.1:9001: change its upstream to http://$UPSTREAM_LISTEN"
cat <<MSG
quickstart: ready: auth service on http://$AUTH_LISTEN, example upstream on http://$UPSTREAM_LISTEN
quickstart: users alice@example.com / alice-password (services: [billing]) and bob@example.com / bob-password (staff)

Next, in another terminal at $repo:

  $serve      # the gateway on http://127.0.0.1:8001 (embedded default settings)

then log in through the gateway and call the example API (README.md, "A walk-through with curl"):

  curl -s -X POST http://127.0.0.1:8001/auth/token/ -H 'Content-Type: application/json' \\
       -d '{"email": "alice@example.com", "password": "alice-password"}'

Ctrl-C here stops the auth service and the upstream.
MSG
# Until Ctrl-C, or until one of them exits (then the trap stops the other).
wait -n "${pids[@]}" || say "a server exited (see above)" >&2
