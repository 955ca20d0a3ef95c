#!/bin/sh
# wrk side by side (issue 12): presenced serve (access log on and off), the same app on granian,
# and the bare Starlette app, taken in turns; prints requests/s and the server process's CPU
# microseconds per request (utime+stime from /proc over the measured run).
#
#   bench/side_by_side.sh [ROUNDS] [OTHER_SRC]
#
# OTHER_SRC: another checkout's src/ (e.g. main's) to run as "other" with the same venv.
# Needs wrk, and granian installed in .venv (pip install granian). Uses a fresh SQLite file
# with 10 users in a temporary directory, rate limit off; POST /users/me/presence with
# status=active&last_update_id=-1, 16 connections, 5 s per server after a 2 s warm-up.
set -eu
ROUNDS=${1:-3}
OTHER_SRC=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=$ROOT/.venv/bin/python
PORT=${PORT:-18941}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PRESENCED_DATABASE_URL="sqlite:///$WORK/bench.db" PRESENCED_EXTERNAL_HOST="localhost:$PORT"
export PRESENCED_RATE_LIMIT_REQUESTS=0
$PY -m presenced init >/dev/null
$PY -m presenced realm create --name Bench >/dev/null
for i in 0 1 2 3 4 5 6 7 8 9; do
  $PY -m presenced user create --email "u$i@example.com" --full-name "U$i" --json
done > "$WORK/users.jsonl"
$PY - "$WORK" "$PORT" <<'PYEOF'
import base64, json, sys
work, port = sys.argv[1], sys.argv[2]
users = [json.loads(line) for line in open(f"{work}/users.jsonl")]
auths = ",".join(
    '"Basic %s"' % base64.b64encode(f"{u['email']}:{u['api_key']}".encode()).decode()
    for u in users
)
open(f"{work}/post.lua", "w").write(f"""local auths = {{{auths}}}
local i = 0
request = function()
  i = i + 1
  local h = {{["Content-Type"] = "application/x-www-form-urlencoded",
             ["Authorization"] = auths[(i % #auths) + 1], ["Host"] = "localhost:{port}"}}
  return wrk.format("POST", "/api/v1/users/me/presence", h, "status=active&last_update_id=-1")
end
""")
open(f"{work}/granian_app.py", "w").write(
    "from presenced.app import create_app\n"
    "from presenced.observability.logconfig import configure_logging\n"
    "from presenced.settings import load_settings\n"
    "configure_logging('text', 'info')\n"
    "app = create_app(load_settings(), tune_gc=True)\n"
)
PYEOF

measure() {
  name=$1; shift
  "$@" > "$WORK/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
  wrk -t1 -c16 -d2s -s "$WORK/post.lua" "http://127.0.0.1:$PORT" > /dev/null 2>&1
  child=$(pgrep -P "$pid" | head -1 || true); [ -n "$child" ] || child=$pid
  t0=$(awk '{print $14+$15}' "/proc/$child/stat")
  out=$(wrk -t1 -c16 -d5s -s "$WORK/post.lua" "http://127.0.0.1:$PORT")
  t1=$(awk '{print $14+$15}' "/proc/$child/stat")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  ticks=$(getconf CLK_TCK)
  echo "$name: $rps req/s, $($PY -c "print(round(($t1-$t0)/$ticks*1e6/$reqs, 1))") us CPU/request"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
  if [ -n "$OTHER_SRC" ]; then
    measure other env PYTHONPATH="$OTHER_SRC" $PY -m presenced serve --port "$PORT"
  fi
  measure presenced $PY -m presenced serve --port "$PORT"
  measure presenced-no-access-log $PY -m presenced serve --port "$PORT" --log-level warning
  measure granian env PYTHONPATH="$WORK" $PY -m granian --interface asgi --host 127.0.0.1 \
    --port "$PORT" --workers 1 --no-log granian_app:app
  measure bare-starlette $PY -m uvicorn --app-dir "$ROOT/bench" bare_app:app \
    --port "$PORT" --no-access-log --log-level warning
done
