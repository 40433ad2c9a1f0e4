#!/usr/bin/env bash
# Offline checks of the deployment files (issue #13 items 4 and 5), run by deploy/scripts/test.sh:
#
#   1. Kubernetes: every overlay under deploy/k8s/overlays renders with `kubectl kustomize`; the
#      built-in kinds validate with `kubernetes-validate --strict` (Kubernetes $K8S_VERSION);
#      the CloudNativePG Cluster validates against the trimmed CRD schema in deploy/k8s/crds/
#      (jsonschema, unknown fields refused); the issue's requirements hold (check_policy.py);
#      the county overlay ships the same campaign definition as deploy/campaigns/.
#   2. systemd: `systemd-analyze verify` of every unit in a temporary root that holds the units,
#      the environment files, the helper scripts and stub executables at the installed paths
#      (/usr/local/bin/junheng-*), with systemd's own units for the targets; any warning fails.
#      `systemd-analyze security --offline=true --threshold=$SECURITY_THRESHOLD` per service.
#   3. deploy/scheduler.example.toml parses (when target/debug/junheng-scheduler is built).
#
# Installs kubernetes-validate, jsonschema and PyYAML with pip when missing. Needs kubectl
# (for `kubectl kustomize`) and systemd-analyze. Last line: `deploy check ok (...)`.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=${K8S_VERSION:-1.32.0}
# systemd-analyze security's exposure, times 10 (0 = fully locked down, 100 = unprotected).
SECURITY_THRESHOLD=${SECURITY_THRESHOLD:-20}
start=$SECONDS
fail() { echo "deploy check FAILED: $*" >&2; exit 1; }
tmp=$(mktemp -d /tmp/jh-deploy-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

command -v kubectl >/dev/null || fail "kubectl is missing (needed for 'kubectl kustomize')"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (Debian package: systemd)"
need_pip=()
python3 -c 'import jsonschema' 2>/dev/null || need_pip+=(jsonschema==4.26.0)
python3 -c 'import yaml' 2>/dev/null || need_pip+=(PyYAML)
python3 -c "import kubernetes_validate" 2>/dev/null || need_pip+=(kubernetes-validate==1.37.0)
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "== installing ${need_pip[*]} (pip)"
  pip install --quiet "${need_pip[@]}" 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
  python3 -c 'import jsonschema, yaml' || fail "pip could not install jsonschema/PyYAML"
  python3 -c "import kubernetes_validate" || fail "pip could not install kubernetes-validate"
fi

echo "== Kubernetes: render and validate every overlay"
overlays=0
for dir in deploy/k8s/overlays/*/; do
  name=$(basename "$dir")
  out="$tmp/k8s-$name.yaml"
  kubectl kustomize "$dir" >"$out" 2>"$tmp/err" || fail "kubectl kustomize $dir: $(cat "$tmp/err")"
  # --strict refuses unknown fields; custom resources only warn here (checked below).
  python3 -m kubernetes_validate --strict --quiet -k "$K8S_VERSION" "$out" >"$tmp/kv" 2>&1 \
    || { cat "$tmp/kv" >&2; fail "kubernetes-validate --strict: overlay $name"; }
  if grep -v "Couldn't find schema for kind Cluster with api version postgresql.cnpg.io/v1" "$tmp/kv" | grep -q .; then
    cat "$tmp/kv" >&2; fail "kubernetes-validate reported problems for overlay $name"
  fi
  python3 deploy/k8s/crds/validate_crs.py "$out" || fail "CRD schema check: overlay $name"
  python3 deploy/k8s/check_policy.py "$out" || fail "policy check: overlay $name"
  overlays=$((overlays + 1))
done
[ "$overlays" -ge 2 ] || fail "expected at least two overlays (county, province), found $overlays"
# The trimmed CRD is itself a valid CustomResourceDefinition, and it does catch mistakes.
python3 -m kubernetes_validate --strict --quiet -k "$K8S_VERSION" deploy/k8s/crds/*.yaml >/dev/null \
  || fail "deploy/k8s/crds: not a valid CustomResourceDefinition"
sed 's/^  instances: 3$/  instancs: 3/' "$tmp/k8s-county.yaml" >"$tmp/bad.yaml"
! python3 deploy/k8s/crds/validate_crs.py "$tmp/bad.yaml" 2>/dev/null \
  || fail "the CRD schema check accepted a misspelt Cluster field"
for f in deploy/k8s/overlays/*/campaigns/*.toml; do
  cmp -s "$f" "deploy/campaigns/$(basename "$f")" \
    || fail "$f differs from deploy/campaigns/$(basename "$f") (copy it again)"
done
# A year an overlay ships must be the schedule the release has for it (or a year it lacks).
for f in deploy/k8s/overlays/*/calendars/*.toml; do
  [ -e "$f" ] || continue
  [ ! -e "deploy/calendars/$(basename "$f")" ] || cmp -s "$f" "deploy/calendars/$(basename "$f")" \
    || fail "$f differs from deploy/calendars/$(basename "$f") (copy it again)"
done

echo "== systemd: verify every unit and score the services' hardening"
root="$tmp/root"
mkdir -p "$root/etc/systemd/system" "$root/etc/junheng/credentials" "$root/usr/local/bin" \
  "$root/usr/local/lib/junheng" "$root/usr/lib/systemd"
# systemd's own units (sysinit.target, multi-user.target, timers.target, ...).
cp -a /lib/systemd/system "$root/usr/lib/systemd/system"
units=(deploy/systemd/*.service deploy/systemd/*.timer)
cp "${units[@]}" "$root/etc/systemd/system/"
cp deploy/systemd/*.env "$root/etc/junheng/"
cp deploy/systemd/junheng-env deploy/systemd/junheng-backup deploy/systemd/junheng-restore "$root/usr/local/lib/junheng/"
for b in junheng-workflow junheng-scheduler junheng; do
  printf '#!/bin/sh\nexit 0\n' >"$root/usr/local/bin/$b"; chmod 755 "$root/usr/local/bin/$b"
done
for u in "${units[@]}"; do
  unit=$root/etc/systemd/system/$(basename "$u")
  # Every executable a unit names must be one the install steps put in place.
  for exe in $(grep -E '^Exec[A-Za-z]*=' "$u" | sed -E 's/^[^=]*=[-@:+!]*//' | tr ' ' '\n' | grep '^/'); do
    [ -x "$root$exe" ] || fail "$(basename "$u") runs $exe, which the install steps do not provide"
  done
  out=$(systemd-analyze verify --root="$root" "$unit" 2>&1) \
    || fail "systemd-analyze verify $(basename "$u"): $out"
  [ -z "$out" ] || fail "systemd-analyze verify $(basename "$u") warned: $out"
done
scores=()
for u in deploy/systemd/*.service; do
  n=$(basename "$u")
  out=$(systemd-analyze security --offline=true --root="$root" --threshold="$SECURITY_THRESHOLD" \
        "$root/etc/systemd/system/$n" 2>&1) \
    || { echo "$out" | grep -E '✗|Overall' >&2; fail "$n: exposure above $SECURITY_THRESHOLD/100 (systemd-analyze security)"; }
  scores+=("$n $(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')")
done
# The hardening the issue asks for, by name.
for u in deploy/systemd/junheng-workflow.service deploy/systemd/junheng-scheduler.service; do
  for line in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes Type=notify 'WatchdogSec=' 'LoadCredential='; do
    grep -q "^$line" "$u" || fail "$(basename "$u") lacks $line"
  done
done
sh -n deploy/systemd/junheng-env deploy/systemd/junheng-backup deploy/systemd/junheng-restore \
  || fail "a helper script does not parse"

# The example scheduler configuration parses (the scheduler gets as far as connecting).
sched=${CARGO_TARGET_DIR:-target}/debug/junheng-scheduler
sched_note="scheduler.example.toml not checked (no $sched)"
if [ -x "$sched" ]; then
  out=$(DATABASE_URL=postgres://check@127.0.0.1:1/none RUST_BACKTRACE=0 timeout 30 "$sched" \
        --config deploy/scheduler.example.toml 2>&1 || true)
  echo "$out" | grep -q "connecting to PostgreSQL" \
    || fail "junheng-scheduler refuses deploy/scheduler.example.toml: $out"
  sched_note="scheduler.example.toml parses"
fi

echo "deploy check ok ($overlays overlays rendered and validated; ${#units[@]} units verified; exposure ${scores[*]}; threshold $SECURITY_THRESHOLD/100; $sched_note; $((SECONDS - start))s)"
