#!/usr/bin/env bash
# The one test command: formatting, lints, then every test (unit, property, store, end-to-end)
# against a private PostgreSQL cluster and a real SMTP server (aiosmtpd, started by the tests).
# Needs only Rust and Debian; installs PostgreSQL and aiosmtpd when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The build needs no database: sqlx reads the committed .sqlx/ query data.
export SQLX_OFFLINE=true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "== installing aiosmtpd (the SMTP server the mail tests talk to)"
  pip install --quiet aiosmtpd==1.4.6 2>/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd; }
fi

# The browser tests (tests/pages.rs): Debian's Chromium and its WebDriver, a CJK font (without
# one Chinese renders as boxes), and axe-core from npm for the accessibility checks.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 ||
  ! fc-list 2>/dev/null | grep -qi 'WenQuanYi Micro Hei'; then
  echo "== installing chromium, chromium-driver and fonts-wqy-microhei (the browser tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei
fi
export JUNHENG_AXE_DIR=${JUNHENG_AXE_DIR:-$HOME/.cache/junheng/axe}
if [ ! -f "$JUNHENG_AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  echo "== installing axe-core 4 (npm) into $JUNHENG_AXE_DIR (the accessibility checks)"
  command -v npm >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
  mkdir -p "$JUNHENG_AXE_DIR" && npm install --silent --no-audit --no-fund --prefix "$JUNHENG_AXE_DIR" axe-core@4
fi

if [ -z "${DATABASE_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/jh-test.XXXXXX)
  trap 'deploy/scripts/pg.sh stop "$pgdir"' EXIT
  DATABASE_URL=$(deploy/scripts/pg.sh start "$pgdir" --ephemeral)
  export DATABASE_URL
  echo "== private PostgreSQL at $DATABASE_URL"
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== the README walkthrough, as written, against the README run command"
tests/readme_walkthrough.sh

echo "== deployment files: kustomize overlays, kubernetes-validate, CRD schema, systemd-analyze"
tests/deploy_check.sh

echo "== backup and restore: dump, fresh cluster, restore, the workflow serves the same data"
tests/backup_restore.sh

echo "== monitoring: alert rules (promtool check + unit tests), dashboard queries, series exported"
tests/monitoring_check.sh
