#!/usr/bin/env bash
# Runs junheng on this machine as a demo: a private PostgreSQL under .data/pg (kept between
# runs; the database is reused), the workflow service on 127.0.0.1:50051 with the Changle 2020
# demo county on the simulated clock (it starts at 2020-03-02 09:00 Beijing time and moves only
# by AdminService.AdvanceClock), and the scheduler writing every notification as a file under
# .data/outbox/. The admin CLI is linked at .data/bin/junheng.
#
# Environment (all optional):
#   DATABASE_URL      use this PostgreSQL instead of the private cluster
#   JUNHENG_DATA      where tokens, notifications and the private cluster live (default .data)
#   JUNHENG_LISTEN    the workflow's gRPC address (default 127.0.0.1:50051)
#   JUNHENG_WEB_LISTEN the pages' address: 公示栏 and dashboard (default 127.0.0.1:8080)
#   JUNHENG_CLOCK     `real` runs the demo county on the real clock (its 2020 deadlines have
#                     passed, so most actions are refused); default `simulated`
#   JUNHENG_PROFILE   cargo profile to build and run (default release; the tests use dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${JUNHENG_DATA:-.data}
listen=${JUNHENG_LISTEN:-127.0.0.1:50051}
web=${JUNHENG_WEB_LISTEN:-127.0.0.1:8080}
clock=${JUNHENG_CLOCK:-simulated}
profile=${JUNHENG_PROFILE:-release}
mkdir -p "$data" && chmod 755 "$data"
export SQLX_OFFLINE=true JUNHENG_LISTEN=$listen JUNHENG_WEB_LISTEN=$web JUNHENG_CLOCK=$clock

if [ -z "${DATABASE_URL:-}" ]; then
  admin=$(deploy/scripts/pg.sh start "$data/pg")
  trap 'kill $(jobs -p) 2>/dev/null; deploy/scripts/pg.sh stop "$data/pg"' EXIT
  { read -r JUNHENG_MIGRATE_DATABASE_URL; read -r DATABASE_URL; } < <(deploy/scripts/pg.sh roles "$admin")
  export DATABASE_URL JUNHENG_MIGRATE_DATABASE_URL
  echo "PostgreSQL (private, data in $data/pg): $DATABASE_URL (owner: $JUNHENG_MIGRATE_DATABASE_URL)"
else
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
fi

cargo build --profile "$profile" -p junheng-workflow -p junheng-scheduler -p junheng-cli
bin=$PWD/target/$([ "$profile" = dev ] && echo debug || echo "$profile")
# The admin CLI, where the README's walkthrough finds it: export PATH="$PWD/.data/bin:$PATH".
mkdir -p "$data/bin" && ln -sf "$bin/junheng" "$data/bin/junheng"

# The scheduler's local configuration, with its outbox directory moved under $data.
sed "s|\./\.data/|$data/|g" services/scheduler/config/local.toml >"$data/scheduler.toml"

"$bin/junheng-workflow" --demo --demo-tokens-file "$data/demo-tokens.txt" \
  --office-token-file "$data/office-token.txt" --scheduler-token-file "$data/scheduler-token.txt" \
  --scheduler-url "http://127.0.0.1:50052" &
workflow=$!
# Wait for the workflow to have migrated and written the office and scheduler tokens. The
# scheduler closes ended notices with its own narrow token, not the office's.
for _ in $(seq 100); do [ -s "$data/office-token.txt" ] && [ -s "$data/scheduler-token.txt" ] && break; sleep 0.2; done
JUNHENG_SCHEDULER_WORKFLOW_URL=http://$listen JUNHENG_SCHEDULER_OFFICE_TOKEN=$(cat "$data/scheduler-token.txt") \
  JUNHENG_SCHEDULER_CLOCK=$clock "$bin/junheng-scheduler" --config "$data/scheduler.toml" &
echo "Pages: http://$web/ (公示栏, public) · http://$web/login (sign in with a token from $data/demo-tokens.txt or $data/office-token.txt) · http://$web/dashboard (leadership)"
echo "DEMO: workflow on $listen ($clock clock) — tokens in $data/demo-tokens.txt, notifications in $data/outbox/ (Ctrl-C stops)"
wait "$workflow"
