#!/usr/bin/env python3
"""Validate custom resources in rendered manifests against the CRD schemas shipped here.

    validate_crs.py RENDERED.yaml [CRD.yaml ...]   (default: every *.yaml next to this file)

Each document whose apiVersion/kind a shipped CRD defines is checked with jsonschema against
that CRD's openAPIV3Schema; a custom resource no CRD here defines is an error (so a new kind
cannot slip through unchecked). Exits 1 with one line per problem.
"""
import glob
import os
import sys

import jsonschema
import yaml

BUILTIN_GROUPS = {"", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                  "autoscaling", "apiextensions.k8s.io"}


def main():
    rendered = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    crd_files = sys.argv[2:] or sorted(glob.glob(os.path.join(here, "*.yaml")))
    schemas = {}
    for path in crd_files:
        with open(path, encoding="utf-8") as f:
            crd = yaml.safe_load(f)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            schema = v["schema"]["openAPIV3Schema"]
            jsonschema.Draft7Validator.check_schema(schema)
            schemas[(f"{group}/{v['name']}", kind)] = schema
    problems, checked = [], 0
    with open(rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        api, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        name = doc.get("metadata", {}).get("name", "?")
        group = api.rsplit("/", 1)[0] if "/" in api else ""
        key = (api, kind)
        if key in schemas:
            checked += 1
            v = jsonschema.Draft7Validator(schemas[key])
            for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path)):
                where = ".".join(str(p) for p in e.path) or "(root)"
                problems.append(f"{rendered}: {kind}/{name}: {where}: {e.message}")
        elif group not in BUILTIN_GROUPS:
            problems.append(f"{rendered}: {kind}/{name} ({api}): no CRD schema under deploy/k8s/crds/")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{rendered}: {checked} custom resource(s) valid against the shipped CRD schemas")


if __name__ == "__main__":
    main()
