#!/usr/bin/env bash
# Benchmarks (release build) against a private, durable, throw-away PostgreSQL unless
# DATABASE_URL is set. Prints a table and a last line `transitions ratio=… p99_ms=…`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SQLX_OFFLINE=true
cargo build --release -p junheng-bench
if [ -z "${DATABASE_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/jh-bench.XXXXXX)
  trap 'deploy/scripts/pg.sh stop "$pgdir"' EXIT
  DATABASE_URL=$(deploy/scripts/pg.sh start "$pgdir" --temp)
  export DATABASE_URL
fi
target/release/junheng-bench "$@"
