#!/usr/bin/env python3
"""The issue's requirements on rendered manifests, checked by machine (tests/deploy_check.sh).

    check_policy.py RENDERED.yaml

Every Deployment: at least 2 replicas, non-root, read-only root filesystem, no privilege
escalation, all capabilities dropped, resources, native gRPC liveness (junheng.live) and
readiness (junheng.ready) probes on its gRPC port, a PodDisruptionBudget and a Service; the
workflow's pages on their own port 'web', open to every source; the
migration Job runs `--migrate-only`; a 3-instance CloudNativePG Cluster; a default-deny ingress
policy, the workflow reachable only from the scheduler, PostgreSQL only from the services; no
Secret is rendered (Secrets are referenced, created by the operator or by hand).
"""
import sys

import yaml


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    problems = []

    def need(cond, msg):
        if not cond:
            problems.append(f"{path}: {msg}")

    def matches(selector, labels):
        return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())

    need("Secret" not in by_kind, "a Secret is rendered; Secrets must only be referenced")
    deployments = by_kind.get("Deployment", [])
    names = sorted(d["metadata"]["name"] for d in deployments)
    need(names == ["junheng-scheduler", "junheng-workflow"], f"Deployments are {names}")
    for d in deployments:
        n = d["metadata"]["name"]
        spec = d["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        need(spec.get("replicas", 1) >= 2, f"{n}: fewer than 2 replicas")
        need(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{n}: runAsNonRoot")
        need(pod.get("automountServiceAccountToken") is False, f"{n}: service account token mounted")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            need(sc.get("readOnlyRootFilesystem") is True, f"{n}/{c['name']}: root filesystem writable")
            need(sc.get("allowPrivilegeEscalation") is False, f"{n}/{c['name']}: privilege escalation")
            need(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{n}/{c['name']}: capabilities")
            res = c.get("resources", {})
            need("requests" in res and "memory" in res.get("limits", {}), f"{n}/{c['name']}: resources")
            grpc_port = next((p["containerPort"] for p in c.get("ports", []) if p["name"] == "grpc"), None)
            for probe, service in (("livenessProbe", "junheng.live"), ("readinessProbe", "junheng.ready"),
                                   ("startupProbe", "junheng.live")):
                g = c.get(probe, {}).get("grpc")
                need(g is not None and g.get("port") == grpc_port and g.get("service") == service,
                     f"{n}/{c['name']}: {probe} must be grpc on port {grpc_port} service {service}")
        need(any(matches(p["spec"]["selector"], labels) for p in by_kind.get("PodDisruptionBudget", [])),
             f"{n}: no PodDisruptionBudget")
        need(any(s["spec"].get("selector") and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())
                 for s in by_kind.get("Service", [])), f"{n}: no Service")
    jobs = by_kind.get("Job", [])
    need(len(jobs) == 1 and "--migrate-only" in jobs[0]["spec"]["template"]["spec"]["containers"][0].get("args", []),
         "exactly one Job, running --migrate-only")
    for j in jobs:
        need(j["metadata"]["labels"].get("app.kubernetes.io/component") == "migrate",
             "the Job carries app.kubernetes.io/component=migrate (apply it first with -l)")
    clusters = by_kind.get("Cluster", [])
    need(len(clusters) == 1 and clusters[0]["spec"].get("instances") == 3, "one CloudNativePG Cluster of 3 instances")
    pols = {p["metadata"]["name"]: p["spec"] for p in by_kind.get("NetworkPolicy", [])}
    deny = pols.get("junheng-default-deny-ingress", {})
    need(deny.get("podSelector") == {} and "ingress" not in deny, "default-deny ingress policy")
    wf = pols.get("junheng-workflow-ingress", {})
    grpc_from = [r for r in wf.get("ingress", []) if any(p["port"] == 50051 for p in r.get("ports", []))]
    need(len(grpc_from) == 1 and grpc_from[0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "junheng-scheduler"}}}],
         "the workflow's gRPC port must be reachable from the scheduler only")
    web_rules = [r for r in wf.get("ingress", []) if any(p["port"] == 8080 for p in r.get("ports", []))]
    need(len(web_rules) == 1 and "from" not in web_rules[0] and len(web_rules[0]["ports"]) == 1,
         "the workflow's pages port (8080) must be open to every source, and that rule to that port only")
    for d in deployments:
        if d["metadata"]["name"] != "junheng-workflow":
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        web_port = next((p["containerPort"] for p in c.get("ports", []) if p["name"] == "web"), None)
        need(web_port == 8080 and env.get("JUNHENG_WEB_LISTEN") == f"0.0.0.0:{web_port}",
             "the workflow must serve the pages (JUNHENG_WEB_LISTEN) on its container port 'web'")
    need(any(p.get("name") == "web" and p.get("targetPort") == "web"
             for s in by_kind.get("Service", []) if s["metadata"]["name"] == "junheng-workflow"
             for p in s["spec"]["ports"]), "the workflow's Service must expose the pages port 'web'")
    sch = pols.get("junheng-scheduler-ingress", {})
    sch_grpc = [r for r in sch.get("ingress", []) if any(p["port"] == 50052 for p in r.get("ports", []))]
    need(len(sch_grpc) == 1 and sch_grpc[0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "junheng-workflow"}}}],
         "the scheduler's gRPC port must be reachable from the workflow (the desk) only")
    pg = pols.get("junheng-pg-ingress", {})
    allowed = set()
    for r in pg.get("ingress", []):
        for f in r["from"]:
            for e in f.get("podSelector", {}).get("matchExpressions", []):
                allowed |= set(e["values"])
            allowed |= {f.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")} - {None}
    need(allowed == {"junheng-workflow", "junheng-scheduler", "junheng-migrate"},
         f"PostgreSQL reachable from {sorted(allowed)}; only the services")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{path}: policy ok ({len(docs)} objects)")


if __name__ == "__main__":
    main()
