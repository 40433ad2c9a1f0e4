#!/usr/bin/env bash
# Benchmarks (release build) against a private, durable, throw-away PostgreSQL unless
# DATABASE_URL is set.
#
#   deploy/scripts/bench.sh                    both: transitions, then season (last line
#                                              `season schools=10000 secs=… rss_mb=… catch_up_secs=…`)
#   deploy/scripts/bench.sh transitions [...]  last line `transitions ratio=… p99_ms=…`
#   deploy/scripts/bench.sh season [...]       season replay at 1,000 and 10,000 schools; the
#                                              workflow and scheduler run as separate processes;
#                                              after the last clock move it waits (at most
#                                              --catch-up-timeout-secs, default 300) until the
#                                              scheduler has sent everything due and handled
#                                              every ended notice, prints that catch-up time,
#                                              stops the scheduler with SIGTERM and fails if
#                                              anything due is left unsent
#   deploy/scripts/bench.sh planning [...]     the planner's cost for one ended notice per
#                                              campaign to N schools, at two sizes (last line
#                                              `planning … time_per_row_growth=…`)
#
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SQLX_OFFLINE=true
cargo build --release -p junheng-bench -p junheng-workflow -p junheng-scheduler
bin="${CARGO_TARGET_DIR:-target}/release"
if [ -z "${DATABASE_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/jh-bench.XXXXXX)
  trap 'deploy/scripts/pg.sh stop "$pgdir"' EXIT
  DATABASE_URL=$(deploy/scripts/pg.sh start "$pgdir" --temp)
  export DATABASE_URL
fi
if [ $# -eq 0 ]; then
  "$bin/junheng-bench" transitions
  echo
  "$bin/junheng-bench" season
else
  "$bin/junheng-bench" "$@"
fi
