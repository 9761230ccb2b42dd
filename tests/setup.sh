#!/usr/bin/env bash
# Installs what jwtgate's tests need on a fresh Debian machine and makes sure
# the local PostgreSQL runs with the `test` database the replica tests use
# (host=127.0.0.1 port=5432 user=postgres dbname=test, trust auth), and a
# Redis on 127.0.0.1:6379 for the shared verdict cache's tests.
# Safe to run again: it installs, starts and changes only what is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup: $*"; }
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

packages=(
  python3-django python3-djangorestframework python3-djangorestframework-simplejwt gunicorn # real SimpleJWT auth service
  curl jq     # the README walk-through (tests/quickstart_test.go)
  nginx       # forward-auth test (auth_request)
  caddy       # forward-auth test (forward_auth, tests/platforms_caddy_test.go)
  systemd     # systemd-analyze verify of the unit `jwtgate systemd-unit` prints
  wrk         # load benchmark
  valgrind    # load benchmark: instructions per request (callgrind)
  postgresql  # replica tests (several gateways on one database)
  redis-server # shared verdict cache tests (auth.cache.redis_url; redis-cli too)
  chromium    # real-browser test of browser mode (tests/browser_chromium_test.go, driven by chromedp)
  nodejs      # the real OpenID Connect provider (tests/oidc, npm oidc-provider)
)
say "checking Debian packages: ${packages[*]}"
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]} (apt-get)"
  $sudo_cmd apt-get update -q
  $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "all installed"
fi

# PostgreSQL on 127.0.0.1:5432 for the replica tests.
version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
if [ -z "$version" ]; then
  say "no PostgreSQL cluster under /etc/postgresql; creating one"
  version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
  $sudo_cmd pg_createcluster "$version" main
fi
hba="/etc/postgresql/$version/main/pg_hba.conf"
# Trust on 127.0.0.1 (the tests connect as postgres without a password):
# test machines only. Added once, before any other host rule.
if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
  say "allowing trust auth on 127.0.0.1 in $hba"
  $sudo_cmd sed -i '0,/^host/s//host all all 127.0.0.1\/32 trust\nhost/' "$hba"
  grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" ||
    echo "host all all 127.0.0.1/32 trust" | $sudo_cmd tee -a "$hba" >/dev/null
  reload=1
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL $version"
  $sudo_cmd pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
elif [ -n "${reload:-}" ]; then
  $sudo_cmd pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { say "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
say "PostgreSQL $version answers on 127.0.0.1:5432"

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
if [ "$(as_postgres psql -h /var/run/postgresql -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
  say "creating database test"
  as_postgres createdb -h /var/run/postgresql test
fi
psql "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable" -qtAc 'SELECT 1' >/dev/null ||
  { say "cannot connect to the test database as postgres on 127.0.0.1 (trust auth?)" >&2; exit 1; }
say "database test ready (host=127.0.0.1 port=5432 user=postgres dbname=test, trust)"
# Redis on 127.0.0.1:6379 for the shared verdict cache tests (nothing kept on disk).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "starting Redis on 127.0.0.1:6379"
  $sudo_cmd mkdir -p /var/lib/redis /var/log/redis
  $sudo_cmd redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { say "Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
say "Redis answers on 127.0.0.1:6379"
# The OpenID Connect provider's packages, exactly as locked.
oidc_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/oidc"
if ! [ -d "$oidc_dir/node_modules/oidc-provider" ] || [ "$oidc_dir/package-lock.json" -nt "$oidc_dir/node_modules" ]; then
  say "installing the OIDC provider's npm packages (npm ci in tests/oidc)"
  (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error)
else
  say "OIDC provider packages installed"
fi
say "ok"
