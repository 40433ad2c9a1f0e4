#!/usr/bin/env bash
# Checks deploy/monitoring: the alert rules load (`promtool check rules`) and fire on the series
# that should fire them (`promtool test rules`); every dashboard query is valid PromQL (checked
# as recording rules); every junheng_* series named anywhere there is one the services export.
# Installs promtool (Debian package `prometheus`) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null; then
  echo "monitoring check: installing promtool (apt-get install prometheus)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
tmp=$(mktemp -d /tmp/jh-mon.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

promtool check rules deploy/monitoring/alerts.yml >"$tmp/check.txt" \
  || { cat "$tmp/check.txt" >&2; exit 1; }
(cd deploy/monitoring && promtool test rules alerts_test.yml) >"$tmp/test.txt" 2>&1 \
  || { cat "$tmp/test.txt" >&2; exit 1; }

python3 - "$tmp" <<'PY'
import json, pathlib, re, subprocess, sys
tmp = pathlib.Path(sys.argv[1])
dash = json.loads(pathlib.Path("deploy/monitoring/grafana-dashboard.json").read_text())
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
assert exprs, "the dashboard has panels"
# Dashboard queries as recording rules, so promtool parses each one.
rules = ["groups:", "  - name: dashboard", "    rules:"]
for i, e in enumerate(exprs):
    rules += [f"      - record: dashboard:panel_{i}", f"        expr: {json.dumps(e)}"]
(tmp / "dashboard_rules.yml").write_text("\n".join(rules) + "\n")
r = subprocess.run(["promtool", "check", "rules", str(tmp / "dashboard_rules.yml")], capture_output=True, text=True)
if r.returncode != 0:
    sys.exit("dashboard query does not parse:\n" + r.stdout + r.stderr)
# Every junheng_* series is exported by the services' code.
source = "\n".join(p.read_text() for p in pathlib.Path("services").glob("*/src/**/*.rs"))
text = "\n".join(exprs) + pathlib.Path("deploy/monitoring/alerts.yml").read_text()
names = {re.sub(r"_(bucket|count|sum)$", "", n) for n in re.findall(r"\bjunheng_[a-z_]+", text)}
missing = sorted(n for n in names if f'"{n}"' not in source and f'("{n}")' not in source)
if missing:
    sys.exit(f"series not exported by any service: {missing}")
print(f"{len(exprs)} dashboard queries parse; {len(names)} series, all exported")
PY
echo "monitoring check: ok ($(grep -o 'SUCCESS: [0-9]* rules' "$tmp/check.txt"); alert unit tests pass)"
