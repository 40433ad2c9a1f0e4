#!/usr/bin/env bash
# Runs the README's walkthrough exactly as written against the README's run command
# (deploy/scripts/run.sh) and checks what a newcomer would see; then runs it again and checks
# that the second run changed nothing. Called by deploy/scripts/test.sh.
#
# Needs DATABASE_URL pointing at a server where it may create a database, or PostgreSQL
# binaries for a private cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/jh-walk.XXXXXX)
chmod 755 "$work"
own_pg=
if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(deploy/scripts/pg.sh start "$work/pg" --ephemeral)
  own_pg=1
fi
db="walkthrough_$$"
psql -q "$DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
url="${DATABASE_URL%/*}/$db"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
export JUNHENG_DATA="$work/data" JUNHENG_LISTEN="127.0.0.1:$(free_port)"
export JUNHENG_SCHEDULER_GRPC_ADDR="127.0.0.1:$(free_port)" JUNHENG_PROFILE=dev
export JUNHENG_METRICS_ADDR=127.0.0.1:0 JUNHENG_SCHEDULER_METRICS_ADDR=127.0.0.1:0
export JUNHENG_WEB_LISTEN="127.0.0.1:$(free_port)"

run_pid=
cleanup() {
  [ -n "$run_pid" ] && kill -TERM -- "-$run_pid" 2>/dev/null && sleep 1
  [ -n "$run_pid" ] && kill -KILL -- "-$run_pid" 2>/dev/null
  psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  [ -n "$own_pg" ] && deploy/scripts/pg.sh stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT

# The README's run command, in a session of its own so that it and its children stop together.
DATABASE_URL=$url setsid deploy/scripts/run.sh >"$work/run.log" 2>&1 &
run_pid=$!
ready=
for _ in $(seq 600); do
  if [ -s "$JUNHENG_DATA/office-token.txt" ] &&
    "$JUNHENG_DATA/bin/junheng" --addr "$JUNHENG_LISTEN" info >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$ready" ]; then
  echo "readme walkthrough: the run command did not come up; its output:" >&2
  cat "$work/run.log" >&2
  exit 1
fi

# The walkthrough: the shell block between the README's markers, run exactly as written.
awk '/<!-- walkthrough:begin -->/ {on=1; next} /<!-- walkthrough:end -->/ {on=0} on && !/^```/' \
  README.md >"$work/walkthrough.sh"
[ -s "$work/walkthrough.sh" ] || { echo "readme walkthrough: no block between the markers" >&2; exit 1; }

walk() {
  if ! bash -euo pipefail "$work/walkthrough.sh" >"$1" 2>&1; then
    echo "readme walkthrough: the README's commands failed; their output:" >&2
    cat "$1" >&2
    echo "--- run command output:" >&2
    tail -50 "$work/run.log" >&2
    exit 1
  fi
}
events() { psql -Atq "$url" -c "SELECT count(*) FROM events"; }
outbox() { psql -Atq "$url" -c "SELECT count(*) FROM outbox"; }

walk "$work/first.txt"

failures=0
expect() { # expect COUNT PATTERN: the output shows PATTERN on exactly COUNT lines
  local n
  n=$(grep -cF -- "$2" "$work/first.txt" || true)
  if [ "$n" != "$1" ]; then
    echo "readme walkthrough: expected $1 line(s) with '$2', saw $n" >&2
    failures=$((failures + 1))
  fi
}
expect 2 ' simulated  2020-0'         # info, then clock advance
expect 1 'simulated  2020-03-02 09:00  true'
expect 1 'simulated  2020-03-09 09:00  true'
expect 1 ' seed-designation  open      2020-03-01  2020-04-30  2020-04-30 24:00'
expect 3 ' nominated  已推荐'
expect 1 '名单公示  open  2020-03-02 09:00  2020-03-06 24:00  3'
expect 1 ' dismissed  经核查不属实'
expect 1 '名单公示  ended '
expect 1 ' seed-designation  completed '
expect 3 ' seed       标杆种子校'
expect 1 ' potential  潜力校'
expect 1 '| 标杆种子校 | 3 |'
expect 1 '| 潜力校 | 37 |'
if [ "$failures" != 0 ]; then
  echo "--- the walkthrough printed:" >&2
  cat "$work/first.txt" >&2
  exit 1
fi

# Run as written a second time: every command is idempotent, so nothing changes.
before="$(events) $(outbox)"
walk "$work/second.txt"
after="$(events) $(outbox)"
if [ "$before" != "$after" ]; then
  echo "readme walkthrough: the second run changed the database (events, outbox: $before → $after)" >&2
  exit 1
fi
# Demo mode is refused in production, naming why.
if JUNHENG_ENV=production target/debug/junheng-workflow --demo --database-url "$url" \
  >"$work/prod.txt" 2>&1 || ! grep -q "refusing to start in demo mode" "$work/prod.txt"; then
  echo "readme walkthrough: --demo was not refused with JUNHENG_ENV=production:" >&2
  cat "$work/prod.txt" >&2
  exit 1
fi
echo "readme walkthrough: ok ($(grep -c . "$work/walkthrough.sh") lines of the README run twice; 13 checks; events and outbox unchanged by the second run)"
