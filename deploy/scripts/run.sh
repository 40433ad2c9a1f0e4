#!/usr/bin/env bash
# Runs junheng on this machine: a private PostgreSQL under .data/pg (kept between runs; the
# database is reused), the workflow service on 127.0.0.1:50051 with the Changle 2020 demo
# county, and the scheduler writing every notification as a file under .data/outbox/.
#
#   JUNHENG_CLOCK=simulated deploy/scripts/run.sh    replay a season on the simulated clock
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .data && chmod 755 .data
export SQLX_OFFLINE=true

if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(deploy/scripts/pg.sh start .data/pg)
  export DATABASE_URL
  trap 'kill $(jobs -p) 2>/dev/null; deploy/scripts/pg.sh stop .data/pg' EXIT
  echo "PostgreSQL (private, data in .data/pg): $DATABASE_URL"
else
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
fi

cargo build --release -p junheng-workflow -p junheng-scheduler
target/release/junheng-workflow --demo --demo-tokens-file .data/demo-tokens.txt --office-token-file .data/office-token.txt &
workflow=$!
if [ -x target/release/junheng-scheduler ]; then
  # Wait for the workflow to have migrated and written the office token.
  for _ in $(seq 50); do [ -s .data/office-token.txt ] && break; sleep 0.2; done
  JUNHENG_SCHEDULER_WORKFLOW_URL=http://127.0.0.1:50051 JUNHENG_OFFICE_TOKEN=$(cat .data/office-token.txt) \
    target/release/junheng-scheduler --config services/scheduler/config/local.toml &
fi
echo "workflow on 127.0.0.1:50051 — tokens in .data/demo-tokens.txt, notifications in .data/outbox/ (Ctrl-C stops)"
wait "$workflow"
