#!/usr/bin/env bash
# Smoke run of the main job on the embedded defaults (SQLite, local-memory caches, eager Celery):
# migrate, demo_setup, serve, and check that the health endpoint, the admin and the printed API example answer.
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=$(mktemp -d)
port=${SMOKE_PORT:-8765}
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL RECO_VAR_DIR="$workdir" bash -c "
  .venv/bin/python manage.py migrate --verbosity 0 &&
  .venv/bin/python manage.py demo_setup --host 127.0.0.1:$port --verbosity 0
" | tee "$workdir/demo.log"
grep -q "Reco demo is ready" "$workdir/demo.log"

env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL RECO_VAR_DIR="$workdir" \
  .venv/bin/python manage.py runserver --noreload "127.0.0.1:$port" >"$workdir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$workdir"' EXIT
for _ in $(seq 30); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$port/healthz" | grep -q '"ok"'
curl -sf -o /dev/null "http://127.0.0.1:$port/admin/login/"
# The example request the demo prints must work as printed.
example=$(grep -o "curl -s -H 'X-Api-Key: [^']*' '[^']*'" "$workdir/demo.log" | head -n1)
[ -n "$example" ] || { echo "smoke: demo_setup printed no example request" >&2; exit 1; }
eval "$example" >"$workdir/recs.json"
python3 -c "
import json, sys
body = json.load(open(sys.argv[1]))
assert len(body['items']) == 10 and body['rows'], body
assert body['degraded'] == [], 'the demo must serve the full path: ' + str(body['degraded'])
print('smoke: /api/recs gave', len(body['items']), 'items and', len(body['rows']), 'rows; degraded:', body['degraded'])
" "$workdir/recs.json"
echo "smoke: demo served on SQLite, /healthz, /admin/login/ and /api/recs answer"

# The production web server on the same data, with the production settings (its default): gunicorn's master
# loads the models, then forks two workers. Plain HTTP here, so no redirect to HTTPS.
kill $server; wait $server 2>/dev/null || true
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL -u DJANGO_SETTINGS_MODULE -u DEBUG RECO_VAR_DIR="$workdir" \
  LOG_LEVEL=INFO SECRET_KEY="smoke-$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" SECURE_SSL_REDIRECT=0 \
  GUNICORN_BIND="127.0.0.1:$port" WEB_CONCURRENCY=2 \
  .venv/bin/python -m gunicorn -c config/gunicorn.py config.wsgi >"$workdir/gunicorn.log" 2>&1 &
server=$!
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 1; done
grep -q "warm-up: .* titles and models" "$workdir/gunicorn.log" \
  || { cat "$workdir/gunicorn.log" >&2; echo "smoke: gunicorn's master did not warm up" >&2; exit 1; }
for _ in 1 2 3 4; do  # more requests than workers: both forked workers answer from the inherited state
  timeout 60 bash -c "$example" >"$workdir/recs.json"  # a worker that hangs after the fork fails here
  python3 -c "
import json, sys
body = json.load(open(sys.argv[1]))
assert len(body['items']) == 10 and body['degraded'] == [], body
" "$workdir/recs.json"
done
# SIGHUP: the master loads the state again and forks fresh workers, which serve it.
kill -HUP $server
for _ in $(seq 60); do [ "$(grep -c "warm-up: .* titles and models" "$workdir/gunicorn.log")" -ge 2 ] && break; sleep 1; done
[ "$(grep -c "warm-up: .* titles and models" "$workdir/gunicorn.log")" -ge 2 ] \
  || { cat "$workdir/gunicorn.log" >&2; echo "smoke: gunicorn's master did not warm up again on SIGHUP" >&2; exit 1; }
timeout 60 bash -c "$example" | python3 -c "import json, sys; assert json.load(sys.stdin)['degraded'] == []"
# No debug page anywhere: an unknown API path is the JSON error shape, an unknown page lists no URL patterns.
curl -s "http://127.0.0.1:$port/api/nothing" | python3 -c "import json, sys; assert set(json.load(sys.stdin)) == {'code', 'message', 'details'}"
! curl -s "http://127.0.0.1:$port/nothing" | grep -q "URLconf"
curl -sf "http://127.0.0.1:$port/readyz" | grep -q '"ready"'
echo "smoke: gunicorn -c config/gunicorn.py warmed the models up in its master (again on SIGHUP); its workers serve them"
