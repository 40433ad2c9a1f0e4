#!/usr/bin/env bash
# Backup and restore on a throw-away cluster (issue #13 item 5), run by deploy/scripts/test.sh:
# dump → fresh cluster → services start → data is there.
#
#   1. A throw-away PostgreSQL (deploy/scripts/pg.sh --ephemeral), database `junheng`; the
#      workflow (target/debug/junheng-workflow --demo --clock simulated) on a free port; the
#      office opens phase 1 and advances the clock with the CLI, then reads schools, campaigns
#      and the clock as JSON.
#   2. deploy/systemd/junheng-backup (what junheng-backup.service runs) three times with
#      JUNHENG_BACKUP_KEEP=2 while the workflow runs: exactly the newest two dumps remain.
#   3. The first cluster is stopped and deleted. The documented restore procedure
#      (deploy/README.md, "Restore"): a FRESH cluster, an empty database, deploy/systemd/
#      junheng-restore with the newest dump (it refuses a non-empty database: checked too).
#   4. The workflow starts on the restored database (connecting over the Unix socket, as on a
#      county server), the same office token works, and the three reads answer the same.
#
# Builds junheng-workflow and junheng (dev profile) when they are missing. Last line:
# `backup/restore ok (...)`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bin=${CARGO_TARGET_DIR:-target}/debug
# Always through cargo: a no-op when fresh, and never a stale binary.
# The same package set as run.sh, so cargo reuses those binaries instead of rebuilding.
SQLX_OFFLINE=true cargo build --quiet -p junheng-workflow -p junheng-scheduler -p junheng-cli
# Metrics on a free port, so a demo running on this machine does not collide.
export JUNHENG_METRICS_ADDR=127.0.0.1:0 JUNHENG_WEB_LISTEN=127.0.0.1:0
fail() { echo "backup/restore FAILED: $*" >&2; exit 1; }
tmp=$(mktemp -d /tmp/jh-backup.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  deploy/scripts/pg.sh stop "$tmp/pg1" 2>/dev/null || true
  deploy/scripts/pg.sh stop "$tmp/pg2" 2>/dev/null || true
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
with_db() { echo "${1%/postgres}/junheng"; }

# Starts the workflow on $1 (database URL) with extra flags; waits until it answers.
start_workflow() {
  local url=$1 log=$2; shift 2
  port=$(free_port)
  "$bin/junheng-workflow" --database-url "$url" --listen "127.0.0.1:$port" --clock simulated \
    --office-token-file "$tmp/office-token.txt" --demo-tokens-file "$tmp/demo-tokens.txt" "$@" \
    >"$log" 2>&1 &
  wf=$!
  pids+=("$wf")
  for _ in $(seq 150); do
    if [ -s "$tmp/office-token.txt" ] && JUNHENG_TOKEN_FILE=$tmp/office-token.txt \
         "$bin/junheng" --addr "127.0.0.1:$port" info >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$wf" 2>/dev/null || { cat "$log" >&2; fail "the workflow exited at start"; }
    sleep 0.2
  done
  cat "$log" >&2; fail "the workflow did not answer within 30 s"
}
stop_workflow() { kill "$wf"; wait "$wf" 2>/dev/null || true; }
cli() { JUNHENG_TOKEN_FILE=$tmp/office-token.txt "$bin/junheng" --addr "127.0.0.1:$port" "$@"; }
reads() {
  cli school list --limit 1000 -o json >"$1.schools.json"
  cli campaign list -o json >"$1.campaigns.json"
  cli clock show -o json >"$1.clock.json"
}

echo "== a throw-away cluster with the demo county, phase 1 opened, the clock moved"
admin1=$(deploy/scripts/pg.sh start "$tmp/pg1" --ephemeral)
psql -q -d "$admin1" -c 'CREATE DATABASE junheng' || fail "create database"
db1=$(with_db "$admin1")
start_workflow "$db1" "$tmp/workflow1.log" --demo
cli campaign open seed-designation --key open-1 >/dev/null || fail "campaign open"
cli clock advance 2020-03-03T09:00:00+08:00 --key clock-1 >/dev/null || fail "clock advance"
reads "$tmp/before"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["schools"]))' "$tmp/before.schools.json" 2>/dev/null) \
  || fail "school list -o json is not the expected JSON: $(head -c 300 "$tmp/before.schools.json")"
[ "$n" = 40 ] || fail "expected the 40 demo schools, got $n"
grep -q '"PHASE_STATUS_OPEN"' "$tmp/before.campaigns.json" || fail "phase 1 is not open before the backup"

echo "== junheng-backup (three runs, JUNHENG_BACKUP_KEEP=2) while the workflow runs"
for i in 1 2 3; do
  last=$(DATABASE_URL=$db1 JUNHENG_BACKUP_DIR=$tmp/backups JUNHENG_BACKUP_KEEP=2 deploy/systemd/junheng-backup) \
    || fail "junheng-backup run $i"
done
kept=$(ls "$tmp/backups" | grep -c '\.dump$' || true)
[ "$kept" = 2 ] || fail "retention: expected 2 dumps, found $kept: $(ls "$tmp/backups")"
[ "$(ls "$tmp/backups" | sort | tail -1)" = "$(basename "$last")" ] || fail "the newest dump was not kept"
ls "$tmp/backups" | grep -q partial && fail "a partial dump was left behind"
stop_workflow
deploy/scripts/pg.sh stop "$tmp/pg1"

echo "== restore into a fresh cluster"
admin2=$(deploy/scripts/pg.sh start "$tmp/pg2" --ephemeral)
psql -q -d "$admin2" -c 'CREATE DATABASE junheng' || fail "create database"
# As on a county server: the Unix socket, no TCP.
port2=${admin2##*:}; port2=${port2%%/*}
sock=$(cat "$tmp/pg2/.socket")
db2="postgres://postgres@localhost:$port2/junheng?host=$sock"
DATABASE_URL=$db2 deploy/systemd/junheng-restore "$last" || fail "junheng-restore"
if DATABASE_URL=$db2 deploy/systemd/junheng-restore "$last" 2>"$tmp/refused"; then
  fail "junheng-restore accepted a database that is not empty"
fi
grep -q "not empty" "$tmp/refused" || fail "junheng-restore refused for the wrong reason: $(cat "$tmp/refused")"

echo "== the workflow on the restored database"
cp "$tmp/office-token.txt" "$tmp/office-token.before"
start_workflow "$db2" "$tmp/workflow2.log" --demo   # the same command: "demo county already loaded"
cmp -s "$tmp/office-token.txt" "$tmp/office-token.before" || fail "a new office token was created: the tokens were not restored"
reads "$tmp/after"
for r in schools campaigns clock; do
  cmp -s "$tmp/before.$r.json" "$tmp/after.$r.json" \
    || { diff <(head -c 2000 "$tmp/before.$r.json") <(head -c 2000 "$tmp/after.$r.json") >&2 || true; fail "$r differ after the restore"; }
done
stop_workflow

echo "backup/restore ok (40 schools, campaigns and clock identical after dump → fresh cluster → restore; retention kept 2 of 3 dumps; $((SECONDS - start))s)"
